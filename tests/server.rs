//! End-to-end: the real `pds` binary, over real HTTP on 127.0.0.1.

mod common;

use common::{ServerOptions, TestServer, http, run_pds, run_pds_in};
use serde_json::{Value, json};

#[test]
fn serves_health_describe_server_and_the_banner() {
    let server = TestServer::start();
    let client = http();

    let health = client.get(server.url("/xrpc/_health")).send().unwrap();
    assert_eq!(health.status(), 200);
    let health: Value = health.json().unwrap();
    assert_eq!(health, json!({ "version": env!("CARGO_PKG_VERSION") }));

    let describe = client
        .get(server.url("/xrpc/com.atproto.server.describeServer"))
        .header("Origin", "https://app.example")
        .send()
        .unwrap();
    assert_eq!(describe.status(), 200);
    // Browsers calling from another origin must be allowed to read the answer.
    assert_eq!(describe.headers()["access-control-allow-origin"], "*");
    let describe: Value = describe.json().unwrap();
    // The preflight of an authenticated call names `Authorization` (and DPoP's header) back:
    // a "*" would not cover `Authorization` in browsers that follow the Fetch standard.
    let preflight = client
        .request(
            reqwest::Method::OPTIONS,
            server.url("/xrpc/com.atproto.repo.createRecord"),
        )
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,dpop,content-type",
        )
        .send()
        .unwrap();
    assert!(preflight.status().is_success());
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        ["authorization", "dpop", "content-type"]
            .iter()
            .all(|h| allowed.split(',').any(|a| a.trim() == *h)),
        "{allowed}"
    );
    assert!(
        preflight.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert_eq!(describe["did"], "did:web:localhost");
    assert_eq!(describe["availableUserDomains"], json!([".test"]));
    assert_eq!(describe["inviteCodeRequired"], false);
    assert_eq!(describe["phoneVerificationRequired"], false);
    assert!(describe["links"].is_object());
    assert!(describe["contact"].is_object());

    let banner = client.get(server.url("/")).send().unwrap();
    assert_eq!(banner.status(), 200);
    assert!(
        banner
            .text()
            .unwrap()
            .contains("AT Protocol Personal Data Server")
    );

    // The container health check, against this server.
    let port = server.addr.port().to_string();
    let check = run_pds(&["healthcheck"], &[("PDS_PORT", port.as_str())]);
    assert!(check.status.success(), "healthcheck failed: {check:?}");
    assert!(
        check.stdout.contains(env!("CARGO_PKG_VERSION")),
        "{check:?}"
    );
}

#[test]
fn xrpc_errors_have_the_error_json_shape() {
    // A small blob limit (over the shipped file's): the body limit is then its floor, 1 MiB.
    let server = TestServer::start_with(ServerOptions {
        env: vec![("PDS_BLOB_UPLOAD_LIMIT", "1000")],
        ..ServerOptions::default()
    });
    let client = http();
    let error_of = |response: reqwest::blocking::Response| -> (u16, Value) {
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        (status, response.json().unwrap())
    };

    let (status, body) = error_of(
        client
            .get(server.url("/xrpc/com.example.nothing.here"))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 501);
    assert_eq!(body["error"], "MethodNotImplemented");
    assert!(body["message"].is_string());

    let (status, body) = error_of(
        client
            .post(server.url("/xrpc/com.atproto.server.describeServer"))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({ "error": "InvalidRequest", "message": "Incorrect HTTP method (POST) expected GET" })
    );

    // A body over the limit is refused from its Content-Length alone, before
    // it is sent or routed, and the answer still has the XRPC error body.
    // Raw HTTP, because a client still busy writing the body would see the
    // connection close rather than read the answer.
    let response = common::raw_http(
        server.addr,
        &format!(
            "POST /xrpc/com.atproto.repo.uploadBlob HTTP/1.1\r\nHost: {}\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            server.addr,
            1024 * 1024 + 1
        ),
    );
    assert!(response.starts_with("HTTP/1.1 413 "), "{response}");
    let body = response.split_once("\r\n\r\n").expect("a body").1;
    let body: Value = serde_json::from_str(body).expect("a JSON body");
    assert_eq!(body["error"], "PayloadTooLarge");

    let (status, body) = error_of(client.get(server.url("/no/such/page")).send().unwrap());
    assert_eq!(status, 404);
    assert_eq!(body["error"], "NotFound");
}

#[test]
fn a_bad_port_stops_start_up_with_one_line() {
    let run = run_pds(&["serve"], &[("PDS_PORT", "abc")]);
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    assert_eq!(
        run.stderr,
        "config error: PDS_PORT: \"abc\" is not a port number\n"
    );
}

#[test]
fn an_unwritable_data_directory_stops_start_up_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    // Below a regular file nothing can be created, even as root.
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, "").unwrap();
    let data = file.join("data");
    let run = run_pds(
        &["serve"],
        &[
            ("PDS_DEV_MODE", "true"),
            ("PDS_DATA_DIRECTORY", data.to_str().unwrap()),
        ],
    );
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    assert!(
        run.stderr
            .starts_with("config error: PDS_DATA_DIRECTORY: cannot create directory "),
        "{run:?}"
    );
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
}

#[test]
fn outside_dev_mode_missing_secrets_stop_start_up() {
    // No pds.toml in the working directory: built-in defaults, dev mode off.
    let dir = tempfile::tempdir().unwrap();
    let run = run_pds_in(dir.path(), &["serve"], &[("PDS_PORT", "0")]);
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    assert!(
        run.stderr
            .starts_with("config error: PDS_JWT_SECRET: must be set"),
        "{run:?}"
    );
}

#[test]
fn sigterm_stops_cleanly_and_dev_secrets_survive_a_restart() {
    let server = TestServer::start();
    let secrets_file = server.data_dir().join("secrets.toml");
    let secrets = std::fs::read_to_string(&secrets_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secrets_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let log_before = server.log();
    let (status, dir) = server.terminate();
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{log_before}"
    );

    // Same data directory, JSON logs this time: the listening line is still found.
    let server = TestServer::start_with(ServerOptions {
        env: vec![("PDS_LOG_FORMAT", "json")],
        dir: Some(dir),
        ..ServerOptions::default()
    });
    let health = http().get(server.url("/xrpc/_health")).send().unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(std::fs::read_to_string(&secrets_file).unwrap(), secrets);
    let (status, _) = server.terminate();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn healthcheck_fails_when_nothing_answers() {
    // A port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let check = run_pds(&["healthcheck"], &[("PDS_PORT", port.as_str())]);
    assert_eq!(check.status.code(), Some(1), "{check:?}");
    assert!(
        check
            .stderr
            .starts_with("error: cannot connect to http://127.0.0.1:"),
        "{check:?}"
    );
}

#[test]
fn tls_check_answers_for_this_server_and_its_handles_only() {
    let server = TestServer::start();
    common::create_account(&server, "alice");
    let check = |domain: &str| {
        let res = http()
            .get(server.url(&format!("/tls-check?domain={domain}")))
            .send()
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json::<Value>().unwrap_or(Value::Null))
    };
    assert_eq!(check("localhost"), (200, json!({"success": true})));
    assert_eq!(check("alice.test"), (200, json!({"success": true})));
    assert_eq!(check("ALICE.test").0, 200);
    let (status, body) = check("nobody.test");
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("NotFound")),
        "{body}"
    );
    let (status, body) = check("example.com");
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidRequest")),
        "{body}"
    );
    let res = http().get(server.url("/tls-check")).send().unwrap();
    assert_eq!(res.status().as_u16(), 400);
}
