//! The community interop vectors (`syntax/*.txt` from atproto-interop-tests):
//! every valid example must be accepted and every invalid one rejected.
//!
//! The vectors live outside the project, in `ATPROTO_INTEROP_TESTS` if set,
//! else in `shared/interop-tests` beside the workspace. A missing folder is a
//! failure, not a skip: a green run must mean the vectors were checked.

use pds_syntax::{
    AtIdentifier, AtUri, Datetime, Did, Handle, Language, Nsid, RecordKey, Tid,
    is_valid_cid_syntax, is_valid_uri,
};

fn read_vectors(file: &str) -> Vec<String> {
    pds_interop_vectors::lines(&format!("syntax/{file}"))
}

/// Checks `accepts` against `<kind>_syntax_valid.txt` and
/// `<kind>_syntax_invalid.txt`, reporting every mismatch at once.
fn check(kind: &str, accepts: impl Fn(&str) -> bool) {
    let mut wrong = Vec::new();
    for v in read_vectors(&format!("{kind}_syntax_valid.txt")) {
        if !accepts(&v) {
            wrong.push(format!("rejected valid {v:?}"));
        }
    }
    for v in read_vectors(&format!("{kind}_syntax_invalid.txt")) {
        if accepts(&v) {
            wrong.push(format!("accepted invalid {v:?}"));
        }
    }
    assert!(wrong.is_empty(), "{kind}:\n{}", wrong.join("\n"));
}

#[test]
fn did() {
    check("did", |s| Did::new(s).is_ok());
}

#[test]
fn handle() {
    check("handle", |s| Handle::new(s).is_ok());
}

#[test]
fn nsid() {
    check("nsid", |s| Nsid::new(s).is_ok());
}

#[test]
fn tid() {
    check("tid", |s| Tid::new(s).is_ok());
}

#[test]
fn record_key() {
    check("recordkey", |s| RecordKey::new(s).is_ok());
}

#[test]
fn at_uri() {
    check("aturi", |s| AtUri::new(s).is_ok());
}

#[test]
fn at_identifier() {
    check("atidentifier", |s| AtIdentifier::new(s).is_ok());
}

#[test]
fn datetime() {
    check("datetime", |s| Datetime::new(s).is_ok());
}

/// Right shape, but no real instant (month 0, hour 25, before year 0 in
/// UTC): `Datetime::new` does a full parse and rejects these too.
#[test]
fn datetime_parse_invalid() {
    for v in read_vectors("datetime_parse_invalid.txt") {
        assert!(Datetime::new(&v).is_err(), "accepted {v:?}");
    }
}

#[test]
fn language() {
    check("language", |s| Language::new(s).is_ok());
    for v in read_vectors("language_syntax_valid.txt") {
        assert!(Language::is_well_formed(&v), "{v:?} should be well-formed");
    }
}

/// Well-formed BCP 47 but not valid (a repeated variant or extension
/// singleton): `Language::new` rejects them, `Language::is_well_formed`
/// (the Lexicon-level check) accepts them.
#[test]
fn language_parse_invalid() {
    for v in read_vectors("language_parse_invalid.txt") {
        assert!(Language::new(&v).is_err(), "accepted {v:?}");
        assert!(Language::is_well_formed(&v), "{v:?} is well-formed");
    }
}

#[test]
fn cid() {
    check("cid", is_valid_cid_syntax);
}

#[test]
fn uri() {
    check("uri", is_valid_uri);
}
