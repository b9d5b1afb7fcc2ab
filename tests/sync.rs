//! The read methods of `com.atproto.sync` on the real binary, checked the way a relay would
//! check them: exported CARs verify against the account's key from its DID document, a diff
//! since a rev applies onto the earlier export, record proofs check out from the CAR's blocks
//! alone; plus paging, statuses of inactive accounts, the reference's errors, and a large repo
//! streamed to a slow client without the server's memory growing with it.

mod common;

use std::collections::HashSet;
use std::io::Read;
use std::time::Duration;

use common::{
    Account, PASSWORD, ServerOptions, TestServer, create_account, deletion_code, http,
    plc_signing_key as signing_key, post,
};
use pds_crypto::PublicKey;
use pds_ipld::Cid;
use pds_ipld::car::{CarBuffer, CarLimits, decode_car, encode_car};
use pds_repo::Commit;
use pds_repo::import::{ImportExpectations, VerifiedRepo, verify_car};
use pds_repo::mst::read as mst;
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "sync-tests-admin-password";
/// Not a collection the server knows a lexicon for: its records are stored as given.
const NOTE: &str = "com.example.sync.note";
const CAR_TYPE: &str = "application/vnd.ipld.car";

fn start() -> TestServer {
    TestServer::start_with(ServerOptions {
        env: vec![("PDS_ADMIN_PASSWORD", ADMIN_PASSWORD)],
        ..Default::default()
    })
}

/// How a request authenticates.
#[derive(Clone, Copy)]
enum Auth<'a> {
    Anonymous,
    Bearer(&'a str),
    Admin,
}

/// `/xrpc/<nsid>?k=v&...`, percent-encoding everything but the unreserved characters.
fn query_url(server: &TestServer, nsid: &str, query: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let pairs: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    server.url(&format!("/xrpc/{nsid}?{}", pairs.join("&")))
}

fn send(
    server: &TestServer,
    nsid: &str,
    query: &[(&str, &str)],
    auth: Auth<'_>,
) -> reqwest::blocking::Response {
    let req = http().get(query_url(server, nsid, query));
    let req = match auth {
        Auth::Anonymous => req,
        Auth::Bearer(token) => req.bearer_auth(token),
        Auth::Admin => req.basic_auth("admin", Some(ADMIN_PASSWORD)),
    };
    req.send().unwrap()
}

fn get_json(server: &TestServer, nsid: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let res = send(server, nsid, query, Auth::Anonymous);
    (res.status().as_u16(), res.json().unwrap_or(Value::Null))
}

/// A method that answers a CAR: its bytes (checking status and media type), or the XRPC error.
fn get_car(
    server: &TestServer,
    nsid: &str,
    query: &[(&str, &str)],
    auth: Auth<'_>,
) -> Result<Vec<u8>, (u16, Value)> {
    let res = send(server, nsid, query, auth);
    let status = res.status().as_u16();
    if status != 200 {
        return Err((status, res.json().unwrap_or(Value::Null)));
    }
    let media_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(media_type, CAR_TYPE, "{nsid}");
    Ok(res.bytes().unwrap().to_vec())
}

fn ok_car(server: &TestServer, nsid: &str, query: &[(&str, &str)]) -> Vec<u8> {
    get_car(server, nsid, query, Auth::Anonymous)
        .unwrap_or_else(|(status, body)| panic!("{nsid} {query:?}: {status} {body}"))
}

#[track_caller]
fn assert_error(answer: (u16, Value), name: &str, message: &str) {
    let (status, body) = answer;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], name, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains(message),
        "{body} should say {message:?}"
    );
}

fn rkey(i: usize) -> String {
    format!("note{i:06}")
}

/// A note record; `padding` bytes of text make it as large as wanted.
fn note(i: usize, version: &str, padding: usize) -> Value {
    let filler: String = (0..padding)
        .map(|n| char::from(b'a' + ((i * 7 + n) % 26) as u8))
        .collect();
    json!({"$type": NOTE, "text": format!("note {i} {version} {filler}"), "createdAt": "2024-05-01T12:00:00.000Z"})
}

