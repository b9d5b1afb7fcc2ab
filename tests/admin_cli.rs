//! `pds admin ...`, the operator's command line, against the real server (through its admin API):
//! accounts (create, list, take down, restore, reset a password, delete), invite codes, a crawl
//! request to a relay on loopback, and handle checks that say what is wrong.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use common::{ServerOptions, TestServer, create_account, post, run_pds};
use serde_json::json;

const ADMIN_PASSWORD: &str = "admin-cli-password";

fn start() -> TestServer {
    TestServer::start_with(ServerOptions {
        env: vec![("PDS_ADMIN_PASSWORD", ADMIN_PASSWORD)],
        ..Default::default()
    })
}

/// `pds admin --url <server> <args>` with the admin password (and `extra` environment).
fn admin(server: &TestServer, args: &[&str], extra: &[(&str, &str)]) -> common::Finished {
    let url = server.url("");
    let url = url.trim_end_matches('/');
    let mut all = vec!["admin", "--url", url];
    all.extend_from_slice(args);
    let mut env = vec![("PDS_ADMIN_PASSWORD", ADMIN_PASSWORD)];
    env.extend_from_slice(extra);
    run_pds(&all, &env)
}

fn ok(done: &common::Finished) -> &str {
    assert!(done.status.success(), "{done:?}");
    &done.stdout
}

fn line_of<'a>(listing: &'a str, did: &str) -> &'a str {
    listing
        .lines()
        .find(|l| l.starts_with(did))
        .unwrap_or_else(|| panic!("{did} not listed in {listing}"))
}

#[test]
fn the_operator_manages_accounts_from_the_command_line() {
    let server = start();
    let alice = create_account(&server, "alice");

    // Without the admin password: refused.
    let url = server.url("");
    let refused = run_pds(
        &[
            "admin",
            "--url",
            url.trim_end_matches('/'),
            "account",
            "list",
        ],
        &[("PDS_ADMIN_PASSWORD", "wrong")],
    );
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");

    // Create (password given), list.
    let done = admin(
        &server,
        &[
            "account",
            "create",
            "--handle",
            "carol.test",
            "--email",
            "carol@example.com",
        ],
        &[("PDS_ACCOUNT_PASSWORD", "carol's own password")],
    );
    let out = ok(&done);
    let carol = out
        .split_whitespace()
        .find(|w| w.starts_with("did:plc:"))
        .expect("the new DID")
        .to_owned();
    assert!(!out.contains("password:"), "{out}");
    let login = |password: &str| {
        post(
            &server,
            "com.atproto.server.createSession",
            None,
            json!({"identifier": "carol.test", "password": password}),
        )
        .0
    };
    assert_eq!(login("carol's own password"), 200);
    let listing = admin(&server, &["account", "list"], &[]);
    let listing = ok(&listing).to_owned();
    assert!(line_of(&listing, &carol).contains("carol.test carol@example.com active"));
    assert!(line_of(&listing, &alice.did).contains("active"));
    let only = admin(&server, &["account", "list", "--email", "carol@"], &[]);
    assert_eq!(ok(&only).lines().count(), 1, "{}", only.stdout);

    // Take down and restore, by handle.
    ok(&admin(
        &server,
        &["account", "takedown", "carol.test", "--ref", "report-9"],
        &[],
    ));
    let listing = admin(&server, &["account", "list"], &[]);
    assert!(line_of(ok(&listing), &carol).ends_with("takendown"));
    assert_eq!(login("carol's own password"), 401);
    ok(&admin(&server, &["account", "restore", &carol], &[]));
    assert_eq!(login("carol's own password"), 200);

    // A new password, generated and printed.
    let done = admin(&server, &["account", "reset-password", "carol.test"], &[]);
    let new_password = ok(&done)
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("the generated password")
        .to_owned();
    assert_eq!(login("carol's own password"), 401);
    assert_eq!(login(&new_password), 200);

    // Invite codes.
    let done = admin(
        &server,
        &["invite", "create", "--count", "3", "--uses", "2"],
        &[],
    );
    let codes: Vec<&str> = ok(&done).lines().collect();
    assert_eq!(codes.len(), 3, "{codes:?}");
    assert!(
        codes.iter().all(|c| c.matches('-').count() >= 2),
        "{codes:?}"
    );

    // Deleting needs --yes.
    let refused = admin(&server, &["account", "delete", "carol.test"], &[]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    ok(&admin(
        &server,
        &["account", "delete", "carol.test", "--yes"],
        &[],
    ));
    let listing = admin(&server, &["account", "list"], &[]);
    assert!(!ok(&listing).contains(&carol), "{}", listing.stdout);
    assert_eq!(login(&new_password), 401);
}

/// A relay on loopback that answers one requestCrawl and hands back its body.
fn relay_once() -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
            .unwrap();
        format!("{}{}", first.trim(), String::from_utf8(body).unwrap())
    });
    (url, handle)
}

#[test]
fn crawl_requests_and_handle_checks() {
    let server = start();
    let alice = create_account(&server, "alice");

    // A crawl request names this server's hostname.
    let (relay, seen) = relay_once();
    let done = admin(&server, &["request-crawl", &relay], &[]);
    assert!(
        ok(&done).contains("asked to crawl localhost"),
        "{}",
        done.stdout
    );
    let request = seen.join().unwrap();
    assert!(
        request.starts_with("POST /xrpc/com.atproto.sync.requestCrawl")
            && request.contains("\"hostname\":\"localhost"),
        "{request}"
    );
    // No relay anywhere: said so.
    let done = admin(&server, &["request-crawl"], &[]);
    assert_eq!(done.status.code(), Some(1));
    assert!(done.stderr.contains("PDS_CRAWLERS"), "{}", done.stderr);

    // Handle checks, with DNS answers fixed by the dev-mode overrides and the server's did:plc
    // directory.
    let plc = server.url("/plc");
    let overrides = format!(
        "_atproto.alice.test=did={},_atproto.other.example.org=did={},_atproto.typo.example.org=did:{}",
        alice.did, alice.did, alice.did
    );
    let check = |handle: &str| {
        admin(
            &server,
            &["check-handle", handle],
            &[
                ("PDS_DEV_MODE", "true"),
                ("PDS_DID_PLC_URL", plc.trim_end_matches('/')),
                ("PDS_DEV_DNS_OVERRIDES", &overrides),
            ],
        )
    };
    let good = check("alice.test");
    assert!(
        ok(&good).contains(&format!("ok: alice.test is {}", alice.did)),
        "{}",
        good.stdout
    );
    // The record is right, but the DID document claims another handle.
    let other = check("other.example.org");
    assert_eq!(other.status.code(), Some(1), "{other:?}");
    assert!(
        other
            .stdout
            .contains("claims at://alice.test, not at://other.example.org"),
        "{}",
        other.stdout
    );
    // A TXT record without `did=`.
    let typo = check("typo.example.org");
    assert_eq!(typo.status.code(), Some(1));
    assert!(
        typo.stdout.contains("none starts with \"did=\""),
        "{}",
        typo.stdout
    );
    // Nothing at all.
    let none = check("nobody.example.org");
    assert_eq!(none.status.code(), Some(1));
    assert!(none.stdout.contains("does not resolve"), "{}", none.stdout);
}
