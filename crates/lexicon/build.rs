//! Embeds the real `com.atproto.*`, `app.bsky.*`, `chat.bsky.*` and `tools.ozone.*` lexicon
//! schemas into the crate, without keeping copies of them in this repository.
//!
//! Where the schemas come from: the crates.io package `jacquard-api` ([`SOURCE_CRATE`] at the
//! exact version [`SOURCE_VERSION`]) ships the upstream lexicon JSON files, unmodified, in its
//! `lexicons/` folder. Compiling that crate would cost minutes (it is generated code with ~300
//! dependencies), so it is not a dependency of this crate. Instead this script asks cargo to
//! *download* it, nothing more:
//!
//! 1. it writes a throw-away workspace into `OUT_DIR` whose only dependency is `jacquard-api`,
//!    with each of jacquard-api's own dependencies patched to an empty local stub, so that
//! 2. `cargo fetch` on it downloads that one `.crate` (about 3.6 MB) through the user's normal
//!    cargo configuration (registry, mirrors, source replacement, checksums against the index),
//!    trying `--offline` first so a warm cache needs no network, and
//! 3. `cargo metadata --offline` on it says where cargo unpacked the package.
//!
//! Nothing is compiled. If jacquard-api's dependency list changes with a version bump, a stub
//! that no longer matches merely makes cargo download that dependency as well; it still compiles
//! nothing.
//!
//! The files of the wanted namespaces are then concatenated, verbatim and sorted by NSID, into
//! one JSON array `$OUT_DIR/bundled_lexicons.json`, which the crate embeds with `include_str!`
//! and parses once, on first use of `Catalog::bundled()`.
//!
//! `PDS_LEXICONS_DIR=/path/to/lexicons` skips the download and reads `*.json` files below that
//! folder instead (any layout: jacquard-api's flat one or upstream's `com/atproto/...` tree).
//! That is the way to build without access to a registry, or to try newer schemas.
//!
//! No build dependencies: everything here is the standard library, so the script itself
//! compiles in well under a second.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SOURCE_CRATE: &str = "jacquard-api";
const SOURCE_VERSION: &str = "0.12.2";

/// NSID prefixes of the schemas that are embedded.
const NAMESPACES: &[&str] = &["com.atproto.", "app.bsky.", "chat.bsky.", "tools.ozone."];

/// The dependencies of jacquard-api 0.12.2, each replaced by an empty stub package so that
/// `cargo fetch` downloads nothing but jacquard-api itself: (name, version, features that
/// jacquard-api's manifest names).
const STUBS: &[(&str, &str, &[&str])] = &[
    ("jacquard-common", "0.12.2", &["std"]),
    ("jacquard-derive", "0.12.2", &[]),
    ("jacquard-lexicon", "0.12.2", &[]),
    ("miette", "7.6.0", &[]),
    ("serde", "1.0.0", &["alloc", "derive", "std"]),
    ("thiserror", "2.0.0", &["std"]),
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=PDS_LEXICONS_DIR");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    let (dir, source) = match env::var_os("PDS_LEXICONS_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            println!("cargo::rerun-if-changed={}", dir.display());
            let source = format!("PDS_LEXICONS_DIR={}", dir.display());
            (dir, source)
        }
        None => {
            let package = locate_source_crate(&out_dir);
            (
                package.join("lexicons"),
                format!("{SOURCE_CRATE} {SOURCE_VERSION}"),
            )
        }
    };

    let mut files = Vec::new();
    collect_json_files(&dir, &mut files);
    let mut docs: Vec<(String, String)> = Vec::new();
    for path in files {
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading lexicon {}: {e}", path.display()));
        let Some(id) = top_level_id(&text) else {
            continue;
        };
        if NAMESPACES.iter().any(|ns| id.starts_with(ns)) {
            docs.push((id, text));
        }
    }
    docs.sort();
    docs.dedup_by(|a, b| a.0 == b.0);
    assert!(
        docs.iter().any(|(id, _)| id == "app.bsky.feed.post")
            && docs
                .iter()
                .any(|(id, _)| id == "com.atproto.repo.strongRef"),
        "no atproto lexicons found in {} (from {source})",
        dir.display()
    );

    let mut json = String::with_capacity(docs.iter().map(|(_, t)| t.len() + 2).sum::<usize>() + 2);
    json.push('[');
    for (i, (_, text)) in docs.iter().enumerate() {
        if i > 0 {
            json.push_str(",\n");
        }
        json.push_str(text.trim());
    }
    json.push_str("]\n");
    write_if_changed(&out_dir.join("bundled_lexicons.json"), &json);

    let mut meta = String::new();
    writeln!(
        meta,
        "/// Where the bundled schemas were taken from at build time.\n\
         pub const BUNDLED_SOURCE: &str = {source:?};\n\
         /// How many schema documents are bundled.\n\
         pub const BUNDLED_COUNT: usize = {};",
        docs.len()
    )
    .expect("writing to a String");
    write_if_changed(&out_dir.join("bundled_meta.rs"), &meta);
}

