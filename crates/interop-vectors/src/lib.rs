//! Test-only helper: finds and reads the AT Protocol community's interop test vectors.
//!
//! The vectors are not part of this repository. They are read from `ATPROTO_INTEROP_TESTS` if it
//! is set, else from `../shared/interop-tests` beside the workspace. A missing folder or file is a
//! test failure, never a skip: a green run must mean the vectors were checked.
//!
//! Owns nothing but locating and parsing those files; every crate's `tests/interop.rs` uses it.

use std::path::PathBuf;

use serde_json::Value;

/// The vectors' root folder.
pub fn root() -> PathBuf {
    let root = std::env::var_os("ATPROTO_INTEROP_TESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/interop-tests"
            ))
        });
    assert!(
        root.is_dir(),
        "interop test vectors not found at {} (set ATPROTO_INTEROP_TESTS)",
        root.display()
    );
    root
}

/// The text of the vector file at `rel` (e.g. `"mst/key_heights.json"`).
pub fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A vector file that holds a non-empty JSON array.
pub fn json_array(rel: &str) -> Vec<Value> {
    let value: Value =
        serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("parsing {rel}: {e}"));
    let Value::Array(items) = value else {
        panic!("{rel} is not a JSON array")
    };
    assert!(!items.is_empty(), "{rel} has no vectors");
    items
}

/// A one-value-per-line vector file: `#` starts a comment line, blank lines are skipped, and
/// lines are otherwise verbatim (leading and trailing spaces are part of some invalid vectors).
pub fn lines(rel: &str) -> Vec<String> {
    let lines: Vec<String> = read(rel)
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    assert!(!lines.is_empty(), "{rel} has no vectors");
    lines
}
