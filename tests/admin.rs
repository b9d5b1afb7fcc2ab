//! The operator's `com.atproto.admin.*` methods on the real binary: account views, and taking an
//! account down and back (its sessions end, its repo is refused to others and not writable, the
//! firehose announces both), behind the admin password.

mod common;

use common::{
    PASSWORD, ServerOptions, TestServer, create_account, get, http, next_frame, next_frame_where,
    post, subscribe,
};
use pds_ipld::Ipld;
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "admin-tests-password";

fn start() -> TestServer {
    TestServer::start_with(ServerOptions {
        env: vec![("PDS_ADMIN_PASSWORD", ADMIN_PASSWORD)],
        ..Default::default()
    })
}

fn admin_get(server: &TestServer, path_and_query: &str) -> (u16, Value) {
    let res = http()
        .get(server.url(path_and_query))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .unwrap();
    (res.status().as_u16(), res.json().unwrap_or(Value::Null))
}

fn admin_post(server: &TestServer, nsid: &str, body: Value) -> (u16, Value) {
    let res = http()
        .post(server.url(&format!("/xrpc/{nsid}")))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&body)
        .send()
        .unwrap();
    (res.status().as_u16(), res.json().unwrap_or(Value::Null))
}

fn takedown(server: &TestServer, did: &str, applied: bool) -> (u16, Value) {
    admin_post(
        server,
        "com.atproto.admin.updateSubjectStatus",
        json!({
            "subject": {"$type": "com.atproto.admin.defs#repoRef", "did": did},
            "takedown": {"applied": applied, "ref": "report-42"},
        }),
    )
}

fn str_field<'a>(frame: &'a pds_event_stream::DecodedFrame, name: &str) -> Option<&'a str> {
    match frame.get(name)? {
        Ipld::String(s) => Some(s),
        _ => None,
    }
}

#[test]
fn account_views_need_the_admin_password() {
    let server = start();
    let alice = create_account(&server, "alice");
    let bob = create_account(&server, "bob");

    let (status, view) = admin_get(
        &server,
        &format!("/xrpc/com.atproto.admin.getAccountInfo?did={}", alice.did),
    );
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["did"], alice.did.as_str());
    assert_eq!(view["handle"], "alice.test");
    assert_eq!(view["email"], "alice@example.com");
    assert!(view["indexedAt"].as_str().unwrap().ends_with('Z'));

    let query = format!(
        "/xrpc/com.atproto.admin.getAccountInfos?dids={}&dids={}&dids=did:plc:unknown",
        alice.did, bob.did
    );
    let (status, infos) = admin_get(&server, &query);
    assert_eq!(status, 200, "{infos}");
    let dids: Vec<&str> = infos["infos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["did"].as_str().unwrap())
        .collect();
    assert_eq!(dids, [alice.did.as_str(), bob.did.as_str()]);

    // Not the operator: refused.
    let path = format!("com.atproto.admin.getAccountInfo?did={}", alice.did);
    assert_eq!(get(&server, &path, None).0, 401);
    assert_eq!(get(&server, &path, Some(&alice.token)).0, 401);
    let res = http()
        .get(server.url(&format!("/xrpc/{path}")))
        .basic_auth("admin", Some("wrong"))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let (status, body) = admin_get(
        &server,
        "/xrpc/com.atproto.admin.getAccountInfo?did=did:plc:unknown",
    );
    assert_eq!(status, 400, "{body}");
}

