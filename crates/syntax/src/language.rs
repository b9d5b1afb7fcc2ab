//! Language tags (BCP 47 / RFC 5646), as in a post's `langs`.
//!
//! The grammar, one `-`-separated subtag at a time:
//!
//! ```text
//! tag        = grandfathered / privateuse / langtag
//! langtag    = language *3("-" extlang) ["-" script] ["-" region]
//!              *("-" variant) *("-" extension) ["-" privateuse]
//! language   = 2-3 lowercase letters
//! extlang    = 3 letters
//! script     = 4 letters
//! region     = 2 letters / 3 digits
//! variant    = 5-8 letters-or-digits / a digit and 3 letters-or-digits
//! extension  = singleton 1*("-" 2-8 letters-or-digits)   ; singleton: one
//!                                                         ; letter-or-digit, not x
//! privateuse = ("x" / "X") 1*("-" 1-8 letters-or-digits)
//! ```
//!
//! This follows atproto's reference validator, which is stricter than the RFC
//! in two ways the interop suite relies on: the primary language subtag must
//! be 2-3 *lowercase* letters (`JA` and `jaja` are rejected), and 4-8 letter
//! primary subtags (reserved or registry-only in the RFC) are not accepted.
//!
//! "Well-formed" means matching the grammar. [`Language::new`] additionally
//! requires the tag to be *valid* in the RFC's sense, as far as that can be
//! told without the IANA registry: no variant repeated (`de-DE-1901-1901`)
//! and no extension singleton repeated (`en-a-foo-a-bar`), ignoring case.
//! These are the interop suite's `language_parse_invalid` cases. The spec
//! asks Lexicon validation for well-formedness only, so use
//! [`Language::is_well_formed`] where a record must be accepted exactly as
//! the reference implementation would.

use crate::SyntaxError;
use crate::string_type::string_type;

/// Tags that predate the current grammar and are valid as whole strings.
const GRANDFATHERED: &[&str] = &[
    "en-GB-oed",
    "i-ami",
    "i-bnn",
    "i-default",
    "i-enochian",
    "i-hak",
    "i-klingon",
    "i-lux",
    "i-mingo",
    "i-navajo",
    "i-pwn",
    "i-tao",
    "i-tay",
    "i-tsu",
    "sgn-BE-FR",
    "sgn-BE-NL",
    "sgn-CH-DE",
    "art-lojban",
    "cel-gaulish",
    "no-bok",
    "no-nyn",
    "zh-guoyu",
    "zh-hakka",
    "zh-min",
    "zh-min-nan",
    "zh-xiang",
];

/// A well-formed language tag with no repeated variant or extension
/// singleton, e.g. `en`, `pt-BR`, `zh-Hant`.
///
/// Compared byte for byte (tags are case-insensitive in the RFC, but atproto
/// carries them as written).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Language(String);

string_type!(Language, validate);

impl std::borrow::Borrow<str> for Language {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl Language {
    /// Whether `s` matches the grammar, without the duplicate checks that
    /// [`Language::new`] adds. This is exactly what Lexicon validation asks.
    pub fn is_well_formed(s: &str) -> bool {
        parse(s).is_ok()
    }
}

pub(crate) fn validate(s: &str) -> Result<(), SyntaxError> {
    let parsed = parse(s).map_err(SyntaxError::Language)?;
    if has_duplicate(&parsed.variants) {
        return Err(SyntaxError::Language("a variant subtag is repeated"));
    }
    if has_duplicate(&parsed.singletons) {
        return Err(SyntaxError::Language("an extension singleton is repeated"));
    }
    Ok(())
}

/// What `validate` needs to know beyond well-formedness.
#[derive(Default)]
struct Parsed<'a> {
    variants: Vec<&'a str>,
    singletons: Vec<&'a str>,
}

fn has_duplicate(subtags: &[&str]) -> bool {
    subtags
        .iter()
        .enumerate()
        .any(|(i, a)| subtags[..i].iter().any(|b| a.eq_ignore_ascii_case(b)))
}