/// One applyWrites commit; its `{cid, rev}` and the CID of each write's record.
fn apply_writes(server: &TestServer, account: &Account, writes: Vec<Value>) -> (Value, Vec<Value>) {
    let (status, body) = post(
        server,
        "com.atproto.repo.applyWrites",
        Some(&account.token),
        json!({"repo": account.did, "writes": writes}),
    );
    assert_eq!(status, 200, "{body}");
    let cids = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cid"].clone())
        .collect();
    (body["commit"].clone(), cids)
}

fn create_notes(
    server: &TestServer,
    account: &Account,
    range: std::ops::Range<usize>,
    padding: usize,
) {
    let writes: Vec<Value> = range
        .map(|i| {
            json!({"$type": "com.atproto.repo.applyWrites#create", "collection": NOTE,
                   "rkey": rkey(i), "value": note(i, "v1", padding)})
        })
        .collect();
    apply_writes(server, account, writes);
}

fn latest_commit(server: &TestServer, did: &str) -> (String, String) {
    let (status, body) = get_json(server, "com.atproto.sync.getLatestCommit", &[("did", did)]);
    assert_eq!(status, 200, "{body}");
    (
        body["cid"].as_str().unwrap().to_owned(),
        body["rev"].as_str().unwrap().to_owned(),
    )
}

/// Verifies a CAR as a complete repository of `did` signed by `key`, and checks it holds
/// nothing but the repo's blocks.
fn verify_repo(car: Vec<u8>, did: &str, key: &PublicKey) -> VerifiedRepo {
    let blocks_in_car = decode_car(&car).unwrap().1.len();
    let buffer = CarBuffer::parse(car, CarLimits::default()).unwrap();
    let expect = ImportExpectations {
        did: Some(did),
        signing_key: Some(key),
        ..Default::default()
    };
    let repo = verify_car(buffer, &expect).unwrap();
    assert_eq!(repo.block_count(), blocks_in_car, "no stray blocks");
    repo
}

fn block_set(car: &[u8]) -> HashSet<Cid> {
    decode_car(car)
        .unwrap()
        .1
        .into_iter()
        .map(|(cid, _)| cid)
        .collect()
}

