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

/// `pds plc serve`: a standalone directory for a local network of services.
#[test]
fn plc_serve_runs_a_directory_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let mut child = common::pds_command(
        dir.path(),
        &["plc", "serve", "--port", "0", "--db", "plc.sqlite"],
        &[],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Logs go to one of the two streams; read both until the address shows up.
    let (tx, rx) = std::sync::mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let addr = loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("pds plc serve reports its address");
        if let Some(addr) = common::parse_listening_line(&line) {
            break addr;
        }
    };
    let health = http().get(format!("http://{addr}/_health")).send().unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let missing = http()
        .get(format!("http://{addr}/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"))
        .send()
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    assert!(dir.path().join("plc.sqlite").exists());
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert!(child.wait().unwrap().success(), "exits cleanly on SIGTERM");
}
