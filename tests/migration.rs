//! Moving an account into this server, end to end on two real servers sharing one did:plc
//! directory: getServiceAuth on the old server, createAccount with the existing DID on the new
//! one (deactivated), importRepo, listMissingBlobs and the blob uploads, checkAccountStatus and
//! getRecommendedDidCredentials; the DID moved by the old server's requestPlcOperationSignature
//! and signPlcOperation and the new server's submitPlcOperation; and everything each of those
//! refuses.

mod common;

use std::collections::BTreeSet;
use std::thread;
use std::time::Duration;

use common::{
    LocalPlc, PASSWORD, ServerOptions, TestServer, create_account, get, http, next_frame,
    plc_operation_code, post, subscribe,
};
use pds_crypto::{Algorithm, Keypair};
use serde_json::{Value, json};

const CREATE_ACCOUNT: &str = "com.atproto.server.createAccount";
const REQUEST_PLC_SIGNATURE: &str = "com.atproto.identity.requestPlcOperationSignature";
const SIGN_PLC: &str = "com.atproto.identity.signPlcOperation";
const SUBMIT_PLC: &str = "com.atproto.identity.submitPlcOperation";

fn start(plc: &LocalPlc, extra: &[(&str, &str)]) -> TestServer {
    let mut env = vec![
        ("PDS_DID_PLC_URL", plc.url.as_str()),
        ("PDS_EMBEDDED_PLC", "false"),
    ];
    env.extend_from_slice(extra);
    TestServer::start_with(ServerOptions {
        env,
        ..Default::default()
    })
}

