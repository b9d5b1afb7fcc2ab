//! Blobs on the real binary, over HTTP: uploadBlob (small, multi-megabyte streamed, over the
//! limit, unauthenticated, twice), getBlob (bytes, headers, ranges, refusals), listBlobs and
//! listMissingBlobs.
//!
//! The server runs the shipped dev setup (its embedded did:plc directory, open sign-up). One test
//! writes records over XRPC (createRecord, deleteRecord); the others link blobs by calling
//! `pds::blobs::link_commit` / `link_import` on the server's database from the test (the calls
//! the record-writing and import code make inside their transactions), which reaches states
//! such as an imported repo with blobs still missing.

mod common;

use std::io::{Read, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use common::{ServerOptions, TestServer, http};
use pds_repo::Write;
use pds_syntax::{Nsid, RecordKey};
use reqwest::blocking::{Body, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The CID of a blob, computed here from first principles: CIDv1, raw codec (0x55), sha2-256
/// multihash, base32 lower-case with the `b` multibase prefix.
fn blob_cid(bytes: &[u8]) -> String {
    let mut cid = vec![0x01, 0x55, 0x12, 0x20];
    cid.extend_from_slice(&Sha256::digest(bytes));
    format!(
        "b{}",
        data_encoding::BASE32_NOPAD
            .encode(&cid)
            .to_ascii_lowercase()
    )
}

/// `n` bytes that do not repeat in any short period.
fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

struct Account {
    did: String,
    token: String,
}

fn start(env: Vec<(&str, &str)>) -> TestServer {
    TestServer::start_with(ServerOptions {
        env,
        ..Default::default()
    })
}

fn create_account(server: &TestServer, handle: &str) -> Account {
    let res = http()
        .post(server.url("/xrpc/com.atproto.server.createAccount"))
        .json(&json!({"handle": handle, "password": "a good password"}))
        .send()
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().unwrap();
    assert_eq!(status, 200, "{body}");
    Account {
        did: body["did"].as_str().unwrap().to_owned(),
        token: body["accessJwt"].as_str().unwrap().to_owned(),
    }
}

fn upload(server: &TestServer, token: Option<&str>, mime: &str, body: Body) -> Response {
    let mut req = http()
        .post(server.url("/xrpc/com.atproto.repo.uploadBlob"))
        .header("content-type", mime)
        .body(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().unwrap()
}

/// Uploads and returns the output's `blob`.
fn upload_ok(server: &TestServer, account: &Account, mime: &str, bytes: &[u8]) -> Value {
    let res = upload(
        server,
        Some(&account.token),
        mime,
        Body::from(bytes.to_vec()),
    );
    let status = res.status().as_u16();
    let text = res.text().unwrap();
    assert_eq!(status, 200, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    body["blob"].clone()
}

fn json_of(res: Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}")),
    )
}

fn get(server: &TestServer, path_and_query: &str) -> Response {
    http()
        .get(server.url(&format!("/xrpc/{path_and_query}")))
        .send()
        .unwrap()
}

fn get_blob_url(server: &TestServer, did: &str, cid: &str) -> String {
    server.url(&format!(
        "/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}"
    ))
}

/// The server's database, opened beside it (WAL: both can use it at once).
fn database(server: &TestServer) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(server.data_dir().join("pds.sqlite")).unwrap();
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    conn
}

fn post_record(blobs: &[&Value]) -> Vec<u8> {
    let images: Vec<Value> = blobs
        .iter()
        .map(|b| json!({"alt": "", "image": b}))
        .collect();
    pds_ipld::json_to_cbor(&json!({
        "$type": "app.bsky.feed.post",
        "text": "look",
        "createdAt": "2024-01-01T00:00:00.000Z",
        "embed": {"$type": "app.bsky.embed.images", "images": images},
    }))
    .unwrap()
}

/// Commits `writes`' blob links for `did` as the record-writing code does, in one transaction.
fn link(server: &TestServer, did: &str, rev: &str, writes: &[Write]) -> Result<(), String> {
    let mut conn = database(server);
    let tx = conn.transaction().unwrap();
    match pds::blobs::link_commit(&tx, did, rev, writes) {
        Ok(_) => {
            tx.commit().unwrap();
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

fn create(rkey: &str, blobs: &[&Value]) -> Write {
    Write::create(
        Nsid::new("app.bsky.feed.post").unwrap(),
        RecordKey::new(rkey).unwrap(),
        post_record(blobs),
    )
}

fn delete(rkey: &str) -> Write {
    Write::delete(
        Nsid::new("app.bsky.feed.post").unwrap(),
        RecordKey::new(rkey).unwrap(),
    )
}

fn blob_files(server: &TestServer) -> Vec<String> {
    let root = server.data_dir().join("blocks");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap();
        for file in std::fs::read_dir(dir.path()).unwrap() {
            files.push(format!(
                "{}/{}",
                dir.file_name().to_string_lossy(),
                file.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    files.sort();
    files
}

#[test]
fn upload_then_serve_once_referenced() {
    let server = start(vec![]);
    let alice = create_account(&server, "alice.test");

    // A small one: the answer is the reference's blob object, byte for byte.
    let small = b"hello, blobs".to_vec();
    let res = upload(
        &server,
        Some(&alice.token),
        "text/plain",
        Body::from(small.clone()),
    );
    assert_eq!(res.status().as_u16(), 200);
    let cid = blob_cid(&small);
    assert_eq!(
        res.text().unwrap(),
        format!(
            r#"{{"blob":{{"$type":"blob","ref":{{"$link":"{cid}"}},"mimeType":"text/plain","size":12}}}}"#
        )
    );

    // A large one, streamed (chunked, no Content-Length), and the content's type wins.
    let mut large = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    large.extend(pseudo_random(6 * 1024 * 1024 + 17, 7));
    let large_cid = blob_cid(&large);
    let reader = std::io::Cursor::new(large.clone());
    let (status, body) = json_of(upload(
        &server,
        Some(&alice.token),
        "application/octet-stream",
        Body::new(reader),
    ));
    assert_eq!(status, 200, "{body}");
    let large_blob = body["blob"].clone();
    assert_eq!(large_blob["ref"]["$link"], large_cid);
    assert_eq!(large_blob["size"], large.len());
    assert_eq!(large_blob["mimeType"], "image/png");

    // Uploaded but not referenced: temporary, not served, not listed.
    let (status, body) = json_of(
        http()
            .get(get_blob_url(&server, &alice.did, &large_cid))
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("BlobNotFound")),
        "{body}"
    );
    let (status, body) = json_of(get(
        &server,
        &format!("com.atproto.sync.listBlobs?did={}", alice.did),
    ));
    assert_eq!(status, 200);
    assert_eq!(body, json!({"cids": []}));

    // A record references it: now it is served, identical, with the right headers.
    link(
        &server,
        &alice.did,
        "3kaaaaaaaaaa2",
        &[create("one", &[&large_blob])],
    )
    .unwrap();
    let res = http()
        .get(get_blob_url(&server, &alice.did, &large_cid))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let headers = res.headers().clone();
    let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(header("content-type"), "image/png");
    assert_eq!(header("content-length"), large.len().to_string());
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(
        header("content-security-policy"),
        "default-src 'none'; sandbox"
    );
    assert_eq!(header("accept-ranges"), "bytes");
    assert_eq!(header("etag"), format!("\"{large_cid}\""));
    let served = res.bytes().unwrap();
    assert!(served == large, "served bytes differ");

    // Conditional: the same version is not sent again.
    let res = http()
        .get(get_blob_url(&server, &alice.did, &large_cid))
        .header("if-none-match", format!("\"{large_cid}\""))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 304);

    // Listed now.
    let (_, body) = json_of(get(
        &server,
        &format!("com.atproto.sync.listBlobs?did={}", alice.did),
    ));
    assert_eq!(body, json!({"cursor": large_cid, "cids": [large_cid]}));
}

#[test]
fn range_requests() {
    let server = start(vec![]);
    let alice = create_account(&server, "alice.test");
    let bytes = pseudo_random(100_000, 3);
    let blob = upload_ok(&server, &alice, "video/mp4", &bytes);
    let cid = blob["ref"]["$link"].as_str().unwrap().to_owned();
    link(
        &server,
        &alice.did,
        "3kaaaaaaaaaa2",
        &[create("one", &[&blob])],
    )
    .unwrap();
    let url = get_blob_url(&server, &alice.did, &cid);
    let ranged = |range: &str| http().get(&url).header("range", range).send().unwrap();

    for (range, start, end) in [
        ("bytes=0-9", 0, 9),
        ("bytes=99990-", 99_990, 99_999),
        ("bytes=-5", 99_995, 99_999),
        ("bytes=500-99999999", 500, 99_999),
    ] {
        let res = ranged(range);
        assert_eq!(res.status().as_u16(), 206, "{range}");
        assert_eq!(
            res.headers()["content-range"],
            format!("bytes {start}-{end}/100000").as_str()
        );
        assert_eq!(
            res.headers()["content-length"],
            (end - start + 1).to_string().as_str()
        );
        assert_eq!(res.headers()["content-type"], "video/mp4");
        assert_eq!(res.bytes().unwrap(), &bytes[start..=end], "{range}");
    }

    // Past the end: 416 with the size, in the XRPC error shape.
    let res = ranged("bytes=100000-");
    assert_eq!(res.status().as_u16(), 416);
    assert_eq!(res.headers()["content-range"], "bytes */100000");
    let (_, body) = json_of(res);
    assert_eq!(body["error"], "InvalidRequest");

    // Several ranges, another unit, nonsense, or an If-Range for another version: the whole blob.
    for range in ["bytes=0-1,5-6", "items=0-5", "bytes=9-1"] {
        let res = ranged(range);
        assert_eq!(res.status().as_u16(), 200, "{range}");
        assert_eq!(res.bytes().unwrap().len(), bytes.len());
    }
    let res = http()
        .get(&url)
        .header("range", "bytes=0-9")
        .header("if-range", "\"bafkreisomethingelse\"")
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let res = http()
        .get(&url)
        .header("range", "bytes=0-9")
        .header("if-range", format!("\"{cid}\""))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 206);
}

/// Sends `head` then `body` over a fresh connection, writing all of it whatever the server
/// does meanwhile (as a simple client does), then reads the whole answer.
fn raw_exchange(server: &TestServer, head: &str, body: &[u8]) -> Result<String, String> {
    let mut stream = TcpStream::connect(server.addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(head.as_bytes())
        .map_err(|e| format!("sending the head: {e}"))?;
    stream
        .write_all(body)
        .map_err(|e| format!("sending the body: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| format!("reading the answer: {e}"))?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in body.chunks(64 * 1024) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[test]
fn uploads_over_the_limit_get_413_json() {
    // 100 kB blobs; the request body limit stays at its 1 MiB floor.
    let server = start(vec![("PDS_BLOB_UPLOAD_LIMIT", "100000")]);
    let alice = create_account(&server, "alice.test");
    let too_large = |res: Response| {
        let (status, body) = json_of(res);
        assert_eq!(status, 413, "{body}");
        assert_eq!(body["error"], "PayloadTooLarge");
        body
    };

    // Declared too large (Content-Length), and found too large while streaming (chunked).
    let body = too_large(upload(
        &server,
        Some(&alice.token),
        "image/jpeg",
        Body::from(vec![1u8; 200_000]),
    ));
    assert_eq!(body["message"], "request entity too large");
    too_large(upload(
        &server,
        Some(&alice.token),
        "image/jpeg",
        Body::new(std::io::Cursor::new(vec![1u8; 200_000])),
    ));
    // Exactly the limit is accepted.
    upload_ok(&server, &alice, "image/jpeg", &vec![2u8; 100_000]);

    // A client that writes its whole body before reading still gets the JSON error, whether
    // the body-size layer (3 MiB > 1 MiB) or the blob limit refuses it.
    let big = pseudo_random(3 * 1024 * 1024, 11);
    let auth = format!("Authorization: Bearer {}\r\n", alice.token);
    for (framing, payload) in [
        (format!("Content-Length: {}\r\n", big.len()), big.clone()),
        ("Transfer-Encoding: chunked\r\n".to_owned(), chunked(&big)),
        (
            format!("Content-Length: {}\r\n", 500_000),
            big[..500_000].to_vec(),
        ),
    ] {
        let head = format!(
            "POST /xrpc/com.atproto.repo.uploadBlob HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: image/jpeg\r\n{auth}{framing}Connection: close\r\n\r\n"
        );
        let answer =
            raw_exchange(&server, &head, &payload).unwrap_or_else(|e| panic!("{framing}: {e}"));
        assert!(answer.starts_with("HTTP/1.1 413"), "{framing}: {answer}");
        assert!(answer.contains(r#""error":"PayloadTooLarge""#), "{answer}");
    }

    // Nothing of the refused uploads was kept: one blob on disk, no temporary files.
    assert_eq!(blob_files(&server).len(), 1, "{:?}", blob_files(&server));
}

#[test]
fn uploads_need_a_session_and_dedupe() {
    let server = start(vec![]);
    let alice = create_account(&server, "alice.test");

    let (status, body) = json_of(upload(&server, None, "text/plain", Body::from("x")));
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("AuthenticationRequired"))
    );
    let (status, body) = json_of(upload(
        &server,
        Some("not-a-token"),
        "text/plain",
        Body::from("x"),
    ));
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("InvalidToken"))
    );
    // An unauthenticated large body is refused in the XRPC shape too.
    let (status, _) = json_of(upload(
        &server,
        None,
        "text/plain",
        Body::from(vec![0u8; 2_000_000]),
    ));
    assert_eq!(status, 401);
    // A GET is the wrong method.
    let (status, _) = json_of(get(&server, "com.atproto.repo.uploadBlob"));
    assert_eq!(status, 400);

    // The same bytes twice: the same blob, stored once.
    let bytes = pseudo_random(10_000, 5);
    let first = upload_ok(&server, &alice, "application/octet-stream", &bytes);
    let second = upload_ok(&server, &alice, "application/octet-stream", &bytes);
    assert_eq!(first, second);
    assert_eq!(first["ref"]["$link"], blob_cid(&bytes));
    // An empty blob is a blob.
    let empty = upload_ok(&server, &alice, "text/plain", b"");
    assert_eq!(empty["size"], 0);
    assert_eq!(empty["ref"]["$link"], blob_cid(b""));
    let files = blob_files(&server);
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| f.starts_with(&alice.did)), "{files:?}");
}

#[test]
fn listings_and_refusals() {
    let server = start(vec![]);
    let alice = create_account(&server, "alice.test");
    let bob = create_account(&server, "bob.test");
    let a = upload_ok(&server, &alice, "image/jpeg", b"\xff\xd8\xff\xe0 a");
    let b = upload_ok(&server, &alice, "image/jpeg", b"\xff\xd8\xff\xe0 b");
    let bobs = upload_ok(&server, &bob, "image/jpeg", b"\xff\xd8\xff\xe0 bob");
    let cid = |v: &Value| v["ref"]["$link"].as_str().unwrap().to_owned();

    // Records must reference blobs the account uploaded.
    let err = link(
        &server,
        &alice.did,
        "3kaaaaaaaaaa2",
        &[create("x", &[&bobs])],
    )
    .unwrap_err();
    assert_eq!(err, format!("Could not find blob: {}", cid(&bobs)));

    link(
        &server,
        &alice.did,
        "3kaaaaaaaaaa2",
        &[create("one", &[&a])],
    )
    .unwrap();
    link(
        &server,
        &alice.did,
        "3kaaaaaaaaab2",
        &[create("two", &[&a, &b])],
    )
    .unwrap();
    let mut both = vec![cid(&a), cid(&b)];
    both.sort();
    let list = |query: &str| {
        json_of(get(
            &server,
            &format!("com.atproto.sync.listBlobs?did={}{query}", alice.did),
        ))
    };
    assert_eq!(list("").1["cids"], json!(both));
    // Paging, and `since` a rev.
    let (_, page) = list("&limit=1");
    assert_eq!(page["cids"], json!([both[0]]));
    assert_eq!(page["cursor"], both[0]);
    let (_, rest) = list(&format!("&limit=1&cursor={}", both[0]));
    assert_eq!(rest["cids"], json!([both[1]]));
    let (_, since) = list("&since=3kaaaaaaaaaa2");
    assert_eq!(since["cids"], json!(both));
    let (_, since) = list("&since=3kaaaaaaaaab2");
    assert_eq!(since["cids"], json!([]));

    // Deleting the record that held the only reference to `b` unlinks it: no longer served.
    link(&server, &alice.did, "3kaaaaaaaaac2", &[delete("two")]).unwrap();
    assert_eq!(list("").1["cids"], json!([cid(&a)]));
    let (status, body) = json_of(
        http()
            .get(get_blob_url(&server, &alice.did, &cid(&b)))
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("BlobNotFound"))
    );

    // Parameter and repo errors, as the reference words them.
    for (query, status, error, message) in [
        (
            "com.atproto.sync.listBlobs",
            400,
            "InvalidRequest",
            "Params must have the property \"did\"",
        ),
        (
            "com.atproto.sync.listBlobs?did=nope",
            400,
            "InvalidRequest",
            "did must be a valid did",
        ),
        (
            "com.atproto.sync.listBlobs?did=did:plc:nobody&limit=1001",
            400,
            "InvalidRequest",
            "limit can not be greater than 1000",
        ),
        (
            "com.atproto.sync.listBlobs?did=did:plc:nobody&limit=0",
            400,
            "InvalidRequest",
            "limit can not be less than 1",
        ),
        (
            "com.atproto.sync.listBlobs?did=did:plc:nobody&since=yesterday",
            400,
            "InvalidRequest",
            "since must be a valid TID",
        ),
        (
            "com.atproto.sync.listBlobs?did=did:plc:nobody",
            400,
            "RepoNotFound",
            "Could not find repo for DID: did:plc:nobody",
        ),
        (
            "com.atproto.sync.getBlob?did=did:plc:nobody",
            400,
            "InvalidRequest",
            "Params must have the property \"cid\"",
        ),
        (
            "com.atproto.sync.getBlob?did=did:plc:nobody&cid=xyz",
            400,
            "InvalidRequest",
            "cid must be a cid string",
        ),
    ] {
        let (got_status, body) = json_of(get(&server, query));
        assert_eq!(
            (got_status, body["error"].as_str(), body["message"].as_str()),
            (status, Some(error), Some(message)),
            "{query}"
        );
    }
    let (status, body) = json_of(
        http()
            .get(get_blob_url(&server, "did:plc:nobody", &cid(&a)))
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("RepoNotFound"))
    );

    // Deactivated and taken-down repos: refused to others, served to the account itself.
    let db = database(&server);
    let url = get_blob_url(&server, &alice.did, &cid(&a));
    for (column, error) in [
        ("deactivated_at", "RepoDeactivated"),
        ("takedown_ref", "RepoTakendown"),
    ] {
        db.execute(
            &format!("UPDATE account SET {column} = 'x' WHERE did = ?1"),
            [&alice.did],
        )
        .unwrap();
        let (status, body) = json_of(http().get(&url).send().unwrap());
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{column}"
        );
        let (status, _) = list("");
        assert_eq!(status, 400);
        let res = http().get(&url).bearer_auth(&alice.token).send().unwrap();
        assert_eq!(res.status().as_u16(), 200, "{column}");
        // Another account's token is no key.
        let res = http().get(&url).bearer_auth(&bob.token).send().unwrap();
        assert_eq!(res.status().as_u16(), 400, "{column}");
        db.execute(
            &format!("UPDATE account SET {column} = NULL WHERE did = ?1"),
            [&alice.did],
        )
        .unwrap();
    }
}

#[test]
fn missing_blobs_after_an_import() {
    let server = start(vec![]);
    let alice = create_account(&server, "alice.test");
    let path = "com.atproto.repo.listMissingBlobs";
    let (status, body) = json_of(get(&server, path));
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("AuthenticationRequired"))
    );
    let missing = |query: &str| {
        json_of(
            http()
                .get(server.url(&format!("/xrpc/{path}{query}")))
                .bearer_auth(&alice.token)
                .send()
                .unwrap(),
        )
    };
    assert_eq!(missing(""), (200, json!({"blobs": []})));

    // An imported repo references blobs this server has never seen.
    let blob = |bytes: &[u8]| json!({"$type": "blob", "ref": {"$link": blob_cid(bytes)}, "mimeType": "image/png", "size": bytes.len()});
    let (one, two) = (blob(b"one"), blob(b"two"));
    let record_one = post_record(&[&one]);
    let record_two = post_record(&[&one, &two]);
    {
        let mut db = database(&server);
        let tx = db.transaction().unwrap();
        pds::blobs::link_import(
            &tx,
            &alice.did,
            "3kaaaaaaaaaa2",
            [
                ("app.bsky.feed.post/one", record_one.as_slice()),
                ("app.bsky.feed.post/two", record_two.as_slice()),
            ],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let mut want = vec![blob_cid(b"one"), blob_cid(b"two")];
    want.sort();
    let (status, body) = missing("");
    assert_eq!(status, 200, "{body}");
    let cids: Vec<&str> = body["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["cid"].as_str().unwrap())
        .collect();
    assert_eq!(cids, want);
    assert_eq!(body["cursor"], want[1]);
    assert!(
        body["blobs"][0]["recordUri"]
            .as_str()
            .unwrap()
            .starts_with(&format!("at://{}/app.bsky.feed.post/", alice.did)),
        "{body}"
    );
    let (_, page) = missing("?limit=1");
    assert_eq!(page["blobs"].as_array().unwrap().len(), 1);
    let (_, rest) = missing(&format!("?limit=1&cursor={}", want[0]));
    assert_eq!(rest["blobs"][0]["cid"], want[1]);
    let (status, body) = missing("?limit=5000");
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("limit can not be greater than 1000"))
    );

    // Uploading a missing blob fills the gap, and it is served at once (a record references it).
    upload_ok(&server, &alice, "image/png", b"one");
    let (_, body) = missing("");
    assert_eq!(body["blobs"].as_array().unwrap().len(), 1);
    assert_eq!(body["blobs"][0]["cid"], blob_cid(b"two"));
    let res = http()
        .get(get_blob_url(&server, &alice.did, &blob_cid(b"one")))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.bytes().unwrap().as_ref(), b"one");
}