#[test]
fn takedown_and_restore() {
    let server = start();
    let alice = create_account(&server, "alice");
    let bob = create_account(&server, "bob");
    let mut socket = subscribe(&server, None);

    let (status, body) = takedown(&server, &alice.did, true);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["takedown"]["applied"], true);
    let frame = next_frame_where(&mut socket, |f| {
        f.kind() == Some("#account") && str_field(f, "did") == Some(alice.did.as_str())
    });
    assert_eq!(frame.kind(), Some("#account"));
    assert_eq!(str_field(&frame, "did"), Some(alice.did.as_str()));
    assert_eq!(frame.get("active"), Some(&Ipld::Bool(false)));
    assert_eq!(str_field(&frame, "status"), Some("takendown"));

    let (status, subject) = admin_get(
        &server,
        &format!("/xrpc/com.atproto.admin.getSubjectStatus?did={}", alice.did),
    );
    assert_eq!(status, 200, "{subject}");
    assert_eq!(
        subject["takedown"],
        json!({"applied": true, "ref": "report-42"})
    );
    assert_eq!(subject["deactivated"]["applied"], false);

    // Taken down: no log-in, no writes, the repo refused to others; bob is untouched.
    let (status, body) = post(
        &server,
        "com.atproto.server.createSession",
        None,
        json!({"identifier": "alice.test", "password": PASSWORD}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("AccountTakedown"))
    );
    let (status, body) = post(
        &server,
        "com.atproto.repo.createRecord",
        Some(&alice.token),
        json!({"repo": alice.did, "collection": "app.bsky.feed.post",
               "record": {"$type": "app.bsky.feed.post", "text": "x", "createdAt": "2024-01-01T00:00:00Z"}}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("AccountTakedown"))
    );
    let (status, body) = get(
        &server,
        &format!("com.atproto.sync.getLatestCommit?did={}", alice.did),
        None,
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("RepoTakendown"))
    );
    let (status, _) = get(
        &server,
        &format!("com.atproto.sync.getLatestCommit?did={}", bob.did),
        None,
    );
    assert_eq!(status, 200);

    // Restored: announced active again, and everything works.
    let (status, body) = takedown(&server, &alice.did, false);
    assert_eq!(status, 200, "{body}");
    let frame = next_frame(&mut socket).unwrap();
    assert_eq!(frame.kind(), Some("#account"));
    assert_eq!(frame.get("active"), Some(&Ipld::Bool(true)));
    assert_eq!(frame.get("status"), None);
    let (status, body) = post(
        &server,
        "com.atproto.server.createSession",
        None,
        json!({"identifier": "alice.test", "password": PASSWORD}),
    );
    assert_eq!(status, 200, "{body}");

    // Only accounts are subjects here yet; unknown accounts and non-operators are refused.
    let (status, body) = admin_post(
        &server,
        "com.atproto.admin.updateSubjectStatus",
        json!({"subject": {"$type": "com.atproto.repo.strongRef", "uri": "at://x/y/z", "cid": "bafy"},
               "takedown": {"applied": true}}),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = takedown(&server, "did:plc:unknownunknownunknown", true);
    assert_eq!(status, 400, "{body}");
    let (status, _) = post(
        &server,
        "com.atproto.admin.updateSubjectStatus",
        Some(&bob.token),
        json!({"subject": {"$type": "com.atproto.admin.defs#repoRef", "did": alice.did},
               "takedown": {"applied": true}}),
    );
    assert_eq!(status, 401);
}

