//! Login limits on the real binary (`PDS_RATE_LIMITS_ENABLED=true`): per client IP, and per
//! account identifier whichever IP the guesses come from; 429 with the XRPC error body.

mod common;

use common::{ServerOptions, TestServer, http};
use serde_json::{Value, json};

fn login(
    server: &TestServer,
    identifier: &str,
    forwarded_for: &str,
) -> (u16, Value, Option<String>) {
    let res = http()
        .post(server.url("/xrpc/com.atproto.server.createSession"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"identifier": identifier, "password": "wrong password"}))
        .send()
        .unwrap();
    let status = res.status().as_u16();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, res.json().unwrap_or(Value::Null), retry)
}

#[test]
fn password_guessing_is_slowed_per_ip_and_per_account() {
    let server = TestServer::start_with(ServerOptions {
        env: vec![("PDS_RATE_LIMITS_ENABLED", "true")],
        ..Default::default()
    });
    // 30 guesses from one address are answered (wrongly), the 31st is refused.
    for n in 0..30 {
        let (status, body, _) = login(&server, &format!("user{n}.test"), "203.0.113.7");
        assert_eq!(status, 401, "guess {n}: {body}");
    }
    let (status, body, retry) = login(&server, "someone.test", "203.0.113.7");
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("RateLimitExceeded")),
        "{body}"
    );
    assert!(retry.is_some_and(|r| r.parse::<u64>().unwrap() >= 1));
    // Another address is not affected...
    assert_eq!(login(&server, "someone.test", "203.0.113.8").0, 401);
    // ...but one account cannot be guessed at from many addresses either.
    for n in 0..30 {
        assert_eq!(
            login(&server, "target.test", &format!("198.51.100.{n}")).0,
            401
        );
    }
    let (status, _, _) = login(&server, "TARGET.test", "198.51.100.200");
    assert_eq!(status, 429);
}

#[test]
fn limits_are_off_unless_enabled() {
    let server = TestServer::start();
    for n in 0..40 {
        assert_eq!(
            login(&server, "x.test", &format!("203.0.113.{}", n % 2)).0,
            401
        );
    }
}

/// The OAuth sign-in pages take passwords too: they spend from the same buckets, so guessing
/// through them instead of `createSession` gains nothing.
#[test]
fn the_oauth_sign_in_page_shares_the_login_limits() {
    let server = TestServer::start_with(ServerOptions {
        env: vec![("PDS_RATE_LIMITS_ENABLED", "true")],
        ..Default::default()
    });
    for n in 0..30 {
        assert_eq!(
            login(&server, "target.test", &format!("198.51.100.{n}")).0,
            401
        );
    }
    let browser = reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = browser.get(server.url("/account")).send().unwrap();
    let cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = page.text().unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a csrf field") + marker.len();
    let csrf = &html[start..start + html[start..].find('"').unwrap()];
    let sign_in = |identifier: &str| {
        let response = browser
            .post(server.url("/account/sign-in"))
            .header("Cookie", &cookie)
            .header("x-forwarded-for", "192.0.2.50")
            .form(&[
                ("csrf", csrf),
                ("identifier", identifier),
                ("password", "wrong password"),
            ])
            .send()
            .unwrap();
        let retry = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        (response.status().as_u16(), response.text().unwrap(), retry)
    };
    let (status, html, retry) = sign_in("target.test");
    assert_eq!(status, 429, "{html}");
    assert!(
        retry.is_some_and(|secs| secs >= 1),
        "Retry-After: {retry:?}"
    );
    assert!(html.contains("Too many sign-in attempts"), "{html}");
    // Another account from the same browser is only refused once that address has spent its
    // own 30 attempts.
    let (status, html, retry) = sign_in("someone-else.test");
    assert_eq!((status, retry), (401, None), "{html}");
    assert!(html.contains("Wrong handle, email or password."), "{html}");
}