/// Downloads (if needed) the source package and returns the folder cargo unpacked it into.
fn locate_source_crate(out_dir: &Path) -> PathBuf {
    let ws = out_dir.join("lexicon-source");
    write_fetch_workspace(&ws);
    let manifest = ws.join("Cargo.toml");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let offline_only = env::var("CARGO_NET_OFFLINE").is_ok_and(|v| v == "true" || v == "1");

    let fetch = |offline: bool| {
        let mut cmd = Command::new(&cargo);
        cmd.arg("fetch").arg("--manifest-path").arg(&manifest);
        if offline {
            cmd.arg("--offline");
        }
        cmd.current_dir(&ws)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running cargo fetch: {e}"))
    };
    let mut result = fetch(true);
    if !result.status.success() && !offline_only {
        result = fetch(false);
    }
    if !result.status.success() {
        panic!(
            "could not download {SOURCE_CRATE} {SOURCE_VERSION} (the package the lexicon schemas \
             are taken from): {}\nWith no registry access, set PDS_LEXICONS_DIR to a folder of \
             lexicon JSON files.",
            String::from_utf8_lossy(&result.stderr)
        );
    }

    let meta = Command::new(&cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--manifest-path",
        ])
        .arg(&manifest)
        .current_dir(&ws)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running cargo metadata: {e}"));
    if !meta.status.success() {
        panic!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&meta.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&meta.stdout);
    let manifest_path = package_manifest_path(&stdout)
        .unwrap_or_else(|| panic!("cargo metadata does not list {SOURCE_CRATE} {SOURCE_VERSION}"));
    let dir = Path::new(&manifest_path)
        .parent()
        .expect("a manifest path has a parent")
        .to_path_buf();
    assert!(
        dir.join("lexicons").is_dir(),
        "{} has no lexicons/ folder",
        dir.display()
    );
    dir
}

/// Writes the throw-away workspace whose only registry dependency is the source crate.
fn write_fetch_workspace(ws: &Path) {
    let mut manifest = format!(
        "# Generated by pds-lexicon's build script: used only to download {SOURCE_CRATE}.\n\
         [package]\nname = \"pds-lexicon-source\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
         publish = false\n\n[lib]\npath = \"lib.rs\"\n\n[dependencies]\n\
         {SOURCE_CRATE} = {{ version = \"={SOURCE_VERSION}\", default-features = false }}\n\n\
         [patch.crates-io]\n"
    );
    for (name, version, features) in STUBS {
        let _ = writeln!(manifest, "{name} = {{ path = \"stubs/{name}\" }}");
        let mut stub = format!(
            "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n\
             publish = false\n\n[lib]\npath = \"lib.rs\"\n\n[features]\n"
        );
        for feature in *features {
            let _ = writeln!(stub, "{feature} = []");
        }
        let dir = ws.join("stubs").join(name);
        fs::create_dir_all(&dir).expect("creating the fetch workspace");
        write_if_changed(&dir.join("Cargo.toml"), &stub);
        write_if_changed(&dir.join("lib.rs"), "");
    }
    // Its own workspace, so that cargo does not take it for a member of the one it sits in.
    manifest.push_str("\n[workspace]\n");
    fs::create_dir_all(ws).expect("creating the fetch workspace");
    write_if_changed(&ws.join("Cargo.toml"), &manifest);
    write_if_changed(&ws.join("lib.rs"), "");
}

/// The `manifest_path` of the source crate in `cargo metadata` JSON output. Cargo writes each
/// package object with `name` and `version` first and `manifest_path` later in the same object,
/// and no other package has this name.
fn package_manifest_path(metadata: &str) -> Option<String> {
    let start = metadata.find(&format!(
        "\"name\":\"{SOURCE_CRATE}\",\"version\":\"{SOURCE_VERSION}\""
    ))?;
    let rest = &metadata[start..];
    let key = "\"manifest_path\":\"";
    let value = &rest[rest.find(key)? + key.len()..];
    let mut path = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(path),
            '\\' => match chars.next()? {
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    path.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                'n' => path.push('\n'),
                't' => path.push('\t'),
                other => path.push(other),
            },
            c => path.push(c),
        }
    }
    None
}

fn collect_json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading lexicon folder {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("reading a directory entry").path();
        if path.is_dir() {
            collect_json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// The value of the first `"id"` key in a lexicon document's text: the document's NSID (it comes
/// before `defs` in every published lexicon). Escaped quotes inside descriptions cannot match,
/// since they are written `\"`. The runtime parser checks the whole document again.
fn top_level_id(text: &str) -> Option<String> {
    let at = text.find("\"id\"")?;
    let rest = text[at + 4..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(rest[..end].to_owned())
}

/// Writes `contents` unless the file already holds exactly that (keeps mtimes stable).
fn write_if_changed(path: &Path, contents: &str) {
    if fs::read_to_string(path).is_ok_and(|old| old == contents) {
        return;
    }
    fs::write(path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}
