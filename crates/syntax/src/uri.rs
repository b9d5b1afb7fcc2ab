//! The generic `uri` Lexicon string format: any URI with a scheme.

/// Longest URI accepted (8 KiB, the spec's limit).
const MAX_LEN: usize = 8 * 1024;

/// Whether `s` is a URI as the `uri` Lexicon format accepts it:
/// `scheme:rest`, where the scheme is an RFC 3986 scheme (a letter, then
/// letters, digits, `+`, `-` or `.`), and the rest is non-empty, has no
/// whitespace or control characters, and does not start with `/` unless it
/// starts with `//` followed by something other than `/`. At most 8 KiB.
///
/// Deliberately loose, like the reference implementations: it checks that
/// the string is plausibly a URI, not that it is one every URI parser would
/// take.
pub fn is_valid_uri(s: &str) -> bool {
    if s.len() > MAX_LEN {
        return false;
    }
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    let body = rest.strip_prefix("//").unwrap_or(rest);
    scheme_ok
        && !body.is_empty()
        && !body.starts_with('/')
        && !rest.chars().any(|c| c.is_whitespace() || c.is_control())
}