#[test]
fn the_operator_manages_accounts_and_invite_codes() {
    let server = start();
    let alice = create_account(&server, "alice");
    let bob = create_account(&server, "bob");

    // Every method needs the admin password.
    for nsid in [
        "com.atproto.admin.deleteAccount",
        "com.atproto.admin.updateAccountPassword",
        "com.atproto.admin.updateAccountEmail",
        "com.atproto.admin.updateAccountHandle",
        "com.atproto.admin.disableInviteCodes",
        "com.atproto.admin.sendEmail",
    ] {
        let (status, body) = post(&server, nsid, Some(&alice.token), json!({}));
        assert_eq!(status, 401, "{nsid}: {body}");
    }
    for path in [
        "com.atproto.admin.searchAccounts",
        "com.atproto.admin.getInviteCodes",
    ] {
        let (status, body) = get(&server, path, Some(&alice.token));
        assert_eq!(status, 401, "{path}: {body}");
    }

    // Search by e-mail, and page through everyone.
    let (status, found) = admin_get(
        &server,
        "/xrpc/com.atproto.admin.searchAccounts?email=ALICE",
    );
    assert_eq!(status, 200, "{found}");
    let dids: Vec<&str> = found["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["did"].as_str().unwrap())
        .collect();
    assert_eq!(dids, [alice.did.as_str()]);
    let (_, first) = admin_get(&server, "/xrpc/com.atproto.admin.searchAccounts?limit=1");
    let cursor = first["cursor"].as_str().expect("a second page").to_owned();
    let (_, second) = admin_get(
        &server,
        &format!("/xrpc/com.atproto.admin.searchAccounts?limit=1&cursor={cursor}"),
    );
    let mut everyone = vec![
        first["accounts"][0]["did"].as_str().unwrap().to_owned(),
        second["accounts"][0]["did"].as_str().unwrap().to_owned(),
    ];
    everyone.sort();
    let mut expected = vec![alice.did.clone(), bob.did.clone()];
    expected.sort();
    assert_eq!(everyone, expected);
    assert!(second.get("cursor").is_none(), "{second}");

    // A new e-mail address (unconfirmed); one that another account has is refused.
    let (status, body) = admin_post(
        &server,
        "com.atproto.admin.updateAccountEmail",
        json!({"account": "alice.test", "email": "Alice.New@Example.com"}),
    );
    assert_eq!(status, 200, "{body}");
    let (_, info) = admin_get(
        &server,
        &format!("/xrpc/com.atproto.admin.getAccountInfo?did={}", alice.did),
    );
    assert_eq!(info["email"], "alice.new@example.com");
    let (status, body) = admin_post(
        &server,
        "com.atproto.admin.updateAccountEmail",
        json!({"account": alice.did, "email": bob.email}),
    );
    assert_eq!(status, 400, "{body}");

    // A new password: the old one stops working, sessions end.
    let (_, session) = post(
        &server,
        "com.atproto.server.createSession",
        None,
        json!({"identifier": "alice.test", "password": PASSWORD}),
    );
    let refresh = session["refreshJwt"].as_str().unwrap().to_owned();
    let (status, body) = admin_post(
        &server,
        "com.atproto.admin.updateAccountPassword",
        json!({"did": alice.did, "password": "a brand new password"}),
    );
    assert_eq!(status, 200, "{body}");
    let login = |password: &str| {
        post(
            &server,
            "com.atproto.server.createSession",
            None,
            json!({"identifier": "alice.test", "password": password}),
        )
        .0
    };
    assert_eq!(login(PASSWORD), 401);
    assert_eq!(login("a brand new password"), 200);
    let (status, _) = post(
        &server,
        "com.atproto.server.refreshSession",
        Some(&refresh),
        json!(null),
    );
    assert_ne!(status, 200, "the old session ended");

    // A new handle, announced and resolvable.
    let (status, body) = admin_post(
        &server,
        "com.atproto.admin.updateAccountHandle",
        json!({"did": alice.did, "handle": "alicia.test"}),
    );
    assert_eq!(status, 200, "{body}");
    let (_, resolved) = get(
        &server,
        "com.atproto.identity.resolveHandle?handle=alicia.test",
        None,
    );
    assert_eq!(resolved["did"], alice.did.as_str());

    // Invite codes: listed with their uses, newest first; disabled by code.
    let (status, made) = admin_post(
        &server,
        "com.atproto.server.createInviteCodes",
        json!({"codeCount": 2, "useCount": 1}),
    );
    assert_eq!(status, 200, "{made}");
    let made: Vec<String> = made["codes"][0]["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let (status, listed) = admin_get(&server, "/xrpc/com.atproto.admin.getInviteCodes");
    assert_eq!(status, 200, "{listed}");
    let codes = listed["codes"].as_array().unwrap();
    assert_eq!(codes.len(), 2, "{listed}");
    assert!(
        codes
            .iter()
            .all(|c| c["disabled"] == false && c["uses"] == json!([]))
    );
    let (status, body) = admin_post(
        &server,
        "com.atproto.admin.disableInviteCodes",
        json!({"codes": [made[0]]}),
    );
    assert_eq!(status, 200, "{body}");
    let (_, listed) = admin_get(
        &server,
        "/xrpc/com.atproto.admin.getInviteCodes?sort=usage&limit=1",
    );
    assert!(listed["cursor"].is_string(), "{listed}");
    let (_, all) = admin_get(&server, "/xrpc/com.atproto.admin.getInviteCodes");
    let disabled: Vec<&str> = all["codes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["disabled"] == true)
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(disabled, [made[0].as_str()]);
    let (status, _) = admin_post(
        &server,
        "com.atproto.admin.disableInviteCodes",
        json!({"accounts": ["admin"]}),
    );
    assert_eq!(status, 400);

    // A message to an account's address (dev mode writes it to the log).
    let (status, sent) = admin_post(
        &server,
        "com.atproto.admin.sendEmail",
        json!({"recipientDid": bob.did, "senderDid": "did:plc:moderator", "subject": "About your account", "content": "Hello from the operator"}),
    );
    assert_eq!((status, &sent), (200, &json!({"sent": true})), "{sent}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !server.log().contains("About your account") {
        assert!(std::time::Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    // Deleted: gone from the admin's views, the sync API and the log-in.
    let (status, body) = admin_post(
        &server,
        "com.atproto.admin.deleteAccount",
        json!({"did": bob.did}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = admin_get(
        &server,
        &format!("/xrpc/com.atproto.admin.getAccountInfo?did={}", bob.did),
    );
    assert_eq!(status, 400);
    let (status, body) = get(
        &server,
        &format!("com.atproto.sync.getRepoStatus?did={}", bob.did),
        None,
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("RepoNotFound")),
        "{body}"
    );
    let (status, body) = admin_post(
        &server,
        "com.atproto.admin.deleteAccount",
        json!({"did": bob.did}),
    );
    assert_eq!(status, 400, "deleting twice: {body}");
}

#[test]
fn records_and_blobs_are_taken_down_and_restored() {
    let server = start();
    let alice = create_account(&server, "alice");
    let picture = http()
        .post(server.url("/xrpc/com.atproto.repo.uploadBlob"))
        .bearer_auth(&alice.token)
        .header("content-type", "image/png")
        .body(b"\x89PNG\r\n\x1a\n a picture".to_vec())
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap()["blob"]
        .clone();
    let blob_cid = picture["ref"]["$link"].as_str().unwrap().to_owned();
    let mut posts = Vec::new();
    for (text, embed) in [
        (
            "with a picture",
            json!({"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": picture}]}),
        ),
        ("just words", Value::Null),
    ] {
        let mut record = json!({"$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-01-01T00:00:00.000Z"});
        if !embed.is_null() {
            record["embed"] = embed;
        }
        let (status, body) = post(
            &server,
            "com.atproto.repo.createRecord",
            Some(&alice.token),
            json!({"repo": alice.did, "collection": "app.bsky.feed.post", "record": record}),
        );
        assert_eq!(status, 200, "{body}");
        posts.push((
            body["uri"].as_str().unwrap().to_owned(),
            body["cid"].as_str().unwrap().to_owned(),
        ));
    }
    let (uri, cid) = posts[0].clone();
    let rkey = uri.rsplit('/').next().unwrap().to_owned();
    let get_record = || {
        get(
            &server,
            &format!(
                "com.atproto.repo.getRecord?repo={}&collection=app.bsky.feed.post&rkey={rkey}",
                alice.did
            ),
            None,
        )
    };
    let listed = || {
        let (_, body) = get(
            &server,
            &format!(
                "com.atproto.repo.listRecords?repo={}&collection=app.bsky.feed.post",
                alice.did
            ),
            None,
        );
        body["records"].as_array().unwrap().len()
    };
    let get_blob = || {
        http()
            .get(server.url(&format!(
                "/xrpc/com.atproto.sync.getBlob?did={}&cid={blob_cid}",
                alice.did
            )))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let status_of = |query: &str| {
        admin_get(
            &server,
            &format!("/xrpc/com.atproto.admin.getSubjectStatus?{query}"),
        )
    };
    let set = |subject: Value, applied: bool| {
        admin_post(
            &server,
            "com.atproto.admin.updateSubjectStatus",
            json!({"subject": subject, "takedown": {"applied": applied, "ref": "report-7"}}),
        )
    };
    let record_ref = json!({"$type": "com.atproto.repo.strongRef", "uri": uri, "cid": cid});
    let blob_ref =
        json!({"$type": "com.atproto.admin.defs#repoBlobRef", "did": alice.did, "cid": blob_cid});
    assert_eq!(get_record().0, 200);
    assert_eq!((listed(), get_blob()), (2, 200));

    // The record: not served while taken down, back when restored.
    let (status, body) = set(record_ref.clone(), true);
    assert_eq!(status, 200, "{body}");
    let (status, body) = get_record();
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("RecordNotFound")),
        "{body}"
    );
    assert_eq!(listed(), 1);
    let (status, body) = status_of(&format!("uri={uri}"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["subject"], record_ref);
    assert_eq!(
        body["takedown"],
        json!({"applied": true, "ref": "report-7"})
    );
    let (status, _) = set(record_ref.clone(), false);
    assert_eq!(status, 200);
    assert_eq!((get_record().0, listed()), (200, 2));
    assert_eq!(
        status_of(&format!("uri={uri}")).1["takedown"]["applied"],
        false
    );

    // The blob: not served while taken down, back when restored.
    let (status, body) = set(blob_ref.clone(), true);
    assert_eq!(status, 200, "{body}");
    assert_ne!(get_blob(), 200);
    let (status, body) = status_of(&format!("did={}&blob={blob_cid}", alice.did));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["subject"], blob_ref);
    assert_eq!(body["takedown"]["applied"], true);
    let (status, _) = set(blob_ref, false);
    assert_eq!(status, 200);
    assert_eq!(get_blob(), 200);

    // Unknown subjects and kinds.
    let unknown_blob = json!({"$type": "com.atproto.admin.defs#repoBlobRef", "did": alice.did, "cid": "bafkreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"});
    let (status, body) = set(unknown_blob, true);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("NotFound")),
        "{body}"
    );
    let (status, body) = status_of(&format!(
        "uri=at://{}/app.bsky.feed.post/3zzzzzzzzzzzz",
        alice.did
    ));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("NotFound")),
        "{body}"
    );
    let (status, body) = set(json!({"$type": "com.example.thing"}), true);
    assert_eq!(status, 400, "{body}");
}