#[test]
fn repo_exports_verify_and_diffs_apply() {
    let server = start();
    let alice = create_account(&server, "alice");
    let bob = create_account(&server, "bob");
    create_notes(&server, &alice, 0..150, 40);
    create_notes(&server, &alice, 150..300, 40);
    create_notes(&server, &bob, 0..10, 40);
    let key = signing_key(&server, &alice.did);
    let (head, rev) = latest_commit(&server, &alice.did);

    // The whole repo: rooted at the head commit, signed with the key of the DID document.
    let before = ok_car(&server, "com.atproto.sync.getRepo", &[("did", &alice.did)]);
    let repo = verify_repo(before.clone(), &alice.did, &key);
    assert_eq!(repo.commit_cid.to_string(), head);
    assert_eq!(repo.commit.rev, rev);
    assert_eq!(repo.records.len(), 300);
    assert!(repo.records.iter().all(|(path, _)| path.starts_with(NOTE)));
    // The commit block comes first, for readers that verify as the bytes arrive.
    assert_eq!(decode_car(&before).unwrap().1[0].0.to_string(), head);
    // Bob's key does not sign Alice's repo.
    let bobs_key = signing_key(&server, &bob.did);
    let buffer = CarBuffer::parse(before.clone(), CarLimits::default()).unwrap();
    let expect = ImportExpectations {
        did: Some(&alice.did),
        signing_key: Some(&bobs_key),
        ..Default::default()
    };
    assert!(verify_car(buffer, &expect).is_err());

    // The deprecated forms agree.
    assert_eq!(
        ok_car(
            &server,
            "com.atproto.sync.getCheckout",
            &[("did", &alice.did)]
        ),
        before
    );
    let (status, body) = get_json(&server, "com.atproto.sync.getHead", &[("did", &alice.did)]);
    assert_eq!((status, body), (200, json!({"root": head})));

    // Later commits: new records, an update and a delete of old ones.
    create_notes(&server, &alice, 300..320, 40);
    apply_writes(
        &server,
        &alice,
        vec![
            json!({"$type": "com.atproto.repo.applyWrites#update", "collection": NOTE,
                   "rkey": rkey(5), "value": note(5, "v2", 40)}),
            json!({"$type": "com.atproto.repo.applyWrites#delete", "collection": NOTE, "rkey": rkey(7)}),
        ],
    );
    let (new_head, new_rev) = latest_commit(&server, &alice.did);
    let now = ok_car(&server, "com.atproto.sync.getRepo", &[("did", &alice.did)]);
    let now_repo = verify_repo(now.clone(), &alice.did, &key);
    assert_eq!(now_repo.records.len(), 319);

    // getRepo?since=<rev>: the blocks the later commits wrote that the repo still uses. That is
    // everything a consumer at `rev` lacks, nothing the repo does not hold, and of what the
    // consumer has only the few blocks a later commit wrote again unchanged (an MST node
    // rebuilt identical when its neighbourhood changed).
    let diff = ok_car(
        &server,
        "com.atproto.sync.getRepo",
        &[("did", &alice.did), ("since", &rev)],
    );
    let (roots, diff_blocks) = decode_car(&diff).unwrap();
    assert_eq!(roots.len(), 1);
    assert_eq!(roots[0].to_string(), new_head);
    let diff_cids: HashSet<Cid> = diff_blocks.iter().map(|(cid, _)| *cid).collect();
    let (before_cids, now_cids) = (block_set(&before), block_set(&now));
    assert!(diff_cids.is_subset(&now_cids));
    let lacking: HashSet<Cid> = now_cids.difference(&before_cids).copied().collect();
    assert!(lacking.is_subset(&diff_cids));
    // Exactly the blocks the earlier export lacked: none it already held.
    let already_held = diff_cids.intersection(&before_cids).count();
    assert_eq!(
        already_held,
        0,
        "{already_held} of the {} blocks were held at {rev}",
        diff_cids.len()
    );
    // ... so that applied onto the earlier export they give the current repo.
    let mut merged: Vec<(Cid, Vec<u8>)> = decode_car(&before).unwrap().1;
    merged.extend(diff_blocks);
    let merged = encode_car(&roots, merged).unwrap();
    let applied = verify_repo_lenient(merged, &alice.did, &key);
    assert_eq!(applied.commit_cid.to_string(), new_head);
    assert_eq!(applied.records, now_repo.records);

    // Since the head: the root and no blocks.
    let nothing = ok_car(
        &server,
        "com.atproto.sync.getRepo",
        &[("did", &alice.did), ("since", &new_rev)],
    );
    let (roots, blocks) = decode_car(&nothing).unwrap();
    assert_eq!((roots[0].to_string(), blocks.len()), (new_head, 0));
}

/// Like [`verify_repo`], for a CAR that may also hold blocks the repo no longer uses (an old
/// export with a diff on top).
fn verify_repo_lenient(car: Vec<u8>, did: &str, key: &PublicKey) -> VerifiedRepo {
    let buffer = CarBuffer::parse(car, CarLimits::default()).unwrap();
    let expect = ImportExpectations {
        did: Some(did),
        signing_key: Some(key),
        ..Default::default()
    };
    verify_car(buffer, &expect).unwrap()
}

/// Checks a getRecord CAR with nothing but its own blocks: the commit is the root and is
/// signed by `key`, and looking `path` up from its MST root finds what the CAR claims. Returns
/// the record's CID and bytes, or `None` for a proven absence.
fn check_record_proof(car: Vec<u8>, key: &PublicKey, path: &str) -> Option<(Cid, Vec<u8>)> {
    let car = CarBuffer::parse(car, CarLimits::default()).unwrap();
    let [root] = car.roots() else {
        panic!("one root expected")
    };
    let commit = Commit::from_block(root, car.get(root).unwrap()).unwrap();
    commit.verify(key).unwrap();
    assert!(
        car.len() < 20,
        "a proof, not the repo: {} blocks",
        car.len()
    );
    let found = mst::get(&car, &commit.data, path).expect("the proof holds the whole path");
    found.map(|cid| (cid, car.get(&cid).expect("the record block").to_vec()))
}

