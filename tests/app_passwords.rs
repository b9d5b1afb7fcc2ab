//! App passwords and invite codes on the real binary: creating, listing and revoking app
//! passwords, what their sessions may do, and account creation when invite codes are required.

mod common;

use common::{LocalPlc, ServerOptions, TestServer, http};
use serde_json::{Value, json};

const PASSWORD: &str = "hunter22hunter22";
const ADMIN_PASSWORD: &str = "admin-secret-for-tests";

fn start(plc: &LocalPlc, extra: &[(&'static str, &'static str)]) -> TestServer {
    let mut env = vec![
        ("PDS_DID_PLC_URL", plc.url.as_str()),
        ("PDS_EMBEDDED_PLC", "false"),
        ("PDS_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ];
    env.extend_from_slice(extra);
    TestServer::start_with(ServerOptions {
        env,
        ..Default::default()
    })
}

enum Auth<'a> {
    None,
    Bearer(&'a str),
    Basic(&'a str, &'a str),
}

fn send(req: reqwest::blocking::RequestBuilder, auth: Auth<'_>) -> (u16, Value) {
    let req = match auth {
        Auth::None => req,
        Auth::Bearer(token) => req.bearer_auth(token),
        Auth::Basic(user, password) => req.basic_auth(user, Some(password)),
    };
    let res = req.send().unwrap();
    let status = res.status().as_u16();
    let text = res.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn post(server: &TestServer, nsid: &str, auth: Auth<'_>, body: Value) -> (u16, Value) {
    send(
        http()
            .post(server.url(&format!("/xrpc/{nsid}")))
            .json(&body),
        auth,
    )
}

fn get(server: &TestServer, path_and_query: &str, auth: Auth<'_>) -> (u16, Value) {
    send(
        http().get(server.url(&format!("/xrpc/{path_and_query}"))),
        auth,
    )
}

fn error(response: &(u16, Value)) -> (u16, &str) {
    (response.0, response.1["error"].as_str().unwrap_or("<none>"))
}

fn login(server: &TestServer, identifier: &str, password: &str) -> (u16, Value) {
    post(
        server,
        "com.atproto.server.createSession",
        Auth::None,
        json!({"identifier": identifier, "password": password}),
    )
}

fn refresh(server: &TestServer, refresh_jwt: &str) -> (u16, Value) {
    post(
        server,
        "com.atproto.server.refreshSession",
        Auth::Bearer(refresh_jwt),
        Value::Null,
    )
}

/// The `scope` claim of an access token.
fn scope(access_jwt: &str) -> String {
    let payload = access_jwt.split('.').nth(1).unwrap();
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(payload.as_bytes())
        .unwrap();
    let claims: Value = serde_json::from_slice(&bytes).unwrap();
    claims["scope"].as_str().unwrap().to_owned()
}

fn create_app_password(server: &TestServer, token: &str, body: Value) -> (u16, Value) {
    post(
        server,
        "com.atproto.server.createAppPassword",
        Auth::Bearer(token),
        body,
    )
}

fn app_password_names(server: &TestServer, token: &str) -> Vec<String> {
    let (status, body) = get(
        server,
        "com.atproto.server.listAppPasswords",
        Auth::Bearer(token),
    );
    assert_eq!(status, 200, "{body}");
    body["passwords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

fn is_app_password(p: &str) -> bool {
    p.len() == 19
        && p.char_indices().all(|(i, c)| {
            if i % 5 == 4 {
                c == '-'
            } else {
                matches!(c, 'a'..='z' | '2'..='7')
            }
        })
}

#[test]
fn app_passwords_create_list_revoke_and_their_sessions() {
    let plc = LocalPlc::start();
    let server = start(&plc, &[]);
    let (status, account) = post(
        &server,
        "com.atproto.server.createAccount",
        Auth::None,
        json!({"handle": "alice.test", "email": "alice@example.com", "password": PASSWORD}),
    );
    assert_eq!(status, 200, "{account}");
    let did = account["did"].as_str().unwrap();
    let full = account["accessJwt"].as_str().unwrap();
    assert_eq!(scope(full), "com.atproto.access");

    // Create: the password is shown once, in the reference's shape.
    let (status, phone) = create_app_password(&server, full, json!({"name": "phone"}));
    assert_eq!(status, 200, "{phone}");
    assert_eq!(phone["name"], "phone");
    assert_eq!(phone["privileged"], false);
    assert!(
        phone["createdAt"].as_str().unwrap().ends_with('Z'),
        "{phone}"
    );
    let phone_password = phone["password"].as_str().unwrap();
    assert!(is_app_password(phone_password), "{phone_password}");
    let (status, trusted) = create_app_password(
        &server,
        full,
        json!({"name": "trusted client", "privileged": true}),
    );
    assert_eq!(status, 200, "{trusted}");
    assert_eq!(trusted["privileged"], true);
    let trusted_password = trusted["password"].as_str().unwrap();
    assert_ne!(trusted_password, phone_password);

    // Refusals.
    for body in [json!({"name": "phone"}), json!({"name": "  "}), json!({})] {
        let response = create_app_password(&server, full, body.clone());
        assert_eq!(
            error(&response),
            (400, "InvalidRequest"),
            "{body}: {response:?}"
        );
    }
    let response = post(
        &server,
        "com.atproto.server.createAppPassword",
        Auth::None,
        json!({"name": "x"}),
    );
    assert_eq!(error(&response), (401, "AuthenticationRequired"));

    // List: newest first, never the passwords.
    let (status, listed) = get(
        &server,
        "com.atproto.server.listAppPasswords",
        Auth::Bearer(full),
    );
    assert_eq!(status, 200, "{listed}");
    let passwords = listed["passwords"].as_array().unwrap();
    assert_eq!(passwords.len(), 2);
    assert_eq!(passwords[0]["name"], "trusted client");
    assert_eq!(passwords[0]["privileged"], true);
    assert_eq!(passwords[1]["name"], "phone");
    assert_eq!(passwords[1]["privileged"], false);
    assert!(passwords.iter().all(|p| p.get("password").is_none()));

    // Logging in with an app password gives an app-password session.
    let (status, app) = login(&server, "alice.test", phone_password);
    assert_eq!(status, 200, "{app}");
    assert_eq!(app["did"], did);
    assert!(app.get("email").is_none(), "{app}");
    let app_token = app["accessJwt"].as_str().unwrap();
    assert_eq!(scope(app_token), "com.atproto.appPass");
    let (status, session) = get(
        &server,
        "com.atproto.server.getSession",
        Auth::Bearer(app_token),
    );
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["handle"], "alice.test");
    assert!(session.get("email").is_none(), "{session}");
    // It may not mint more app passwords or see invite codes; it may list (as the reference).
    let response = create_app_password(&server, app_token, json!({"name": "sneaky"}));
    assert_eq!(error(&response), (400, "InvalidToken"), "{response:?}");
    let response = get(
        &server,
        "com.atproto.server.getAccountInviteCodes",
        Auth::Bearer(app_token),
    );
    assert_eq!(error(&response), (400, "InvalidToken"), "{response:?}");
    assert_eq!(app_password_names(&server, app_token).len(), 2);

    // Privileged app passwords, and refreshing keeps each session's scope.
    let (status, privileged) = login(&server, did, trusted_password);
    assert_eq!(status, 200, "{privileged}");
    assert_eq!(
        scope(privileged["accessJwt"].as_str().unwrap()),
        "com.atproto.appPassPrivileged"
    );
    let (status, refreshed) = refresh(&server, privileged["refreshJwt"].as_str().unwrap());
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(
        scope(refreshed["accessJwt"].as_str().unwrap()),
        "com.atproto.appPassPrivileged"
    );
    let (status, phone_refreshed) = refresh(&server, app["refreshJwt"].as_str().unwrap());
    assert_eq!(status, 200, "{phone_refreshed}");
    assert_eq!(
        scope(phone_refreshed["accessJwt"].as_str().unwrap()),
        "com.atproto.appPass"
    );
    let phone_refresh = phone_refreshed["refreshJwt"].as_str().unwrap();

    // Revoke: the password stops logging in and its sessions stop refreshing; others go on.
    let (status, body) = post(
        &server,
        "com.atproto.server.revokeAppPassword",
        Auth::Bearer(full),
        json!({"name": "phone"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(app_password_names(&server, full), ["trusted client"]);
    assert_eq!(
        error(&login(&server, "alice.test", phone_password)),
        (401, "AuthenticationRequired")
    );
    assert_eq!(
        error(&refresh(&server, phone_refresh)),
        (400, "ExpiredToken")
    );
    let (status, body) = refresh(&server, refreshed["refreshJwt"].as_str().unwrap());
    assert_eq!(status, 200, "{body}");
    assert_eq!(login(&server, "alice.test", trusted_password).0, 200);
    assert_eq!(login(&server, "alice.test", PASSWORD).0, 200);
    // Revoking a name that does not exist is not an error (as the reference).
    let (status, body) = post(
        &server,
        "com.atproto.server.revokeAppPassword",
        Auth::Bearer(full),
        json!({"name": "never existed"}),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn invite_codes_when_required() {
    let plc = LocalPlc::start();
    let server = start(&plc, &[("PDS_INVITE_REQUIRED", "true")]);
    let (_, described) = get(&server, "com.atproto.server.describeServer", Auth::None);
    assert_eq!(described["inviteCodeRequired"], true);

    let create = |handle: &str, code: Option<&str>| {
        let mut body = json!({
            "handle": handle, "email": format!("{handle}@example.com"), "password": PASSWORD,
        });
        if let Some(code) = code {
            body["inviteCode"] = json!(code);
        }
        post(
            &server,
            "com.atproto.server.createAccount",
            Auth::None,
            body,
        )
    };
    let admin = Auth::Basic("admin", ADMIN_PASSWORD);

    // No code, a made-up code: refused.
    let response = create("alice.test", None);
    assert_eq!(error(&response), (400, "InvalidInviteCode"), "{response:?}");
    assert_eq!(response.1["message"], "No invite code provided");
    let response = create("alice.test", Some("localhost-aaaaa-bbbbb"));
    assert_eq!(error(&response), (400, "InvalidInviteCode"), "{response:?}");

    // Only the admin makes codes.
    let body = json!({"useCount": 1});
    for auth in [
        Auth::None,
        Auth::Basic("admin", "wrong"),
        Auth::Basic("root", ADMIN_PASSWORD),
        Auth::Bearer(ADMIN_PASSWORD),
    ] {
        let response = post(
            &server,
            "com.atproto.server.createInviteCode",
            auth,
            body.clone(),
        );
        assert_eq!(
            error(&response),
            (401, "AuthenticationRequired"),
            "{response:?}"
        );
    }
    for bad in [
        json!({"useCount": 0}),
        json!({"useCount": 1, "forAccount": "nope"}),
    ] {
        let response = post(
            &server,
            "com.atproto.server.createInviteCode",
            Auth::Basic("admin", ADMIN_PASSWORD),
            bad.clone(),
        );
        assert_eq!(
            error(&response),
            (400, "InvalidRequest"),
            "{bad}: {response:?}"
        );
    }
    let (status, made) = post(&server, "com.atproto.server.createInviteCode", admin, body);
    assert_eq!(status, 200, "{made}");
    let code = made["code"].as_str().unwrap();
    assert!(
        code.starts_with("localhost-") && code.len() == "localhost-".len() + 11,
        "{code}"
    );

    // A good code lets one account in; used up, it refuses the next.
    let (status, alice) = create("alice.test", Some(code));
    assert_eq!(status, 200, "{alice}");
    let alice_did = alice["did"].as_str().unwrap();
    let alice_token = alice["accessJwt"].as_str().unwrap();
    let response = create("bob.test", Some(code));
    assert_eq!(error(&response), (400, "InvalidInviteCode"), "{response:?}");
    assert_eq!(response.1["message"], "Provided invite code not available");

    // Codes for an account, which it can see with their uses.
    let (status, made) = post(
        &server,
        "com.atproto.server.createInviteCodes",
        Auth::Basic("admin", ADMIN_PASSWORD),
        json!({"codeCount": 2, "useCount": 2, "forAccounts": [alice_did]}),
    );
    assert_eq!(status, 200, "{made}");
    assert_eq!(made["codes"][0]["account"], alice_did);
    let alice_codes: Vec<String> = made["codes"][0]["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(alice_codes.len(), 2);
    let (status, listed) = get(
        &server,
        "com.atproto.server.getAccountInviteCodes",
        Auth::Bearer(alice_token),
    );
    assert_eq!(status, 200, "{listed}");
    let listed = listed["codes"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    for c in listed {
        assert_eq!(c["forAccount"], alice_did);
        assert_eq!(c["createdBy"], "admin");
        assert_eq!(c["available"], 2);
        assert_eq!(c["disabled"], false);
        assert_eq!(c["uses"], json!([]));
    }

    // The use is recorded; a two-use code takes two accounts, then is used up.
    let shared = &alice_codes[0];
    let (status, bob) = create("bob.test", Some(shared));
    assert_eq!(status, 200, "{bob}");
    let (status, carol) = create("carol.test", Some(shared));
    assert_eq!(status, 200, "{carol}");
    let response = create("dave.test", Some(shared));
    assert_eq!(error(&response), (400, "InvalidInviteCode"), "{response:?}");
    let codes_of = |query: &str| {
        let (status, body) = get(
            &server,
            &format!("com.atproto.server.getAccountInviteCodes{query}"),
            Auth::Bearer(alice_token),
        );
        assert_eq!(status, 200, "{body}");
        body["codes"].as_array().unwrap().clone()
    };
    let all = codes_of("");
    let used = all.iter().find(|c| &c["code"] == shared).unwrap();
    let mut users: Vec<&str> = used["uses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["usedBy"].as_str().unwrap())
        .collect();
    users.sort_unstable();
    let mut expected = vec![bob["did"].as_str().unwrap(), carol["did"].as_str().unwrap()];
    expected.sort_unstable();
    assert_eq!(users, expected);
    assert!(used["uses"][0]["usedAt"].as_str().unwrap().ends_with('Z'));
    // Used-up codes are left out on request.
    let unused = codes_of("?includeUsed=false&createAvailable=true");
    assert_eq!(unused.len(), 1);
    assert_eq!(unused[0]["code"].as_str().unwrap(), alice_codes[1]);
    assert_eq!(codes_of("?includeUsed=true").len(), 2);

    // Admin batches default to codes for `admin`.
    let (status, made) = post(
        &server,
        "com.atproto.server.createInviteCodes",
        Auth::Basic("admin", ADMIN_PASSWORD),
        json!({"useCount": 1}),
    );
    assert_eq!(status, 200, "{made}");
    assert_eq!(made["codes"][0]["account"], "admin");
    assert_eq!(made["codes"][0]["codes"].as_array().unwrap().len(), 1);
    let (status, dave) = create("dave.test", made["codes"][0]["codes"][0].as_str());
    assert_eq!(status, 200, "{dave}");
}