fn service_did(server: &TestServer) -> String {
    let (status, body) = get(server, "com.atproto.server.describeServer", None);
    assert_eq!(status, 200, "{body}");
    body["did"].as_str().unwrap().to_owned()
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// getServiceAuth with these query parameters.
fn service_auth(server: &TestServer, token: &str, query: &str) -> (u16, Value) {
    get(
        server,
        &format!("com.atproto.server.getServiceAuth?{query}"),
        Some(token),
    )
}

fn service_token(server: &TestServer, token: &str, query: &str) -> String {
    let (status, body) = service_auth(server, token, query);
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

/// createAccount on `server` for an existing DID, with `auth` as the Bearer token.
fn create_migrating(server: &TestServer, did: &str, auth: Option<&str>) -> (u16, Value) {
    post(
        server,
        CREATE_ACCOUNT,
        auth,
        json!({"did": did, "handle": "alice.test", "email": "alice@example.com", "password": PASSWORD}),
    )
}

fn import_repo(server: &TestServer, token: Option<&str>, car: &[u8]) -> (u16, Value) {
    let mut req = http()
        .post(server.url("/xrpc/com.atproto.repo.importRepo"))
        .header("content-type", "application/vnd.ipld.car")
        .body(car.to_vec());
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().unwrap();
    let status = res.status().as_u16();
    let text = res.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn get_repo(server: &TestServer, did: &str) -> Vec<u8> {
    let res = http()
        .get(server.url(&format!("/xrpc/com.atproto.sync.getRepo?did={did}")))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    res.bytes().unwrap().to_vec()
}

fn upload_blob(server: &TestServer, token: &str, mime: &str, bytes: Vec<u8>) -> Value {
    let res = http()
        .post(server.url("/xrpc/com.atproto.repo.uploadBlob"))
        .bearer_auth(token)
        .header("content-type", mime)
        .body(bytes)
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    res.json::<Value>().unwrap()["blob"].clone()
}

fn missing_blobs(server: &TestServer, token: &str) -> BTreeSet<String> {
    let (status, body) = get(server, "com.atproto.repo.listMissingBlobs", Some(token));
    assert_eq!(status, 200, "{body}");
    body["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["cid"].as_str().unwrap().to_owned())
        .collect()
}

fn account_status(server: &TestServer, token: &str) -> Value {
    let (status, body) = get(server, "com.atproto.server.checkAccountStatus", Some(token));
    assert_eq!(status, 200, "{body}");
    body
}

fn error(response: &(u16, Value)) -> (u16, &str) {
    (response.0, response.1["error"].as_str().unwrap_or_default())
}

fn create_record(server: &TestServer, token: &str, did: &str, collection: &str, record: Value) {
    let (status, body) = post(
        server,
        "com.atproto.repo.createRecord",
        Some(token),
        json!({"repo": did, "collection": collection, "record": record}),
    );
    assert_eq!(status, 200, "{body}");
}

fn png(tag: &[u8]) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    bytes.extend_from_slice(tag);
    bytes
}

/// The DID's newest operation in the directory.
fn last_op(plc: &LocalPlc, did: &str) -> pds_plc::SignedOp {
    let last: Value = http()
        .get(format!("{}/{did}/log/last", plc.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    pds_plc::SignedOp::from_json(&last).unwrap()
}

/// The DID's current data in the directory (rotation keys, #atproto key, handle, PDS).
fn plc_data(plc: &LocalPlc, did: &str) -> Value {
    http()
        .get(format!("{}/{did}/data", plc.url))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn an_account_moves_in_with_its_repo_and_blobs() {
    let plc = LocalPlc::start();
    let old = start(&plc, &[]);
    let new = start(&plc, &[]);
    let new_did = service_did(&new);

    // On the old server: an account with posts (one with an image), a profile with an avatar.
    let alice = create_account(&old, "alice");
    let image = upload_blob(&old, &alice.token, "image/png", png(b"post image"));
    let avatar = upload_blob(&old, &alice.token, "image/png", png(b"avatar"));
    for i in 0..5 {
        create_record(
            &old,
            &alice.token,
            &alice.did,
            "app.bsky.feed.post",
            json!({"$type": "app.bsky.feed.post", "text": format!("post {i}"), "createdAt": "2024-01-01T00:00:00.000Z"}),
        );
    }
    create_record(
        &old,
        &alice.token,
        &alice.did,
        "app.bsky.feed.post",
        json!({
            "$type": "app.bsky.feed.post", "text": "look", "createdAt": "2024-01-01T00:00:00.000Z",
            "embed": {"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": image}]},
        }),
    );
    let (status, body) = post(
        &old,
        "com.atproto.repo.putRecord",
        Some(&alice.token),
        json!({"repo": alice.did, "collection": "app.bsky.actor.profile", "rkey": "self",
               "record": {"$type": "app.bsky.actor.profile", "displayName": "Alice", "avatar": avatar}}),
    );
    assert_eq!(status, 200, "{body}");
    let blob_cids: BTreeSet<String> = [&image, &avatar]
        .iter()
        .map(|b| b["ref"]["$link"].as_str().unwrap().to_owned())
        .collect();

    // createAccount with the existing did:plc: refused without proof of control, with a token
    // another DID signed, and with an expired one.
    assert_eq!(
        error(&create_migrating(&new, &alice.did, None)),
        (401, "AuthenticationRequired")
    );
    let bob = create_account(&old, "bob");
    let bobs = service_token(
        &old,
        &bob.token,
        &format!("aud={new_did}&lxm={CREATE_ACCOUNT}"),
    );
    assert_eq!(
        error(&create_migrating(&new, &alice.did, Some(&bobs))),
        (401, "AuthenticationRequired")
    );
    let short_lived = service_token(
        &old,
        &alice.token,
        &format!("aud={new_did}&lxm={CREATE_ACCOUNT}&exp={}", now_secs() + 1),
    );
    thread::sleep(Duration::from_millis(2100));
    assert_eq!(
        error(&create_migrating(&new, &alice.did, Some(&short_lived))),
        (401, "JwtExpired")
    );
    // A token for another method, or another server, is no proof either.
    let other_method = service_token(
        &old,
        &alice.token,
        &format!("aud={new_did}&lxm=com.atproto.repo.createRecord"),
    );
    assert_eq!(
        error(&create_migrating(&new, &alice.did, Some(&other_method))),
        (401, "BadJwtLexiconMethod")
    );
    let elsewhere = service_token(
        &old,
        &alice.token,
        &format!("aud=did:web:elsewhere.example&lxm={CREATE_ACCOUNT}"),
    );
    assert_eq!(
        error(&create_migrating(&new, &alice.did, Some(&elsewhere))),
        (401, "BadJwtAudience")
    );

    // The real thing: the token the DID's current key signed on the old server.
    let proof = service_token(
        &old,
        &alice.token,
        &format!("aud={new_did}&lxm={CREATE_ACCOUNT}"),
    );
    let (status, created) = create_migrating(&new, &alice.did, Some(&proof));
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["did"], alice.did.as_str());
    assert_eq!(created["handle"], "alice.test");
    let token = created["accessJwt"].as_str().unwrap().to_owned();
    // Deactivated, with an empty repo, and the DID untouched: still the old server's.
    let (_, repo_status) = get(
        &new,
        &format!("com.atproto.sync.getRepoStatus?did={}", alice.did),
        None,
    );
    assert_eq!(repo_status["active"], false, "{repo_status}");
    assert_eq!(repo_status["status"], "deactivated");
    let before = account_status(&new, &token);
    assert_eq!(before["activated"], false);
    assert_eq!(before["validDid"], false);
    assert_eq!(before["indexedRecords"], 0);
    assert_eq!(before["expectedBlobs"], 0);
    assert_eq!(before["privateStateValues"], 0);
    let plc_before = plc_data(&plc, &alice.did);
    // The same DID cannot be created twice.
    let again = service_token(
        &old,
        &alice.token,
        &format!("aud={new_did}&lxm={CREATE_ACCOUNT}"),
    );
    assert_eq!(
        error(&create_migrating(&new, &alice.did, Some(&again))),
        (400, "AlreadyExists")
    );

    // importRepo: refused anonymously, refused a broken CAR, a CAR of another DID.
    let car = get_repo(&old, &alice.did);
    assert_eq!(
        error(&import_repo(&new, None, &car)),
        (401, "AuthenticationRequired")
    );
    let mut corrupted = car.clone();
    let last = corrupted.len() - 3;
    corrupted[last] ^= 0xff;
    let refused = import_repo(&new, Some(&token), &corrupted);
    assert_eq!(error(&refused), (400, "InvalidRequest"), "{}", refused.1);
    assert!(
        refused.1["message"]
            .as_str()
            .unwrap()
            .contains("Invalid repo CAR"),
        "{}",
        refused.1
    );
    let truncated = import_repo(&new, Some(&token), &car[..car.len() / 2]);
    assert_eq!(
        error(&truncated),
        (400, "InvalidRequest"),
        "{}",
        truncated.1
    );
    let bobs_car = get_repo(&old, &bob.did);
    let foreign = import_repo(&new, Some(&token), &bobs_car);
    assert_eq!(error(&foreign), (400, "InvalidRequest"));
    assert!(
        foreign.1["message"].as_str().unwrap().contains(&bob.did),
        "{}",
        foreign.1
    );
    // Another account here cannot import alice's repo (an import is always the caller's own).
    let carol = create_account(&new, "carol");
    assert_eq!(
        error(&import_repo(&new, Some(&carol.token), &car)),
        (400, "InvalidRequest")
    );
    // Nothing was stored by any of those.
    assert_eq!(account_status(&new, &token), before);
    assert!(missing_blobs(&new, &token).is_empty());
    // The wrong encoding is refused before anything is read.
    let res = http()
        .post(new.url("/xrpc/com.atproto.repo.importRepo"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(car.clone())
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);

    // The import: the repo as the old server has it, the blobs still to upload listed.
    let (status, body) = import_repo(&new, Some(&token), &car);
    assert_eq!(status, 200, "{body}");
    let verified = pds_repo::import::read_car(&car[..], &Default::default()).unwrap();
    let imported_data = verified.commit.data;
    let imported = account_status(&new, &token);
    assert_eq!(imported["activated"], false);
    assert_eq!(imported["validDid"], false);
    assert_eq!(imported["repoCommit"], verified.commit_cid.to_string());
    assert_eq!(imported["repoRev"], verified.commit.rev.as_str());
    assert_eq!(imported["repoBlocks"], verified.block_count());
    assert_eq!(imported["indexedRecords"], 7);
    assert_eq!(imported["expectedBlobs"], 2);
    assert_eq!(imported["importedBlobs"], 0);
    let (_, latest) = get(
        &old,
        &format!("com.atproto.sync.getLatestCommit?did={}", alice.did),
        None,
    );
    assert_eq!(imported["repoCommit"], latest["cid"]);
    assert_eq!(missing_blobs(&new, &token), blob_cids);
    // The account reads its own repo back here (deactivated repos are served to their owner).
    let res = http()
        .get(new.url(&format!("/xrpc/com.atproto.sync.getRepo?did={}", alice.did)))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let served = res.bytes().unwrap();
    let served = pds_repo::import::read_car(&served[..], &Default::default()).unwrap();
    assert_eq!(served.commit_cid, verified.commit_cid);
    assert_eq!(served.records, verified.records);

    // The blobs, from the old server to the new one.
    for cid in &blob_cids {
        let res = http()
            .get(old.url(&format!(
                "/xrpc/com.atproto.sync.getBlob?did={}&cid={cid}",
                alice.did
            )))
            .send()
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let mime = res.headers()["content-type"].to_str().unwrap().to_owned();
        let uploaded = upload_blob(&new, &token, &mime, res.bytes().unwrap().to_vec());
        assert_eq!(uploaded["ref"]["$link"], cid.as_str());
    }
    assert!(missing_blobs(&new, &token).is_empty());
    let complete = account_status(&new, &token);
    assert_eq!(complete["importedBlobs"], 2);
    assert_eq!(complete["expectedBlobs"], 2);

    // Importing the same CAR again changes nothing.
    let (status, body) = import_repo(&new, Some(&token), &car);
    assert_eq!(status, 200, "{body}");
    assert_eq!(account_status(&new, &token), complete);
    assert!(missing_blobs(&new, &token).is_empty());

    // The old server, where the DID still points, sees its own account as valid.
    let at_old = account_status(&old, &alice.token);
    assert_eq!(at_old["activated"], true);
    assert_eq!(at_old["validDid"], true);
    assert_eq!(at_old["repoCommit"], complete["repoCommit"]);

    // What the DID document should say for the account to live on the new server.
    let (status, creds) = get(
        &new,
        "com.atproto.identity.getRecommendedDidCredentials",
        Some(&token),
    );
    assert_eq!(status, 200, "{creds}");
    assert_eq!(creds["alsoKnownAs"], json!(["at://alice.test"]));
    let new_key = creds["verificationMethods"]["atproto"].as_str().unwrap();
    assert!(new_key.starts_with("did:key:z"), "{creds}");
    assert_ne!(
        plc_before["verificationMethods"]["atproto"].as_str(),
        Some(new_key),
        "the new server's key is its own"
    );
    // The new server's rotation key and endpoint: what it registers its own accounts with.
    let dave = create_account(&new, "dave");
    let daves = plc_data(&plc, &dave.did);
    assert_eq!(creds["rotationKeys"], daves["rotationKeys"]);
    assert_eq!(
        creds["services"],
        json!({"atproto_pds": {"type": "AtprotoPersonalDataServer",
                               "endpoint": daves["services"]["atproto_pds"]["endpoint"]}})
    );
    // Nothing of this touched the DID.
    assert_eq!(plc_data(&plc, &alice.did), plc_before);
    // Activation waits for the DID.
    let (status, body) = post(
        &new,
        "com.atproto.server.activateAccount",
        Some(&token),
        json!({}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("IncompatibleDidDoc")),
        "{body}"
    );

    // The old server signs the recommended credentials into the DID (with the code it e-mails
    // the account), the new server submits it; the account is then valid here, activates, and
    // its next commit is signed with its new key.
    let (status, body) = post(&old, REQUEST_PLC_SIGNATURE, Some(&alice.token), json!({}));
    assert_eq!(status, 200, "{body}");
    let code = plc_operation_code(&old, &alice.email).expect("the PLC operation e-mail");
    let mut sign_input = creds.clone();
    sign_input["token"] = json!(code);
    let (status, signed) = post(&old, SIGN_PLC, Some(&alice.token), sign_input);
    assert_eq!(status, 200, "{signed}");
    let operation = &signed["operation"];
    let op = pds_plc::SignedOp::from_json(operation).unwrap();
    let last = last_op(&plc, &alice.did);
    assert_eq!(op.prev(), Some(last.cid().to_string().as_str()));
    // Signed by the old server's rotation key, which the DID still lists.
    let old_rotation_key = plc_before["rotationKeys"][0].as_str().unwrap();
    op.verify(old_rotation_key).unwrap();
    let data = op.data().unwrap();
    assert_eq!(json!(data.rotation_keys), creds["rotationKeys"]);
    assert_eq!(json!(data.also_known_as), creds["alsoKnownAs"]);
    assert_eq!(data.signing_key(), Some(new_key));
    assert_eq!(
        Some(data.pds_endpoint().unwrap()),
        creds["services"]["atproto_pds"]["endpoint"].as_str()
    );
    // Signing submits nothing.
    assert_eq!(plc_data(&plc, &alice.did), plc_before);
    // The new server submits it (the account's session there is enough, deactivated or not).
    let (status, body) = post(
        &new,
        SUBMIT_PLC,
        Some(&token),
        json!({"operation": operation}),
    );
    assert_eq!(status, 200, "{body}");
    let moved_data = plc_data(&plc, &alice.did);
    assert_eq!(moved_data["rotationKeys"], creds["rotationKeys"]);
    assert_eq!(moved_data["verificationMethods"]["atproto"], new_key);
    assert_eq!(account_status(&new, &token)["validDid"], true);
    assert_eq!(account_status(&old, &alice.token)["validDid"], false);
    let (status, body) = post(
        &new,
        "com.atproto.server.activateAccount",
        Some(&token),
        json!({}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(account_status(&new, &token)["activated"], true);
    // The old server's copy goes quiet: deactivated there, its sync endpoints say so.
    let (status, body) = post(
        &old,
        "com.atproto.server.deactivateAccount",
        Some(&alice.token),
        json!({}),
    );
    assert_eq!(status, 200, "{body}");
    let answer = get(
        &old,
        &format!("com.atproto.sync.getLatestCommit?did={}", alice.did),
        None,
    );
    assert_eq!(error(&answer), (400, "RepoDeactivated"), "{}", answer.1);
    // The imported head was signed by the old server: activation signed the same tree again with
    // the new key, so the repo verifies against the DID document before any new write.
    let new_key_parsed = pds_crypto::PublicKey::from_did_key(new_key).unwrap();
    let activated = get_repo(&new, &alice.did);
    let activated = pds_repo::import::read_car(
        &activated[..],
        &pds_repo::import::ImportExpectations {
            did: Some(&alice.did),
            signing_key: Some(&new_key_parsed),
            ..Default::default()
        },
    )
    .expect("the activated repo verifies with the new key");
    assert_eq!(activated.commit.data, imported_data);
    create_record(
        &new,
        &token,
        &alice.did,
        "app.bsky.feed.post",
        json!({"$type": "app.bsky.feed.post", "text": "moved", "createdAt": "2024-01-02T00:00:00.000Z"}),
    );
    let moved = get_repo(&new, &alice.did);
    let new_key = pds_crypto::PublicKey::from_did_key(new_key).unwrap();
    let moved = pds_repo::import::read_car(
        &moved[..],
        &pds_repo::import::ImportExpectations {
            did: Some(&alice.did),
            signing_key: Some(&new_key),
            ..Default::default()
        },
    )
    .expect("the new head is signed with the account's new key");
    assert_eq!(moved.records.len(), 8);
}

#[test]
fn service_auth_tokens_within_the_reference_limits() {
    let plc = LocalPlc::start();
    let server = start(&plc, &[]);
    let aud = "did:web:other.example";
    let alice = create_account(&server, "alice");
    let now = now_secs();

    // A method-bound token lives up to an hour; a method-less one a minute.
    let token = service_token(
        &server,
        &alice.token,
        &format!("aud={aud}&lxm=app.bsky.feed.getTimeline&exp={}", now + 3000),
    );
    let key = {
        let data = plc_data(&plc, &alice.did);
        let did_key = data["verificationMethods"]["atproto"].as_str().unwrap();
        pds_crypto::PublicKey::from_did_key(did_key).unwrap()
    };
    let claims = pds_crypto::jws::verify_es(&token, &key).expect("signed with the account's key");
    assert_eq!(claims["iss"], alice.did.as_str());
    assert_eq!(claims["aud"], aud);
    assert_eq!(claims["lxm"], "app.bsky.feed.getTimeline");
    assert_eq!(claims["exp"], now + 3000);
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let bare = service_token(&server, &alice.token, &format!("aud={aud}"));
    let claims = pds_crypto::jws::verify_es(&bare, &key).unwrap();
    assert!(claims.get("lxm").is_none());
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 60);

    let refused = |query: String, token: &str| service_auth(&server, token, &query);
    assert_eq!(
        error(&refused(
            format!("aud={aud}&lxm=app.bsky.feed.getTimeline&exp={}", now + 3700),
            &alice.token
        )),
        (400, "BadExpiration")
    );
    assert_eq!(
        error(&refused(
            format!("aud={aud}&exp={}", now + 120),
            &alice.token
        )),
        (400, "BadExpiration")
    );
    assert_eq!(
        error(&refused(
            format!("aud={aud}&exp={}", now - 10),
            &alice.token
        )),
        (400, "BadExpiration")
    );
    let protected = refused(
        format!("aud={aud}&lxm=com.atproto.server.updateEmail"),
        &alice.token,
    );
    assert_eq!(error(&protected), (400, "InvalidRequest"));
    assert!(
        protected.1["message"]
            .as_str()
            .unwrap()
            .contains("protected method")
    );
    assert_eq!(
        error(&refused(
            "lxm=app.bsky.feed.getTimeline".into(),
            &alice.token
        )),
        (400, "InvalidRequest")
    );
    assert_eq!(
        error(&refused(format!("aud={aud}"), "not-a-token")),
        (401, "InvalidToken")
    );

    // A plain app password may not get a token to move the account (or read DMs); a
    // privileged one may.
    let app_session = |privileged: bool| {
        let name = if privileged { "privileged" } else { "plain" };
        let (status, created) = post(
            &server,
            "com.atproto.server.createAppPassword",
            Some(&alice.token),
            json!({"name": name, "privileged": privileged}),
        );
        assert_eq!(status, 200, "{created}");
        let (status, session) = post(
            &server,
            "com.atproto.server.createSession",
            None,
            json!({"identifier": alice.did, "password": created["password"]}),
        );
        assert_eq!(status, 200, "{session}");
        session["accessJwt"].as_str().unwrap().to_owned()
    };
    let plain = app_session(false);
    let insufficient = refused(format!("aud={aud}&lxm={CREATE_ACCOUNT}"), &plain);
    assert_eq!(error(&insufficient), (400, "InvalidRequest"));
    assert!(
        insufficient.1["message"]
            .as_str()
            .unwrap()
            .contains("insufficient access"),
        "{}",
        insufficient.1
    );
    assert_eq!(
        error(&refused(
            format!("aud={aud}&lxm=chat.bsky.convo.getMessages"),
            &plain
        )),
        (400, "InvalidRequest")
    );
    service_token(
        &server,
        &plain,
        &format!("aud={aud}&lxm=app.bsky.feed.getTimeline"),
    );
    let privileged = app_session(true);
    service_token(
        &server,
        &privileged,
        &format!("aud={aud}&lxm={CREATE_ACCOUNT}"),
    );
    // A plain app password cannot import a repo either (the reference asks for a full session).
    let car = get_repo(&server, &alice.did);
    assert_eq!(
        error(&import_repo(&server, Some(&plain), &car)),
        (400, "InvalidToken")
    );
}

#[test]
fn imports_only_while_the_server_accepts_them() {
    let plc = LocalPlc::start();
    let closed = start(&plc, &[("PDS_ACCEPTING_REPO_IMPORTS", "false")]);
    let alice = create_account(&closed, "alice");
    let car = get_repo(&closed, &alice.did);
    let refused = import_repo(&closed, Some(&alice.token), &car);
    assert_eq!(error(&refused), (400, "InvalidRequest"));
    assert_eq!(
        refused.1["message"],
        "Service is not accepting repo imports"
    );

    // Where imports are open, an account may re-import its own repo (a restore): same state.
    let open = start(&plc, &[("PDS_BLOB_UPLOAD_LIMIT", "1048576")]);
    let bob = create_account(&open, "bob");
    create_record(
        &open,
        &bob.token,
        &bob.did,
        "app.bsky.feed.post",
        json!({"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2024-01-01T00:00:00.000Z"}),
    );
    let before = account_status(&open, &bob.token);
    let car = get_repo(&open, &bob.did);
    let (status, body) = import_repo(&open, Some(&bob.token), &car);
    assert_eq!(status, 200, "{body}");
    assert_eq!(account_status(&open, &bob.token), before);
    // Past the limit (the blob upload limit): 413, nothing read further.
    let mut huge = car.clone();
    huge.resize(1024 * 1024 + 1, 0);
    assert_eq!(
        error(&import_repo(&open, Some(&bob.token), &huge)),
        (413, "PayloadTooLarge")
    );
    assert_eq!(account_status(&open, &bob.token), before);
}

/// The account's current data with `change` applied, as the next operation after the DID's
/// newest one, signed by `key`: an operation shaped as a move would make it.
fn next_op(plc: &LocalPlc, did: &str, key: &Keypair, change: impl Fn(&mut Value)) -> Value {
    let last = last_op(plc, did);
    let mut data = plc_data(plc, did);
    change(&mut data);
    let data = pds_plc::PlcData {
        rotation_keys: serde_json::from_value(data["rotationKeys"].clone()).unwrap(),
        verification_methods: serde_json::from_value(data["verificationMethods"].clone()).unwrap(),
        also_known_as: serde_json::from_value(data["alsoKnownAs"].clone()).unwrap(),
        services: serde_json::from_value(data["services"].clone()).unwrap(),
    };
    pds_plc::UnsignedOp::update(data, &last.cid())
        .sign(key)
        .to_json()
}

#[test]
fn plc_operations_only_with_a_fresh_code_and_only_pointing_here() {
    let plc = LocalPlc::start();
    let server = start(&plc, &[]);
    let alice = create_account(&server, "alice");
    let before = plc_data(&plc, &alice.did);
    let rotation_key = before["rotationKeys"][0].as_str().unwrap().to_owned();

    // Anonymous callers are refused by all three.
    for nsid in [REQUEST_PLC_SIGNATURE, SIGN_PLC, SUBMIT_PLC] {
        let answer = post(
            &server,
            nsid,
            None,
            json!({"token": "AAAAA-AAAAA", "operation": {}}),
        );
        assert_eq!(error(&answer), (401, "AuthenticationRequired"), "{nsid}");
    }
    // So are app-password sessions: the code and the operation move the account.
    let (status, body) = post(
        &server,
        "com.atproto.server.createAppPassword",
        Some(&alice.token),
        json!({"name": "app", "privileged": true}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, session) = post(
        &server,
        "com.atproto.server.createSession",
        None,
        json!({"identifier": alice.did, "password": body["password"]}),
    );
    assert_eq!(status, 200, "{session}");
    let app_token = session["accessJwt"].as_str().unwrap();
    for nsid in [REQUEST_PLC_SIGNATURE, SIGN_PLC, SUBMIT_PLC] {
        let answer = post(
            &server,
            nsid,
            Some(app_token),
            json!({"token": "AAAAA-AAAAA", "operation": {}}),
        );
        assert_eq!(
            error(&answer),
            (400, "InvalidToken"),
            "{nsid}: {}",
            answer.1
        );
    }
    assert_eq!(plc_operation_code(&server, &alice.email), None);

    // signPlcOperation needs the e-mailed code.
    let sign = |body: Value| post(&server, SIGN_PLC, Some(&alice.token), body);
    let answer = sign(json!({}));
    assert_eq!(error(&answer), (400, "InvalidRequest"));
    assert!(
        answer.1["message"]
            .as_str()
            .unwrap()
            .contains("token required"),
        "{}",
        answer.1
    );
    assert_eq!(
        error(&sign(json!({"token": "AAAAA-AAAAA"}))),
        (400, "InvalidToken")
    );
    let (status, body) = post(
        &server,
        REQUEST_PLC_SIGNATURE,
        Some(&alice.token),
        json!({}),
    );
    assert_eq!(status, 200, "{body}");
    let code = plc_operation_code(&server, &alice.email).expect("the e-mail");
    assert_eq!(
        error(&sign(json!({"token": "AAAAA-AAAAA"}))),
        (400, "InvalidToken")
    );
    // Fields the directory would refuse are refused before the code is spent.
    let answer = sign(json!({"token": code, "rotationKeys": ["not a key"]}));
    assert_eq!(error(&answer), (400, "InvalidRequest"), "{}", answer.1);
    let answer = sign(json!({"token": code, "services": {"atproto_pds": "https://x.test"}}));
    assert_eq!(error(&answer), (400, "InvalidRequest"), "{}", answer.1);
    // Typed as a person would, the code works once.
    let other_key = Keypair::generate(Algorithm::K256).did_key();
    let (status, signed) = sign(json!({
        "token": code.to_lowercase().replace('-', " "),
        "rotationKeys": [rotation_key, other_key],
    }));
    assert_eq!(status, 200, "{signed}");
    assert_eq!(error(&sign(json!({"token": code}))), (400, "InvalidToken"));
    let op = pds_plc::SignedOp::from_json(&signed["operation"]).unwrap();
    op.verify(&rotation_key).unwrap();
    assert_eq!(
        op.prev(),
        Some(last_op(&plc, &alice.did).cid().to_string().as_str())
    );
    let data = op.data().unwrap();
    assert_eq!(
        data.rotation_keys,
        [rotation_key.clone(), other_key.clone()]
    );
    // Fields not given are the DID's current ones.
    assert_eq!(json!(data.also_known_as), before["alsoKnownAs"]);
    assert_eq!(
        json!(data.verification_methods),
        before["verificationMethods"]
    );
    assert_eq!(json!(data.services), before["services"]);
    assert_eq!(
        plc_data(&plc, &alice.did),
        before,
        "signing submits nothing"
    );

    // submitPlcOperation takes only an operation that keeps the account here, as it is here.
    let submit = |operation: Value| {
        post(
            &server,
            SUBMIT_PLC,
            Some(&alice.token),
            json!({"operation": operation}),
        )
    };
    let stranger = Keypair::generate(Algorithm::K256);
    type Change<'a> = Box<dyn Fn(&mut Value) + 'a>;
    let refusals: [(&str, Change); 6] = [
        (
            "Rotation keys do not include server's rotation key",
            Box::new(|d| d["rotationKeys"] = json!([stranger.did_key()])),
        ),
        (
            "Incorrect type on atproto_pds service",
            Box::new(|d| d["services"]["atproto_pds"]["type"] = json!("SomethingElse")),
        ),
        (
            "Incorrect endpoint on atproto_pds service",
            Box::new(|d| {
                d["services"]["atproto_pds"]["endpoint"] = json!("https://elsewhere.example.com")
            }),
        ),
        (
            "Incorrect signing key",
            Box::new(|d| d["verificationMethods"]["atproto"] = json!(stranger.did_key())),
        ),
        (
            "Incorrect handle in alsoKnownAs",
            Box::new(|d| d["alsoKnownAs"] = json!(["at://someone-else.test"])),
        ),
        (
            "Incorrect handle in alsoKnownAs",
            Box::new(|d| {
                d["alsoKnownAs"] = json!(["https://alice.example.com", "at://alice.test"])
            }),
        ),
    ];
    for (message, change) in &refusals {
        let answer = submit(next_op(&plc, &alice.did, &stranger, change));
        assert_eq!(error(&answer), (400, "InvalidRequest"), "{message}");
        assert_eq!(answer.1["message"], *message);
    }
    for not_an_operation in [
        json!({}),
        json!("op"),
        pds_plc::UnsignedOp::tombstone(&last_op(&plc, &alice.did).cid())
            .sign(&stranger)
            .to_json(),
    ] {
        let answer = submit(not_an_operation);
        assert_eq!(error(&answer), (400, "InvalidRequest"));
        assert_eq!(answer.1["message"], "Invalid operation");
    }
    // Pointing here but signed by a key the DID does not list: the directory's refusal.
    let answer = submit(next_op(&plc, &alice.did, &stranger, |_| {}));
    assert_eq!(error(&answer), (400, "InvalidRequest"), "{}", answer.1);
    assert_eq!(plc_data(&plc, &alice.did), before);

    // The operation signPlcOperation made keeps the account here: it goes through, and relays
    // are told to look at the DID again.
    let mut firehose = subscribe(&server, None);
    let (status, body) = submit(signed["operation"].clone());
    assert_eq!(status, 200, "{body}");
    let frame = next_frame(&mut firehose).expect("an event");
    assert_eq!(frame.kind(), Some("#identity"));
    let text = |field: &str| match frame.get(field) {
        Some(pds_ipld::Ipld::String(s)) => Some(s.clone()),
        _ => None,
    };
    assert_eq!(text("did"), Some(alice.did.clone()));
    assert_eq!(text("handle").as_deref(), Some("alice.test"));
    assert_eq!(
        plc_data(&plc, &alice.did)["rotationKeys"],
        json!([rotation_key, other_key])
    );
}