#[test]
fn record_proofs_and_blocks() {
    let server = start();
    let alice = create_account(&server, "alice");
    let bob = create_account(&server, "bob");
    create_notes(&server, &alice, 0..200, 20);
    create_notes(&server, &alice, 200..250, 20);
    let key = signing_key(&server, &alice.did);
    let (head, _) = latest_commit(&server, &alice.did);

    // A present record: its block, proven from the signed commit.
    let (_, cids) = apply_writes(
        &server,
        &alice,
        vec![
            json!({"$type": "com.atproto.repo.applyWrites#update", "collection": NOTE,
                    "rkey": rkey(42), "value": note(42, "v2", 20)}),
        ],
    );
    let car = ok_car(
        &server,
        "com.atproto.sync.getRecord",
        &[
            ("did", &alice.did),
            ("collection", NOTE),
            ("rkey", &rkey(42)),
        ],
    );
    let (cid, bytes) = check_record_proof(car, &key, &format!("{NOTE}/{}", rkey(42))).unwrap();
    assert_eq!(cid.to_string(), cids[0].as_str().unwrap());
    let value = pds_ipld::json::cbor_to_json(&bytes).unwrap();
    assert_eq!(value, note(42, "v2", 20));

    // Absent records (a gap between keys, past the last key, another collection): 200 and a
    // proof of absence.
    for (collection, key_rkey) in [
        (NOTE, "note000042a"),
        (NOTE, "zzzz"),
        ("app.bsky.feed.post", "3kabc"),
    ] {
        let car = ok_car(
            &server,
            "com.atproto.sync.getRecord",
            &[
                ("did", &alice.did),
                ("collection", collection),
                ("rkey", key_rkey),
            ],
        );
        assert_eq!(
            check_record_proof(car, &key, &format!("{collection}/{key_rkey}")),
            None
        );
    }

    // getBlocks: the blocks asked for, no roots; any missing one fails the request.
    let (new_head, _) = latest_commit(&server, &alice.did);
    assert_ne!(new_head, head);
    let commit_cid: Cid = pds_ipld::parse_cid(&new_head).unwrap();
    let car = ok_car(
        &server,
        "com.atproto.sync.getBlocks",
        &[
            ("did", &alice.did),
            ("cids", &new_head),
            ("cids", cids[0].as_str().unwrap()),
        ],
    );
    let (roots, blocks) = decode_car(&car).unwrap();
    assert!(roots.is_empty());
    let got: Vec<String> = blocks.iter().map(|(c, _)| c.to_string()).collect();
    assert_eq!(
        got,
        vec![new_head.clone(), cids[0].as_str().unwrap().to_owned()]
    );
    let commit = Commit::from_block(&commit_cid, &blocks[0].1).unwrap();
    commit.verify(&key).unwrap();

    // The old head is gone from the repo; Bob's commit was never in it.
    let (bobs_head, _) = latest_commit(&server, &bob.did);
    let missing = get_car(
        &server,
        "com.atproto.sync.getBlocks",
        &[
            ("did", &alice.did),
            ("cids", &new_head),
            ("cids", &head),
            ("cids", &bobs_head),
        ],
        Auth::Anonymous,
    )
    .unwrap_err();
    assert_error(
        missing,
        "InvalidRequest",
        &format!("Could not find cids: {head},{bobs_head}"),
    );
    assert_error(
        get_car(
            &server,
            "com.atproto.sync.getBlocks",
            &[
                ("did", &alice.did),
                ("cids", &new_head),
                ("cids", "bafynotacid"),
            ],
            Auth::Anonymous,
        )
        .unwrap_err(),
        "InvalidRequest",
        "cids/1 must be a cid string",
    );
    assert_error(
        get_car(
            &server,
            "com.atproto.sync.getBlocks",
            &[("did", &alice.did)],
            Auth::Anonymous,
        )
        .unwrap_err(),
        "InvalidRequest",
        "Params must have the property \"cids\"",
    );
}

/// Marks an account deactivated or taken down (`column`: `deactivated_at` or `takedown_ref`) in
/// the server's database, beside the running server (WAL lets both use it): no API does that
/// yet.
fn set_account_column(server: &TestServer, did: &str, column: &str, set: bool) {
    let conn = rusqlite::Connection::open(server.data_dir().join("pds.sqlite")).unwrap();
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    let value = set.then_some("2024-05-01T00:00:00.000Z");
    let changed = conn
        .execute(
            &format!("UPDATE account SET {column} = ?2 WHERE did = ?1"),
            (did, value),
        )
        .unwrap();
    assert_eq!(changed, 1);
}