/// The whole path over HTTP: createRecord links the uploaded blob (and refuses one never
/// uploaded), deleteRecord unlinks it.
#[test]
fn records_written_over_xrpc_link_and_unlink() {
    let server = start(vec![]);
    let alice = create_account(&server, "alice.test");
    let jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF and so on".to_vec();
    let blob = upload_ok(&server, &alice, "image/jpeg", &jpeg);
    let cid = blob["ref"]["$link"].as_str().unwrap().to_owned();
    let post = |blob: &Value| {
        json!({
            "repo": alice.did,
            "collection": "app.bsky.feed.post",
            "record": {
                "$type": "app.bsky.feed.post",
                "text": "look",
                "createdAt": "2024-01-01T00:00:00.000Z",
                "embed": {"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": blob}]},
            },
        })
    };
    let call = |nsid: &str, body: Value| {
        json_of(
            http()
                .post(server.url(&format!("/xrpc/{nsid}")))
                .bearer_auth(&alice.token)
                .json(&body)
                .send()
                .unwrap(),
        )
    };

    // A blob nobody uploaded: the write fails, as the reference's.
    let unknown = json!({"$type": "blob", "ref": {"$link": blob_cid(b"never uploaded")}, "mimeType": "image/jpeg", "size": 14});
    let (status, body) = call("com.atproto.repo.createRecord", post(&unknown));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("BlobNotFound")),
        "{body}"
    );

    let (status, created) = call("com.atproto.repo.createRecord", post(&blob));
    assert_eq!(status, 200, "{created}");
    let res = http()
        .get(get_blob_url(&server, &alice.did, &cid))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert_eq!(res.bytes().unwrap().as_ref(), jpeg.as_slice());
    let (_, listed) = json_of(get(
        &server,
        &format!("com.atproto.sync.listBlobs?did={}", alice.did),
    ));
    assert_eq!(listed["cids"], json!([cid]));

    let rkey = created["uri"].as_str().unwrap().rsplit('/').next().unwrap();
    let (status, body) = call(
        "com.atproto.repo.deleteRecord",
        json!({"repo": alice.did, "collection": "app.bsky.feed.post", "rkey": rkey}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = json_of(
        http()
            .get(get_blob_url(&server, &alice.did, &cid))
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("BlobNotFound"))
    );
}