fn parse(s: &str) -> Result<Parsed<'_>, &'static str> {
    if GRANDFATHERED.contains(&s) {
        return Ok(Parsed::default());
    }
    let mut subtags = s.split('-').peekable();
    let mut parsed = Parsed::default();
    let first = subtags.next().unwrap_or("");

    if is_private_use_marker(first) {
        return private_use(subtags).map(|()| parsed);
    }
    if !(2..=3).contains(&first.len()) || !first.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err("primary language must be 2 or 3 lowercase letters");
    }

    // Each optional part is taken if the next subtag has its shape. The
    // shapes (by length and character class) never overlap, so taking them
    // greedily in order is the same as matching the grammar.
    let mut extlangs = 0;
    while extlangs < 3 && subtags.next_if(|t| t.len() == 3 && all_alpha(t)).is_some() {
        extlangs += 1;
    }
    subtags.next_if(|t| t.len() == 4 && all_alpha(t));
    subtags.next_if(|t| (t.len() == 2 && all_alpha(t)) || (t.len() == 3 && all_digit(t)));
    while let Some(variant) = subtags.next_if(|t| is_variant(t)) {
        parsed.variants.push(variant);
    }
    while let Some(singleton) =
        subtags.next_if(|t| t.len() == 1 && all_alnum(t) && !is_private_use_marker(t))
    {
        parsed.singletons.push(singleton);
        let mut extension_subtags = 0;
        while subtags
            .next_if(|t| (2..=8).contains(&t.len()) && all_alnum(t))
            .is_some()
        {
            extension_subtags += 1;
        }
        if extension_subtags == 0 {
            return Err("an extension singleton needs at least one subtag after it");
        }
    }
    match subtags.next() {
        None => Ok(parsed),
        Some(t) if is_private_use_marker(t) => private_use(subtags).map(|()| parsed),
        Some("") => Err("empty subtag (leading, trailing or double hyphen)"),
        Some(_) => Err("subtag out of place or malformed"),
    }
}

/// The rest of a tag after `x-`: one or more subtags of 1-8 letters/digits.
fn private_use<'a>(rest: impl Iterator<Item = &'a str>) -> Result<(), &'static str> {
    let mut count = 0;
    for t in rest {
        if !(1..=8).contains(&t.len()) || !all_alnum(t) {
            return Err("private-use subtags must be 1-8 letters or digits");
        }
        count += 1;
    }
    if count == 0 {
        return Err("private use needs at least one subtag after \"x\"");
    }
    Ok(())
}

fn is_private_use_marker(t: &str) -> bool {
    t.eq_ignore_ascii_case("x")
}

fn is_variant(t: &str) -> bool {
    all_alnum(t)
        && ((5..=8).contains(&t.len()) || (t.len() == 4 && t.as_bytes()[0].is_ascii_digit()))
}

fn all_alpha(t: &str) -> bool {
    t.bytes().all(|b| b.is_ascii_alphabetic())
}

fn all_digit(t: &str) -> bool {
    t.bytes().all(|b| b.is_ascii_digit())
}

fn all_alnum(t: &str) -> bool {
    t.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_but_not_valid() {
        for tag in [
            "de-DE-1901-1901",
            "en-a-foo-a-bar",
            "en-u-co-phonebk-U-ca-buddhist",
        ] {
            assert!(Language::is_well_formed(tag), "{tag}");
            assert!(Language::new(tag).is_err(), "{tag}");
        }
    }

    #[test]
    fn shapes() {
        for ok in [
            "en-US",
            "zh-yue-HK",
            "sr-Latn-RS",
            "es-419",
            "de-CH-1996",
            "en-x-a",
            "x-whatever",
        ] {
            assert!(Language::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "en-",
            "-en",
            "en--US",
            "en-a",
            "x",
            "en-x",
            "en-a-x-foo",
            "en-US-Latn",
            "en-123456789",
        ] {
            assert!(Language::new(bad).is_err(), "{bad}");
        }
    }
}