/// Every listRepos page from the start, `limit` at a time.
fn list_all(server: &TestServer, limit: usize) -> Vec<Value> {
    let limit = limit.to_string();
    let mut cursor: Option<String> = None;
    let mut repos = Vec::new();
    loop {
        let mut query = vec![("limit", limit.as_str())];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor));
        }
        let (status, page) = get_json(server, "com.atproto.sync.listRepos", &query);
        assert_eq!(status, 200, "{page}");
        let items = page["repos"].as_array().unwrap();
        assert!(items.len() <= limit.parse().unwrap());
        repos.extend(items.iter().cloned());
        match page["cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => {
                assert!(
                    items.is_empty(),
                    "the cursor stops only after an empty page"
                );
                return repos;
            }
        }
    }
}

/// The code of the last account-deletion e-mail to `to` (dev mode logs mail instead of
/// sending it).
#[test]
fn listing_statuses_and_refusals() {
    let server = start();
    let accounts: Vec<Account> = (0..5)
        .map(|i| create_account(&server, &format!("user{i}")))
        .collect();
    create_notes(&server, &accounts[0], 0..3, 10);

    // Paging covers every account once, whatever the page size; each entry is its head.
    let full = list_all(&server, 1000);
    for limit in [1, 2, 3] {
        assert_eq!(list_all(&server, limit), full, "limit {limit}");
    }
    let (status, default_page) = get_json(&server, "com.atproto.sync.listRepos", &[]);
    assert_eq!(status, 200);
    assert_eq!(default_page["repos"].as_array().unwrap(), &full);
    let listed: HashSet<&str> = full.iter().map(|r| r["did"].as_str().unwrap()).collect();
    let created: HashSet<&str> = accounts.iter().map(|a| a.did.as_str()).collect();
    assert_eq!(listed, created);
    assert_eq!(full.len(), accounts.len());
    for repo in &full {
        let (head, rev) = latest_commit(&server, repo["did"].as_str().unwrap());
        assert_eq!(
            repo,
            &json!({"did": repo["did"], "head": head, "rev": rev, "active": true})
        );
    }
    for (limit, message) in [
        ("0", "limit can not be less than 1"),
        ("1001", "limit can not be greater than 1000"),
        ("many", "limit must be an integer"),
    ] {
        assert_error(
            get_json(&server, "com.atproto.sync.listRepos", &[("limit", limit)]),
            "InvalidRequest",
            message,
        );
    }

    // getRepoStatus of an active account: its rev.
    let alice = &accounts[0];
    let (_, rev) = latest_commit(&server, &alice.did);
    let (status, body) = get_json(
        &server,
        "com.atproto.sync.getRepoStatus",
        &[("did", &alice.did)],
    );
    assert_eq!(
        (status, body),
        (200, json!({"did": alice.did, "active": true, "rev": rev}))
    );

    // Inactive accounts: reported by getRepoStatus and listRepos, refused by the rest, except
    // to the account itself and the operator.
    let everyone_else = create_account(&server, "bystander");
    for (column, status, error) in [
        ("deactivated_at", "deactivated", "RepoDeactivated"),
        ("takedown_ref", "takendown", "RepoTakendown"),
    ] {
        set_account_column(&server, &alice.did, column, true);
        let (code, body) = get_json(
            &server,
            "com.atproto.sync.getRepoStatus",
            &[("did", &alice.did)],
        );
        assert_eq!(
            (code, body),
            (
                200,
                json!({"did": alice.did, "active": false, "status": status})
            )
        );
        let listed = list_all(&server, 2);
        let entry = listed
            .iter()
            .find(|r| r["did"] == alice.did.as_str())
            .unwrap();
        assert_eq!(
            (&entry["active"], &entry["status"]),
            (&json!(false), &json!(status))
        );

        let did = alice.did.as_str();
        let head = head_as_admin(&server, did);
        let car_methods: [(&str, Vec<(&str, &str)>); 4] = [
            ("com.atproto.sync.getRepo", vec![("did", did)]),
            ("com.atproto.sync.getCheckout", vec![("did", did)]),
            (
                "com.atproto.sync.getBlocks",
                vec![("did", did), ("cids", &head)],
            ),
            (
                "com.atproto.sync.getRecord",
                vec![("did", did), ("collection", NOTE), ("rkey", "note000001")],
            ),
        ];
        for (nsid, query) in &car_methods {
            for auth in [Auth::Anonymous, Auth::Bearer(&everyone_else.token)] {
                assert_error(get_car(&server, nsid, query, auth).unwrap_err(), error, did);
            }
            get_car(&server, nsid, query, Auth::Bearer(&alice.token))
                .unwrap_or_else(|e| panic!("{nsid} as the account: {e:?}"));
            get_car(&server, nsid, query, Auth::Admin)
                .unwrap_or_else(|e| panic!("{nsid} as the admin: {e:?}"));
        }
        for nsid in [
            "com.atproto.sync.getLatestCommit",
            "com.atproto.sync.getHead",
        ] {
            let res = send(&server, nsid, &[("did", did)], Auth::Anonymous);
            let answer = (res.status().as_u16(), res.json().unwrap());
            assert_error(answer, error, &format!("Repo has been {status}: {did}"));
            let res = send(&server, nsid, &[("did", did)], Auth::Bearer(&alice.token));
            assert_eq!(res.status().as_u16(), 200, "{nsid}");
            let res = send(&server, nsid, &[("did", did)], Auth::Admin);
            assert_eq!(res.status().as_u16(), 200, "{nsid}");
        }
        // Bad credentials are refused, not taken for anonymous.
        let res = send(
            &server,
            "com.atproto.sync.getRepo",
            &[("did", did)],
            Auth::Bearer("not-a-token"),
        );
        assert_eq!(res.status().as_u16(), 401);
        set_account_column(&server, &alice.did, column, false);
    }

    // A deleted account is gone from every method.
    let bob = &accounts[1];
    let (status, body) = post(
        &server,
        "com.atproto.server.requestAccountDelete",
        Some(&bob.token),
        json!({}),
    );
    assert_eq!(status, 200, "{body}");
    let code = deletion_code(&server, &bob.email);
    let (status, body) = post(
        &server,
        "com.atproto.server.deleteAccount",
        None,
        json!({"did": bob.did, "password": PASSWORD, "token": code}),
    );
    assert_eq!(status, 200, "{body}");
    let gone = format!("Could not find repo for DID: {}", bob.did);
    assert_error(
        get_json(
            &server,
            "com.atproto.sync.getRepoStatus",
            &[("did", &bob.did)],
        ),
        "RepoNotFound",
        &gone,
    );
    assert_error(
        get_car(
            &server,
            "com.atproto.sync.getRepo",
            &[("did", &bob.did)],
            Auth::Admin,
        )
        .unwrap_err(),
        "RepoNotFound",
        &gone,
    );
    assert!(
        list_all(&server, 2)
            .iter()
            .all(|r| r["did"] != bob.did.as_str())
    );
    assert_eq!(list_all(&server, 1000).len(), accounts.len());
}