#[test]
fn an_account_stores_blobs_up_to_its_quota() {
    let server = start(vec![("PDS_ACCOUNT_BLOB_QUOTA", "1000")]);
    let alice = create_account(&server, "alice.test");
    let bob = create_account(&server, "bob.test");
    let first = pseudo_random(600, 1);
    upload_ok(&server, &alice, "application/octet-stream", &first);
    // The same blob again takes no more room.
    upload_ok(&server, &alice, "application/octet-stream", &first);
    let (status, body) = json_of(upload(
        &server,
        Some(&alice.token),
        "application/octet-stream",
        Body::from(pseudo_random(600, 2)),
    ));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("StorageQuotaExceeded")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("600") && message.contains("1000"),
        "{message}"
    );
    // Nothing of the refused upload is kept; other accounts have their own quota.
    assert_eq!(blob_files(&server).len(), 1, "{:?}", blob_files(&server));
    upload_ok(
        &server,
        &bob,
        "application/octet-stream",
        &pseudo_random(600, 2),
    );
    upload_ok(
        &server,
        &alice,
        "application/octet-stream",
        &pseudo_random(400, 3),
    );
    // At the quota, any upload is refused before its bytes are taken.
    let (status, body) = json_of(upload(
        &server,
        Some(&alice.token),
        "application/octet-stream",
        Body::from(pseudo_random(10, 4)),
    ));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("StorageQuotaExceeded")),
        "{body}"
    );
    assert!(
        !body["message"].as_str().unwrap().contains(" of 10 bytes"),
        "{body}"
    );
}