#[test]
fn an_accounts_invite_codes_are_disabled_and_enabled() {
    let server = TestServer::start_with(ServerOptions {
        env: vec![
            ("PDS_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("PDS_INVITE_REQUIRED", "true"),
        ],
        ..Default::default()
    });
    let (status, made) = admin_post(
        &server,
        "com.atproto.server.createInviteCode",
        json!({"useCount": 5}),
    );
    assert_eq!(status, 200, "{made}");
    let (status, first) = post(
        &server,
        "com.atproto.server.createAccount",
        None,
        json!({"handle": "alice.test", "email": "alice@example.com", "password": PASSWORD, "inviteCode": made["code"]}),
    );
    assert_eq!(status, 200, "{first}");
    let alice = first["did"].as_str().unwrap().to_owned();
    let (status, mine) = admin_post(
        &server,
        "com.atproto.server.createInviteCodes",
        json!({"codeCount": 1, "useCount": 3, "forAccounts": [alice]}),
    );
    assert_eq!(status, 200, "{mine}");
    let code = mine["codes"][0]["codes"][0].as_str().unwrap().to_owned();
    let sign_up = |handle: &str| {
        post(
            &server,
            "com.atproto.server.createAccount",
            None,
            json!({"handle": handle, "email": format!("{}@example.com", handle.replace('.', "-")), "password": PASSWORD, "inviteCode": code}),
        )
    };

    let (status, body) = admin_post(
        &server,
        "com.atproto.admin.disableAccountInvites",
        json!({"account": alice, "note": "spam invites"}),
    );
    assert_eq!(status, 200, "{body}");
    let (_, info) = admin_get(
        &server,
        &format!("/xrpc/com.atproto.admin.getAccountInfo?did={alice}"),
    );
    assert_eq!(info["invitesDisabled"], true, "{info}");
    // The codes it has keep working; it gets no new ones.
    let (status, body) = sign_up("bob.test");
    assert_eq!(status, 200, "{body}");
    let more = || {
        admin_post(
            &server,
            "com.atproto.server.createInviteCodes",
            json!({"codeCount": 1, "useCount": 1, "forAccounts": [alice]}),
        )
    };
    let (status, body) = more();
    assert_eq!(status, 400, "{body}");

    let (status, _) = admin_post(
        &server,
        "com.atproto.admin.enableAccountInvites",
        json!({"account": alice}),
    );
    assert_eq!(status, 200);
    let (status, body) = more();
    assert_eq!(status, 200, "{body}");
    let (status, _) = admin_post(
        &server,
        "com.atproto.admin.disableAccountInvites",
        json!({"account": "did:plc:nobody"}),
    );
    assert_eq!(status, 400);
}