/// The head commit CID of `did`, read with the admin's eyes (the account may be inactive).
fn head_as_admin(server: &TestServer, did: &str) -> String {
    let res = send(
        server,
        "com.atproto.sync.getLatestCommit",
        &[("did", did)],
        Auth::Admin,
    );
    let body: Value = res.json().unwrap();
    body["cid"].as_str().unwrap().to_owned()
}

#[test]
fn bad_input_gets_xrpc_errors() {
    let server = start();
    let alice = create_account(&server, "alice");
    let did = alice.did.as_str();
    let unknown = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
    let methods = [
        "com.atproto.sync.getRepo",
        "com.atproto.sync.getCheckout",
        "com.atproto.sync.getLatestCommit",
        "com.atproto.sync.getHead",
        "com.atproto.sync.getRepoStatus",
        "com.atproto.sync.getBlocks",
        "com.atproto.sync.getRecord",
    ];
    // Enough valid parameters that only `did` is at fault.
    let rest = |nsid: &str| -> Vec<(&'static str, String)> {
        match nsid {
            "com.atproto.sync.getBlocks" => {
                vec![(
                    "cids",
                    "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm".into(),
                )]
            }
            "com.atproto.sync.getRecord" => {
                vec![("collection", NOTE.into()), ("rkey", "note000001".into())]
            }
            _ => vec![],
        }
    };
    for nsid in methods {
        let extra = rest(nsid);
        let with = |did: Option<&str>| {
            let mut query: Vec<(&str, &str)> =
                extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
            if let Some(did) = did {
                query.push(("did", did));
            }
            let res = send(&server, nsid, &query, Auth::Anonymous);
            (res.status().as_u16(), res.json().unwrap_or(Value::Null))
        };
        assert_error(
            with(None),
            "InvalidRequest",
            "Params must have the property \"did\"",
        );
        assert_error(
            with(Some("not-a-did")),
            "InvalidRequest",
            "did must be a valid did",
        );
        assert_error(
            with(Some(unknown)),
            "RepoNotFound",
            &format!("Could not find repo for DID: {unknown}"),
        );
    }
    assert_error(
        get_json(
            &server,
            "com.atproto.sync.getRepo",
            &[("did", did), ("since", "yesterday")],
        ),
        "InvalidRequest",
        "since must be a valid TID",
    );
    assert_error(
        get_json(
            &server,
            "com.atproto.sync.getRecord",
            &[("did", did), ("collection", "not an nsid"), ("rkey", "a")],
        ),
        "InvalidRequest",
        "collection must be a valid nsid",
    );
    assert_error(
        get_json(
            &server,
            "com.atproto.sync.getRecord",
            &[("did", did), ("collection", NOTE), ("rkey", "..")],
        ),
        "InvalidRequest",
        "rkey must be a valid Record Key",
    );
    assert_error(
        get_json(
            &server,
            "com.atproto.sync.getRecord",
            &[("did", did), ("collection", NOTE)],
        ),
        "InvalidRequest",
        "Params must have the property \"rkey\"",
    );
    assert_error(
        get_json(
            &server,
            "com.atproto.sync.getBlocks",
            &[("did", did), ("cids", "zzzz")],
        ),
        "InvalidRequest",
        "cids/0 must be a cid string",
    );
}

