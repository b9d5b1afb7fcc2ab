//! The `format`s of Lexicon strings, and grapheme counting.
//!
//! Each format is checked with the `pds-syntax` type of the same name (those are pinned by the
//! interop syntax vectors), so a record field and an XRPC parameter accept exactly what the rest
//! of the server parses. Messages follow the reference implementation's wording.

use pds_syntax::{
    AtIdentifier, AtUri, Datetime, Did, Handle, Language, Nsid, RecordKey, Tid,
    is_valid_cid_syntax, is_valid_uri,
};
use unicode_segmentation::UnicodeSegmentation;

use crate::schema::StringFormat;

/// Checks `s` against `format`; the error is the message to put after the value's path.
pub fn check_format(format: StringFormat, s: &str) -> Result<(), &'static str> {
    let (ok, message) = match format {
        StringFormat::Datetime => (
            Datetime::new(s).is_ok(),
            "must be a valid atproto datetime (both RFC-3339 and ISO-8601)",
        ),
        StringFormat::Uri => (is_valid_uri(s), "must be a uri"),
        StringFormat::AtUri => (AtUri::new(s).is_ok(), "must be a valid at-uri"),
        StringFormat::Did => (Did::new(s).is_ok(), "must be a valid did"),
        StringFormat::Handle => (Handle::new(s).is_ok(), "must be a valid handle"),
        StringFormat::AtIdentifier => (
            AtIdentifier::new(s).is_ok(),
            "must be a valid did or a handle",
        ),
        StringFormat::Nsid => (Nsid::new(s).is_ok(), "must be a valid nsid"),
        // The syntax check of the spec, then a real parse, as the reference does.
        StringFormat::Cid => (
            is_valid_cid_syntax(s) && pds_ipld::parse_cid(s).is_ok(),
            "must be a cid string",
        ),
        // Well-formed (grammar) only, as the spec asks of Lexicon validation.
        StringFormat::Language => (
            Language::is_well_formed(s),
            "must be a well-formed BCP 47 language tag",
        ),
        StringFormat::Tid => (
            Tid::new(s).is_ok(),
            "must be a valid TID (timestamp identifier)",
        ),
        StringFormat::RecordKey => (RecordKey::new(s).is_ok(), "must be a valid Record Key"),
    };
    if ok { Ok(()) } else { Err(message) }
}

/// The number of extended grapheme clusters in `s` (what a person sees as one character:
/// `👩‍👩‍👦‍👦` and `🇩🇪` are one each).
pub fn grapheme_len(s: &str) -> usize {
    s.graphemes(true).count()
}

/// Whether `s` has more than `max` graphemes. A grapheme is at least one byte, so strings of at
/// most `max` bytes are answered without segmenting, and segmenting stops at `max + 1`.
pub(crate) fn graphemes_exceed(s: &str, max: u64) -> bool {
    if s.len() as u64 <= max {
        return false;
    }
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    s.graphemes(true).nth(max).is_some()
}

/// Whether `s` has fewer than `min` graphemes.
pub(crate) fn graphemes_below(s: &str, min: u64) -> bool {
    if (s.len() as u64) < min {
        return true;
    }
    let min = usize::try_from(min).unwrap_or(usize::MAX);
    s.graphemes(true).take(min).count() < min
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphemes() {
        assert_eq!(grapheme_len(""), 0);
        assert_eq!(grapheme_len("abc"), 3);
        assert_eq!(grapheme_len("\r\n"), 1);
        // ZWJ family, flag, rainbow flag (with variation selector and ZWJ), skin tone.
        assert_eq!(grapheme_len("👩‍👩‍👦‍👦"), 1);
        assert_eq!(grapheme_len("🇩🇪"), 1);
        assert_eq!(grapheme_len("🏳️‍🌈"), 1);
        assert_eq!(grapheme_len("👍🏽"), 1);
        assert_eq!(grapheme_len("e\u{301}"), 1, "combining accent");
        assert_eq!(grapheme_len("👩‍👩‍👦‍👦👩‍👩‍👦‍👦"), 2);
        assert_eq!("👩‍👩‍👦‍👦".len(), 25);

        assert!(!graphemes_exceed("👩‍👩‍👦‍👦", 1));
        assert!(graphemes_exceed("👩‍👩‍👦‍👦a", 1));
        assert!(!graphemes_exceed("ab", 2));
        assert!(graphemes_exceed("abc", 2));
        assert!(!graphemes_exceed("", 0));
        assert!(graphemes_exceed("a", 0));
        assert!(graphemes_below("👩‍👩‍👦‍👦", 2));
        assert!(!graphemes_below("👩‍👩‍👦‍👦👩‍👩‍👦‍👦", 2));
        assert!(graphemes_below("a", 2));
        assert!(!graphemes_below("", 0));
    }

    #[test]
    fn formats() {
        use StringFormat::*;
        let cases: &[(StringFormat, &str, bool)] = &[
            (Datetime, "2023-10-30T22:25:23Z", true),
            (Datetime, "2023-10-30T22:25:23.123+01:00", true),
            (Datetime, "2023-10-30", false),
            (Datetime, "2023-02-30T22:25:23Z", false),
            (Uri, "https://example.com/a?b", true),
            (Uri, "123", false),
            (
                AtUri,
                "at://did:plc:asdf123/app.bsky.feed.post/3jzfcijpj2z2a",
                true,
            ),
            (AtUri, "at://handle.example.com", true),
            (AtUri, "https://example.com", false),
            (Did, "did:web:example.com", true),
            (Did, "did:plc:", false),
            (Handle, "alice.bsky.social", true),
            (Handle, "123", false),
            (AtIdentifier, "did:plc:asdf123", true),
            (AtIdentifier, "alice.test", true),
            (AtIdentifier, "did:", false),
            (Nsid, "app.bsky.feed.post", true),
            (Nsid, "app.bsky", false),
            (
                Cid,
                "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq",
                true,
            ),
            (Cid, "bafyreiclp443lavogvhj3", false),
            (Cid, "123", false),
            (Language, "en", true),
            (Language, "pt-BR", true),
            (Language, "123", false),
            (Tid, "3kznmn7xqxl22", true),
            (Tid, "000", false),
            (RecordKey, "self", true),
            (RecordKey, ".", false),
        ];
        for &(format, s, ok) in cases {
            assert_eq!(check_format(format, s).is_ok(), ok, "{format:?} {s:?}");
        }
    }
}
