//! `app.bsky.actor.getPreferences` / `putPreferences` on the real binary: stored per account as
//! given and in order, only the `app.bsky` namespace, personal details kept from app passwords.

mod common;

use common::{TestServer, create_account, get, post};
use serde_json::{Value, json};

fn put(server: &TestServer, token: &str, preferences: Value) -> (u16, Value) {
    post(
        server,
        "app.bsky.actor.putPreferences",
        Some(token),
        json!({ "preferences": preferences }),
    )
}

fn read(server: &TestServer, token: &str) -> Value {
    let (status, body) = get(server, "app.bsky.actor.getPreferences", Some(token));
    assert_eq!(status, 200, "{body}");
    body["preferences"].clone()
}

fn app_password_session(server: &TestServer, token: &str, handle: &str) -> String {
    let (status, body) = post(
        server,
        "com.atproto.server.createAppPassword",
        Some(token),
        json!({"name": "phone"}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, session) = post(
        server,
        "com.atproto.server.createSession",
        None,
        json!({"identifier": handle, "password": body["password"]}),
    );
    assert_eq!(status, 200, "{session}");
    session["accessJwt"].as_str().unwrap().to_owned()
}

#[test]
fn preferences_round_trip_per_account() {
    let server = TestServer::start();
    let alice = create_account(&server, "alice");
    let bob = create_account(&server, "bob");
    assert_eq!(read(&server, &alice.token), json!([]));

    let prefs = json!([
        {"$type": "app.bsky.actor.defs#savedFeedsPrefV2", "items": [{"id": "1", "type": "timeline", "value": "following", "pinned": true}]},
        {"$type": "app.bsky.actor.defs#adultContentPref", "enabled": false},
        {"$type": "app.bsky.actor.defs#contentLabelPref", "label": "nsfw", "visibility": "hide"},
    ]);
    let (status, body) = put(&server, &alice.token, prefs.clone());
    assert_eq!(status, 200, "{body}");
    assert_eq!(read(&server, &alice.token), prefs, "as given, in order");
    assert_eq!(read(&server, &bob.token), json!([]), "per account");

    // A put replaces the whole list.
    let fewer = json!([{"$type": "app.bsky.actor.defs#adultContentPref", "enabled": true}]);
    assert_eq!(put(&server, &alice.token, fewer.clone()).0, 200);
    assert_eq!(read(&server, &alice.token), fewer);

    // Refused, and nothing changes.
    for bad in [
        json!([{"$type": "com.example.pref", "x": 1}]),
        json!([{"enabled": true}]),
        json!([{"$type": "app.bskyfake.pref"}]),
    ] {
        let (status, body) = put(&server, &alice.token, bad);
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("InvalidRequest")),
            "{body}"
        );
    }
    let too_many: Vec<Value> = (0..501)
        .map(|i| json!({"$type": "app.bsky.actor.defs#mutedWordsPref", "n": i}))
        .collect();
    assert_eq!(put(&server, &alice.token, Value::Array(too_many)).0, 400);
    assert_eq!(read(&server, &alice.token), fewer);

    let (status, _) = get(&server, "app.bsky.actor.getPreferences", None);
    assert_eq!(status, 401);
    let (status, _) = post(
        &server,
        "app.bsky.actor.putPreferences",
        None,
        json!({"preferences": []}),
    );
    assert_eq!(status, 401);
}

#[test]
fn personal_details_are_kept_from_app_passwords() {
    let server = TestServer::start();
    let alice = create_account(&server, "alice");
    let birth = json!({"$type": "app.bsky.actor.defs#personalDetailsPref", "birthDate": "1990-01-01T00:00:00.000Z"});
    let adult = json!({"$type": "app.bsky.actor.defs#adultContentPref", "enabled": true});
    assert_eq!(put(&server, &alice.token, json!([birth, adult])).0, 200);

    let app = app_password_session(&server, &alice.token, "alice.test");
    assert_eq!(
        read(&server, &app),
        json!([adult]),
        "hidden from the app password"
    );
    let (status, body) = put(&server, &app, json!([birth]));
    assert_eq!(status, 400, "{body}");

    // An app-password put replaces what it sees and keeps the rest.
    let muted = json!({"$type": "app.bsky.actor.defs#mutedWordsPref", "items": []});
    assert_eq!(put(&server, &app, json!([muted])).0, 200);
    assert_eq!(read(&server, &app), json!([muted]));
    let full = read(&server, &alice.token);
    assert_eq!(full, json!([birth, muted]));
}