/// The server's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn large_repo_streams_with_bounded_memory() {
    const RECORDS: usize = 20_000;
    const BATCH: usize = 200;
    /// About 2 KB per record: the CAR is some 45 MB, far more than the allowed growth.
    const PADDING: usize = 2000;
    /// What the server may add while the download runs.
    const MAX_GROWTH_KIB: u64 = 8 * 1024;

    let server = start();
    let alice = create_account(&server, "big");
    for start in (0..RECORDS).step_by(BATCH) {
        create_notes(&server, &alice, start..start + BATCH, PADDING);
    }
    let (head, _) = latest_commit(&server, &alice.did);

    // A slow client: small reads with pauses, so the server must wait for it. The baseline is
    // taken before the request, so a server that built the CAR before answering would show it.
    let pid = server.pid();
    let at_start = rss_kib(pid);
    let mut res = send(
        &server,
        "com.atproto.sync.getRepo",
        &[("did", &alice.did)],
        Auth::Anonymous,
    );
    assert_eq!(res.status().as_u16(), 200);
    let mut peak = at_start;
    let mut car = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    let mut reads = 0u64;
    loop {
        let n = res.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        car.extend_from_slice(&buf[..n]);
        reads += 1;
        if reads.is_multiple_of(8) {
            std::thread::sleep(Duration::from_millis(20));
            peak = peak.max(rss_kib(pid));
        }
    }
    peak = peak.max(rss_kib(pid));
    let size_kib = car.len() as u64 / 1024;
    assert!(size_kib > 4 * MAX_GROWTH_KIB, "the CAR is {size_kib} KiB");
    assert!(
        peak - at_start <= MAX_GROWTH_KIB,
        "the server grew by {} KiB while streaming a {size_kib} KiB CAR",
        peak - at_start
    );
    eprintln!("streamed {size_kib} KiB; server RSS {at_start} KiB at the start, peak {peak} KiB");

    // And what arrived is the whole repo.
    let key = signing_key(&server, &alice.did);
    let repo = verify_repo(car, &alice.did, &key);
    assert_eq!(repo.commit_cid.to_string(), head);
    assert_eq!(repo.records.len(), RECORDS);
}
