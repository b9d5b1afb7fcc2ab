//! The shipped `pds.toml` works offline with nothing else running: it serves its own did:plc
//! directory, so a newcomer can create an account and log in straight away.

mod common;

use common::{TestServer, http};
use serde_json::{Value, json};

#[test]
fn shipped_config_creates_accounts_with_the_embedded_directory() {
    let server = TestServer::start();
    let res = http()
        .post(server.url("/xrpc/com.atproto.server.createAccount"))
        .json(&json!({"handle": "newcomer.test", "password": "a good password"}))
        .send()
        .unwrap();
    let status = res.status().as_u16();
    let account: Value = res.json().unwrap();
    assert_eq!(status, 200, "{account}");
    let did = account["did"].as_str().unwrap();

    // The DID document is served by this same process.
    let doc: Value = http()
        .get(server.url(&format!("/plc/{did}")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(doc["id"], did);
    assert_eq!(doc["alsoKnownAs"][0], "at://newcomer.test");
    let log: Value = http()
        .get(server.url(&format!("/plc/{did}/log/audit")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(log.as_array().unwrap().len(), 1);

    // And the directory's data outlives a restart, with the account.
    let (_, dir) = server.terminate();
    let server = TestServer::start_with(common::ServerOptions {
        dir: Some(dir),
        ..Default::default()
    });
    let res = http()
        .get(server.url(&format!("/plc/{did}")))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let res = http()
        .post(server.url("/xrpc/com.atproto.server.createSession"))
        .json(&json!({"identifier": "newcomer.test", "password": "a good password"}))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
}
