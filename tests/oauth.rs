//! The OAuth authorization server against the real binary, driven by a small DPoP client
//! written here (real P-256 keys and signatures, real HTTP on loopback), through the same
//! pages a browser gets: PAR, the sign-in and consent forms, the token endpoint, XRPC calls
//! with DPoP, refresh, revocation, the account page; and what must be refused: a wrong PKCE
//! verifier, a replayed proof, a stale nonce, a token used with another key, a scope too narrow
//! for a method, a revoked token, a redirect URI the client did not register, client metadata
//! on a private address, a refresh token used twice, a form without its CSRF token.
//! The ecosystem's own client (with a real browser) is in `oauth_browser.rs`.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{PASSWORD, ServerOptions, TestServer, create_account, http};
use data_encoding::BASE64URL_NOPAD;
use pds_crypto::{Algorithm, Keypair};
use reqwest::blocking::Response;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A URL on the server as its public URL names it (`http://localhost:<port>`): DPoP proofs
/// name that URL, and the issuer is that origin.
fn url(server: &TestServer, path: &str) -> String {
    format!("http://localhost:{}{path}", server.addr.port())
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn b64(bytes: &[u8]) -> String {
    BASE64URL_NOPAD.encode(bytes)
}

fn random(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).unwrap();
    b64(&bytes)
}

/// A P-256 key as a public JWK.
fn public_jwk(key: &Keypair) -> Value {
    let compressed = key.public_key().compressed_bytes();
    let point = p256::ecdsa::VerifyingKey::from_sec1_bytes(&compressed)
        .unwrap()
        .to_sec1_point(false);
    let bytes = point.as_bytes();
    json!({"kty": "EC", "crv": "P-256", "x": b64(&bytes[1..33]), "y": b64(&bytes[33..65])})
}

fn thumbprint(jwk: &Value) -> String {
    let canonical = format!(
        r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
        jwk["crv"].as_str().unwrap(),
        jwk["kty"].as_str().unwrap(),
        jwk["x"].as_str().unwrap(),
        jwk["y"].as_str().unwrap()
    );
    b64(&Sha256::digest(canonical.as_bytes()))
}

/// A compact ES256 JWS.
fn jws(key: &Keypair, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// An OAuth client's DPoP key and the nonce it last heard.
struct Dpop {
    key: Keypair,
    jwk: Value,
    nonce: Option<String>,
}

impl Dpop {
    fn new() -> Dpop {
        let key = Keypair::generate(Algorithm::P256);
        let jwk = public_jwk(&key);
        Dpop {
            key,
            jwk,
            nonce: None,
        }
    }

    fn jkt(&self) -> String {
        thumbprint(&self.jwk)
    }

    fn proof(&self, method: &str, url: &str, access_token: Option<&str>) -> String {
        let mut claims = json!({"jti": random(16), "htm": method, "htu": url, "iat": now()});
        if let Some(nonce) = &self.nonce {
            claims["nonce"] = json!(nonce);
        }
        if let Some(token) = access_token {
            claims["ath"] = json!(b64(&Sha256::digest(token.as_bytes())));
        }
        jws(
            &self.key,
            &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk}),
            &claims,
        )
    }

    fn learn(&mut self, response: &Response) {
        if let Some(nonce) = response.headers().get("dpop-nonce") {
            self.nonce = Some(nonce.to_str().unwrap().to_owned());
        }
    }

    /// A refresh-token grant for a public client.
    fn refresh(&mut self, server: &TestServer, client_id: &str, token: &str) -> (u16, Value) {
        self.post_form(
            &url(server, "/oauth/token"),
            &[
                ("grant_type", "refresh_token"),
                ("client_id", client_id),
                ("refresh_token", token),
            ],
        )
    }

    /// POSTs a form to an authorization server endpoint, retrying once for a nonce.
    fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> (u16, Value) {
        for _ in 0..2 {
            let response = http()
                .post(url)
                .header("DPoP", self.proof("POST", url, None))
                .form(form)
                .send()
                .unwrap();
            self.learn(&response);
            let status = response.status().as_u16();
            let body: Value = response.json().unwrap_or(Value::Null);
            if status == 400 && body["error"] == "use_dpop_nonce" {
                continue;
            }
            return (status, body);
        }
        panic!("the server kept asking for a nonce");
    }

    /// Calls an XRPC procedure with a DPoP-bound token, retrying once for a nonce.
    fn xrpc_post(
        &mut self,
        server: &TestServer,
        nsid: &str,
        token: &str,
        body: &Value,
    ) -> (u16, Value, Option<String>) {
        let url = url(server, &format!("/xrpc/{nsid}"));
        for _ in 0..2 {
            let response = http()
                .post(&url)
                .header("Authorization", format!("DPoP {token}"))
                .header("DPoP", self.proof("POST", &url, Some(token)))
                .json(body)
                .send()
                .unwrap();
            self.learn(&response);
            let status = response.status().as_u16();
            let challenge = response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            let body: Value = response.json().unwrap_or(Value::Null);
            if status == 401
                && challenge
                    .as_deref()
                    .is_some_and(|c| c.contains("use_dpop_nonce"))
            {
                continue;
            }
            return (status, body, challenge);
        }
        panic!("the server kept asking for a nonce");
    }
}

const REDIRECT: &str = "http://127.0.0.1:4000/callback";

fn loopback_client_id(scope: &str) -> String {
    format!(
        "http://localhost?redirect_uri={}&scope={}",
        urlencode(REDIRECT),
        urlencode(scope)
    )
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A browser: no redirects followed, its device cookie kept.
struct Browser {
    client: reqwest::blocking::Client,
    cookie: Option<String>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            client: reqwest::blocking::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    fn keep_cookie(&mut self, response: &Response) {
        if let Some(set) = response.headers().get("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            self.cookie = Some(pair);
        }
    }

    fn get(&mut self, url: &str) -> (u16, String, Option<String>) {
        let mut request = self.client.get(url);
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", cookie);
        }
        let response = request.send().unwrap();
        self.keep_cookie(&response);
        let status = response.status().as_u16();
        let location = location(&response);
        (status, response.text().unwrap(), location)
    }

    fn post(&mut self, url: &str, form: &[(&str, &str)]) -> (u16, String, Option<String>) {
        let mut request = self.client.post(url).form(form);
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", cookie);
        }
        let response = request.send().unwrap();
        self.keep_cookie(&response);
        let status = response.status().as_u16();
        let location = location(&response);
        (status, response.text().unwrap(), location)
    }
}

fn location(response: &Response) -> Option<String> {
    response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// The value of a hidden form field in a page.
fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in:\n{html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let parsed = url::Url::parse(url).unwrap();
    parsed
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

struct Pushed {
    request_uri: String,
    verifier: String,
    client_id: String,
}

fn push(
    server: &TestServer,
    dpop: &mut Dpop,
    client_id: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> (u16, Value, String) {
    let verifier = random(32);
    let challenge = b64(&Sha256::digest(verifier.as_bytes()));
    let mut form = vec![
        ("client_id", client_id),
        ("response_type", "code"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "state-123"),
        ("login_hint", "alice.test"),
    ];
    for (k, v) in extra {
        form.retain(|(name, _)| name != k);
        form.push((k, v));
    }
    // An empty value in `extra` leaves the field out.
    form.retain(|(_, v)| !v.is_empty());
    let (status, body) = dpop.post_form(&url(server, "/oauth/par"), &form);
    (status, body, verifier)
}

fn push_ok(server: &TestServer, dpop: &mut Dpop, client_id: &str, scope: &str) -> Pushed {
    push_with(server, dpop, client_id, scope, &[])
}

fn push_with(
    server: &TestServer,
    dpop: &mut Dpop,
    client_id: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> Pushed {
    let (status, body, verifier) = push(server, dpop, client_id, scope, extra);
    assert_eq!(status, 201, "{body}");
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    Pushed {
        request_uri: body["request_uri"].as_str().unwrap().to_owned(),
        verifier,
        client_id: client_id.to_owned(),
    }
}

fn authorize_url(server: &TestServer, pushed: &Pushed) -> String {
    url(
        server,
        &format!(
            "/oauth/authorize?client_id={}&request_uri={}",
            urlencode(&pushed.client_id),
            urlencode(&pushed.request_uri)
        ),
    )
}

/// Signs in and approves (or denies) through the pages; returns the redirect back to the app.
fn approve(server: &TestServer, browser: &mut Browser, pushed: &Pushed, decision: &str) -> String {
    let (status, page, _) = browser.get(&authorize_url(server, pushed));
    assert_eq!(status, 200, "{page}");
    let consent = if page.contains("name=\"password\"") {
        assert!(
            page.contains("value=\"alice.test\""),
            "login_hint prefills the identifier"
        );
        let (status, _, to) = browser.post(
            &url(server, "/oauth/authorize/sign-in"),
            &[
                ("csrf", &field(&page, "csrf")),
                ("client_id", &pushed.client_id),
                ("request_uri", &pushed.request_uri),
                ("identifier", "alice.test"),
                ("password", PASSWORD),
            ],
        );
        assert_eq!(status, 303);
        let (status, consent, back) = browser.get(&url(server, &to.unwrap()));
        if status == 303 && decision == "allow" {
            // The account approved this app before (on any browser): no consent page.
            let back = back.unwrap();
            assert!(back.starts_with(REDIRECT), "{back}");
            return back;
        }
        assert_eq!(status, 200);
        consent
    } else {
        page
    };
    assert!(
        consent.contains(">Authorize</button>") && consent.contains(">Deny</button>"),
        "{consent}"
    );
    let (status, _, to) = browser.post(
        &url(server, "/oauth/authorize/consent"),
        &[
            ("csrf", &field(&consent, "csrf")),
            ("client_id", &pushed.client_id),
            ("request_uri", &pushed.request_uri),
            ("account", &field(&consent, "account")),
            ("decision", decision),
        ],
    );
    assert_eq!(status, 303);
    let to = to.unwrap();
    assert!(to.starts_with(REDIRECT), "{to}");
    assert_eq!(query_param(&to, "state").as_deref(), Some("state-123"));
    assert_eq!(
        query_param(&to, "iss").as_deref(),
        Some(url(server, "").as_str())
    );
    to
}

struct Tokens {
    access: String,
    refresh: String,
}

fn exchange(server: &TestServer, dpop: &mut Dpop, pushed: &Pushed, code: &str) -> (u16, Value) {
    dpop.post_form(
        &url(server, "/oauth/token"),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &pushed.client_id),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &pushed.verifier),
        ],
    )
}

/// The whole flow for `alice` and a loopback client: tokens.
fn sign_in(server: &TestServer, dpop: &mut Dpop, scope: &str) -> Tokens {
    let pushed = push_ok(server, dpop, &loopback_client_id(scope), scope);
    let mut browser = Browser::new();
    let back = approve(server, &mut browser, &pushed, "allow");
    let code = query_param(&back, "code").unwrap();
    let (status, body) = exchange(server, dpop, &pushed, &code);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    assert!(body["sub"].as_str().unwrap().starts_with("did:plc:"));
    Tokens {
        access: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
    }
}

fn post_record(collection: &str) -> Value {
    json!({"repo": "alice.test", "collection": collection, "record": {
        "$type": collection, "text": "via OAuth", "createdAt": "2026-12-07T00:00:00.000Z",
        "subject": {"uri": "at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/app.bsky.feed.post/3k", "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}
    }})
}

fn start() -> TestServer {
    let server = TestServer::start();
    create_account(&server, "alice");
    server
}

#[test]
fn metadata_describes_the_server() {
    let server = start();
    let resource: Value = http()
        .get(url(&server, "/.well-known/oauth-protected-resource"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let issuer = url(&server, "");
    assert_eq!(resource["resource"], json!(issuer));
    assert_eq!(resource["authorization_servers"], json!([issuer]));
    let meta: Value = http()
        .get(url(&server, "/.well-known/oauth-authorization-server"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(meta["issuer"], json!(issuer));
    assert_eq!(meta["require_pushed_authorization_requests"], json!(true));
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        meta["authorization_response_iss_parameter_supported"],
        json!(true)
    );
    assert_eq!(meta["client_id_metadata_document_supported"], json!(true));
    assert_eq!(
        meta["pushed_authorization_request_endpoint"],
        json!(url(&server, "/oauth/par"))
    );
}

#[test]
fn a_loopback_client_signs_in_writes_refreshes_and_revokes() {
    let server = start();
    let mut dpop = Dpop::new();
    let tokens = sign_in(&server, &mut dpop, "atproto transition:generic");

    let (status, body, _) = dpop.xrpc_post(
        &server,
        "com.atproto.repo.createRecord",
        &tokens.access,
        &post_record("app.bsky.feed.post"),
    );
    assert_eq!(status, 200, "{body}");

    // A refresh rotates the refresh token; the old one, used again, ends the grant.
    let client_id = loopback_client_id("atproto transition:generic");
    let (status, refreshed) = dpop.refresh(&server, &client_id, &tokens.refresh);
    assert_eq!(status, 200, "{refreshed}");
    let access2 = refreshed["access_token"].as_str().unwrap().to_owned();
    assert_ne!(access2, tokens.access);
    let (status, _, _) = dpop.xrpc_post(
        &server,
        "com.atproto.repo.createRecord",
        &access2,
        &post_record("app.bsky.feed.post"),
    );
    assert_eq!(status, 200);

    // Revocation ends the grant: the access token stops working at once.
    let response = http()
        .post(url(&server, "/oauth/revoke"))
        .form(&[
            ("token", access2.as_str()),
            (
                "client_id",
                &loopback_client_id("atproto transition:generic"),
            ),
        ])
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, body, challenge) = dpop.xrpc_post(
        &server,
        "com.atproto.repo.createRecord",
        &access2,
        &post_record("app.bsky.feed.post"),
    );
    assert_eq!(status, 401, "{body}");
    assert!(challenge.unwrap().contains("invalid_token"));
    let (status, body) = dpop.refresh(
        &server,
        &client_id,
        refreshed["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[test]
fn a_reused_refresh_token_ends_the_grant() {
    let server = start();
    let mut dpop = Dpop::new();
    let scope = "atproto transition:generic";
    let tokens = sign_in(&server, &mut dpop, scope);
    let client_id = loopback_client_id(scope);
    let refresh = |dpop: &mut Dpop, token: &str| dpop.refresh(&server, &client_id, token);
    let (status, first) = refresh(&mut dpop, &tokens.refresh);
    assert_eq!(status, 200);
    let (status, body) = refresh(&mut dpop, &tokens.refresh);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // The token the first refresh gave is gone too: someone else had a copy.
    let (status, _) = refresh(&mut dpop, first["refresh_token"].as_str().unwrap());
    assert_eq!(status, 400);
    // A refresh with another DPoP key is refused.
    let mut other = Dpop::new();
    let tokens = sign_in(&server, &mut dpop, scope);
    let (status, body) = refresh(&mut other, &tokens.refresh);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

#[test]
fn a_wrong_pkce_verifier_is_refused_and_spends_the_code() {
    let server = start();
    let mut dpop = Dpop::new();
    let scope = "atproto transition:generic";
    let mut pushed = push_ok(&server, &mut dpop, &loopback_client_id(scope), scope);
    let back = approve(&server, &mut Browser::new(), &pushed, "allow");
    let code = query_param(&back, "code").unwrap();
    let right = std::mem::replace(&mut pushed.verifier, random(32));
    let (status, body) = exchange(&server, &mut dpop, &pushed, &code);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    pushed.verifier = right;
    let (status, _) = exchange(&server, &mut dpop, &pushed, &code);
    assert_eq!(status, 400, "a code works once, even after a failure");
}

#[test]
fn a_code_must_be_redeemed_with_the_key_that_pushed_it() {
    let server = start();
    let mut dpop = Dpop::new();
    let scope = "atproto transition:generic";
    // The client names its key in the push too (RFC 9449 §10); another key is refused there.
    let jkt = dpop.jkt();
    let (status, body, _) = push(
        &server,
        &mut Dpop::new(),
        &loopback_client_id(scope),
        scope,
        &[("dpop_jkt", &jkt)],
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, body, verifier) = push(
        &server,
        &mut dpop,
        &loopback_client_id(scope),
        scope,
        &[("dpop_jkt", &jkt)],
    );
    assert_eq!(status, 201, "{body}");
    let pushed = Pushed {
        request_uri: body["request_uri"].as_str().unwrap().to_owned(),
        verifier,
        client_id: loopback_client_id(scope),
    };
    let back = approve(&server, &mut Browser::new(), &pushed, "allow");
    let mut thief = Dpop::new();
    let (status, body) = exchange(
        &server,
        &mut thief,
        &pushed,
        &query_param(&back, "code").unwrap(),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

#[test]
fn deny_sends_access_denied_back() {
    let server = start();
    let mut dpop = Dpop::new();
    let scope = "atproto transition:generic";
    let pushed = push_ok(&server, &mut dpop, &loopback_client_id(scope), scope);
    let back = approve(&server, &mut Browser::new(), &pushed, "deny");
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&back, "code"), None);
}

#[test]
fn dpop_proofs_are_single_use_nonced_and_bound_to_the_token_key() {
    let server = start();
    let mut dpop = Dpop::new();
    let tokens = sign_in(&server, &mut dpop, "atproto transition:generic");
    let getsession = url(&server, "/xrpc/com.atproto.server.getSession");
    let call = |proof: String, token: &str| {
        let response = http()
            .get(&getsession)
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", proof)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body: Value = response.json().unwrap();
        (status, challenge, body)
    };
    // A fresh proof works (the nonce is known from the token request).
    let proof = dpop.proof("GET", &getsession, Some(&tokens.access));
    let (status, _, body) = call(proof.clone(), &tokens.access);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["handle"], "alice.test");
    // The same proof again: replayed.
    let (status, challenge, _) = call(proof, &tokens.access);
    assert_eq!(status, 401);
    assert!(challenge.contains("invalid_dpop_proof"), "{challenge}");
    // A nonce the server never gave (or long rotated out): use_dpop_nonce, with a new one.
    let mut stale = Dpop {
        key: Keypair::from_private_bytes(Algorithm::P256, &dpop.key.private_bytes()).unwrap(),
        jwk: dpop.jwk.clone(),
        nonce: Some("stale-nonce".into()),
    };
    let (status, challenge, body) = call(
        stale.proof("GET", &getsession, Some(&tokens.access)),
        &tokens.access,
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("use_dpop_nonce"))
    );
    assert!(challenge.contains("use_dpop_nonce"));
    stale.nonce = dpop.nonce.clone();
    let (status, _, _) = call(
        stale.proof("GET", &getsession, Some(&tokens.access)),
        &tokens.access,
    );
    assert_eq!(status, 200);
    // The token with a proof made by another key.
    let mut other = Dpop::new();
    other.nonce = dpop.nonce.clone();
    let (status, challenge, _) = call(
        other.proof("GET", &getsession, Some(&tokens.access)),
        &tokens.access,
    );
    assert_eq!(status, 401);
    assert!(challenge.contains("invalid_token"), "{challenge}");
    // A proof for another URL, or without the token hash.
    let (status, _, _) = call(
        dpop.proof(
            "GET",
            &url(&server, "/xrpc/com.atproto.repo.createRecord"),
            Some(&tokens.access),
        ),
        &tokens.access,
    );
    assert_eq!(status, 401);
    let (status, _, _) = call(dpop.proof("GET", &getsession, None), &tokens.access);
    assert_eq!(status, 401);
    // The token as a plain bearer token.
    let response = http()
        .get(&getsession)
        .bearer_auth(&tokens.access)
        .send()
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[test]
fn scopes_limit_what_a_token_may_do() {
    let server = start();
    let mut dpop = Dpop::new();
    let tokens = sign_in(
        &server,
        &mut dpop,
        "atproto repo:app.bsky.feed.like?action=create",
    );
    let (status, body, _) = dpop.xrpc_post(
        &server,
        "com.atproto.repo.createRecord",
        &tokens.access,
        &post_record("app.bsky.feed.like"),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body, _) = dpop.xrpc_post(
        &server,
        "com.atproto.repo.createRecord",
        &tokens.access,
        &post_record("app.bsky.feed.post"),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("ScopeMissingError")),
        "{body}"
    );
    let rkey = body.to_string();
    let _ = rkey;
    let (status, body, _) = dpop.xrpc_post(
        &server,
        "com.atproto.repo.deleteRecord",
        &tokens.access,
        &json!({"repo": "alice.test", "collection": "app.bsky.feed.like", "rkey": "3kabc"}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("ScopeMissingError")),
        "{body}"
    );
    // Methods this server answers for the AppView need an rpc: scope at the AppView too.
    let url_prefs = url(&server, "/xrpc/app.bsky.actor.getPreferences");
    let response = http()
        .get(&url_prefs)
        .header("Authorization", format!("DPoP {}", tokens.access))
        .header("DPoP", dpop.proof("GET", &url_prefs, Some(&tokens.access)))
        .send()
        .unwrap();
    assert_eq!(response.status(), 403);
    // No account management, no e-mail.
    let (status, _, _) = dpop.xrpc_post(
        &server,
        "com.atproto.server.deactivateAccount",
        &tokens.access,
        &json!({}),
    );
    assert_eq!(status, 403);
    let (status, _, _) = dpop.xrpc_post(
        &server,
        "com.atproto.server.createAppPassword",
        &tokens.access,
        &json!({"name": "x"}),
    );
    assert_eq!(status, 403);
    // A scope wider than the client registered is refused at the push.
    let (status, body, _) = push(
        &server,
        &mut dpop,
        &loopback_client_id("atproto"),
        "atproto transition:generic",
        &[],
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );
}

#[test]
fn pushed_requests_are_checked() {
    let server = TestServer::start_with(ServerOptions {
        env: vec![(
            "PDS_DEV_DNS_OVERRIDES",
            "private.example=10.1.2.3,linklocal.example=169.254.1.1",
        )],
        ..Default::default()
    });
    let mut dpop = Dpop::new();
    let scope = "atproto transition:generic";
    let client_id = loopback_client_id(scope);
    // A redirect URI the client did not register.
    let (status, body, _) = push(
        &server,
        &mut dpop,
        &client_id,
        scope,
        &[("redirect_uri", "http://127.0.0.1:4000/elsewhere")],
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    // Metadata on private and link-local addresses is never fetched.
    for host in ["private.example", "linklocal.example"] {
        let (status, body, _) = push(
            &server,
            &mut dpop,
            &format!("https://{host}/client-metadata.json"),
            scope,
            &[],
        );
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_client_metadata", "{body}");
    }
    // PKCE plain, no state, no DPoP proof.
    let (status, body, _) = push(
        &server,
        &mut dpop,
        &client_id,
        scope,
        &[("code_challenge_method", "plain")],
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let response = http()
        .post(url(&server, "/oauth/par"))
        .form(&[("client_id", client_id.as_str())])
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof");
}

#[test]
fn the_pages_refuse_forms_without_their_csrf_token() {
    let server = start();
    let mut dpop = Dpop::new();
    let scope = "atproto transition:generic";
    let pushed = push_ok(&server, &mut dpop, &loopback_client_id(scope), scope);
    let mut browser = Browser::new();
    let (_, page, _) = browser.get(&authorize_url(&server, &pushed));
    let (status, _, _) = browser.post(
        &url(&server, "/oauth/authorize/sign-in"),
        &[
            ("csrf", "forged"),
            ("client_id", &pushed.client_id),
            ("request_uri", &pushed.request_uri),
            ("identifier", "alice.test"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(status, 403);
    // A wrong password re-renders the form with an error, and approves nothing.
    let (status, again, _) = browser.post(
        &url(&server, "/oauth/authorize/sign-in"),
        &[
            ("csrf", &field(&page, "csrf")),
            ("client_id", &pushed.client_id),
            ("request_uri", &pushed.request_uri),
            ("identifier", "alice.test"),
            ("password", "wrong password"),
        ],
    );
    assert_eq!(status, 401);
    assert!(again.contains("role=\"alert\""));
}

#[test]
fn the_account_page_lists_and_revokes_apps() {
    let server = start();
    let mut dpop = Dpop::new();
    let scope = "atproto transition:generic";
    let pushed = push_ok(&server, &mut dpop, &loopback_client_id(scope), scope);
    let mut browser = Browser::new();
    let back = approve(&server, &mut browser, &pushed, "allow");
    let (status, tokens) = exchange(
        &server,
        &mut dpop,
        &pushed,
        &query_param(&back, "code").unwrap(),
    );
    assert_eq!(status, 200);
    let access = tokens["access_token"].as_str().unwrap();

    // The same browser is signed in: the account page lists the app.
    let (status, page, _) = browser.get(&url(&server, "/account"));
    assert_eq!(status, 200);
    assert!(
        page.contains("@alice.test") && page.contains(">Revoke</button>"),
        "{page}"
    );
    let (status, _, to) = browser.post(
        &url(&server, "/account/revoke"),
        &[
            ("csrf", &field(&page, "csrf")),
            ("account", &field(&page, "account")),
            ("grant", &field(&page, "grant")),
        ],
    );
    assert_eq!((status, to.as_deref()), (303, Some("/account")));
    let (_, page, _) = browser.get(&url(&server, "/account"));
    assert!(!page.contains(">Revoke</button>"), "{page}");
    let (status, _, _) = dpop.xrpc_post(
        &server,
        "com.atproto.repo.createRecord",
        access,
        &post_record("app.bsky.feed.post"),
    );
    assert_eq!(status, 401);

    // A second authorization on the same browser goes straight to consent for the hinted account.
    let pushed = push_ok(&server, &mut dpop, &loopback_client_id(scope), scope);
    let (status, page, _) = browser.get(&authorize_url(&server, &pushed));
    assert_eq!(status, 200);
    assert!(
        page.contains(">Authorize</button>") && !page.contains("name=\"password\""),
        "{page}"
    );
}

#[test]
fn a_confidential_client_authenticates_with_private_key_jwt() {
    let client_key = Keypair::generate(Algorithm::P256);
    let mut jwk = public_jwk(&client_key);
    jwk["kid"] = json!("key-1");
    jwk["alg"] = json!("ES256");
    jwk["use"] = json!("sig");
    let metadata = std::sync::Arc::new(std::sync::Mutex::new(Value::Null));
    let served = metadata.clone();
    let app = axum::Router::new().route(
        "/client-metadata.json",
        axum::routing::get(move || {
            let doc = served.lock().unwrap().clone();
            async move { axum::Json(doc) }
        }),
    );
    let (addr, _runtime) = common::serve_on_loopback(app);
    let client_id = format!("http://{addr}/client-metadata.json");
    *metadata.lock().unwrap() = json!({
        "client_id": client_id,
        "client_name": "Confidential Test App",
        "application_type": "native",
        "redirect_uris": [REDIRECT],
        "scope": "atproto transition:generic",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "ES256",
        "dpop_bound_access_tokens": true,
        "jwks": {"keys": [jwk]},
    });
    let server = start();
    let issuer = url(&server, "");
    let assertion = || {
        jws(
            &client_key,
            &json!({"alg": "ES256", "kid": "key-1"}),
            &json!({"iss": client_id, "sub": client_id, "aud": issuer, "jti": random(16), "iat": now(), "exp": now() + 60}),
        )
    };
    let mut dpop = Dpop::new();
    let scope = "atproto transition:generic";
    let assertion_type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    // Without its assertion, the client is refused.
    let (status, body, _) = push(&server, &mut dpop, &client_id, scope, &[]);
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    let first = assertion();
    let (status, body, verifier) = push(
        &server,
        &mut dpop,
        &client_id,
        scope,
        &[
            ("client_assertion_type", assertion_type),
            ("client_assertion", &first),
        ],
    );
    assert_eq!(status, 201, "{body}");
    let pushed = Pushed {
        request_uri: body["request_uri"].as_str().unwrap().to_owned(),
        verifier,
        client_id: client_id.clone(),
    };
    let mut browser = Browser::new();
    let (_, page, _) = browser.get(&authorize_url(&server, &pushed));
    assert!(
        page.contains("Confidential Test App"),
        "the page names the app: {page}"
    );
    let back = approve(&server, &mut browser, &pushed, "allow");
    let code = query_param(&back, "code").unwrap();
    // The same assertion again is a replay.
    let (status, body) = dpop.post_form(
        &url(&server, "/oauth/token"),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &pushed.verifier),
            ("client_assertion_type", assertion_type),
            ("client_assertion", &first),
        ],
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    // The client is authenticated before the code is looked at, so the failed try did not
    // spend it.
    let (status, tokens) = dpop.post_form(
        &url(&server, "/oauth/token"),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &pushed.verifier),
            ("client_assertion_type", assertion_type),
            ("client_assertion", &assertion()),
        ],
    );
    assert_eq!(status, 200, "{tokens}");
    // A refresh must authenticate too.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = dpop.refresh(&server, &client_id, refresh);
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    let (status, body) = dpop.post_form(
        &url(&server, "/oauth/token"),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", refresh),
            ("client_assertion_type", assertion_type),
            ("client_assertion", &assertion()),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let (status, body, _) = dpop.xrpc_post(
        &server,
        "com.atproto.repo.createRecord",
        body["access_token"].as_str().unwrap(),
        &post_record("app.bsky.feed.post"),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn permission_sets_are_fetched_from_their_publisher_and_enforced() {
    // A fixed port, so that the DID document written on the first start still names the server
    // after the restart that adds the DNS answer.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let server = TestServer::start_with(ServerOptions {
        env: vec![("PDS_PORT", port.as_str())],
        ..Default::default()
    });
    let alice = create_account(&server, "alice");
    // Alice publishes the set in her repo, as a lexicon schema record.
    let nsid = "com.example.calendar.basePermissions";
    let (status, body) = common::post(
        &server,
        "com.atproto.repo.putRecord",
        Some(&alice.token),
        json!({"repo": alice.did, "collection": "com.atproto.lexicon.schema", "rkey": nsid, "record": {
            "$type": "com.atproto.lexicon.schema", "lexicon": 1, "id": nsid,
            "defs": {"main": {"type": "permission-set", "title": "Manage your calendar",
                "detail": "Events and RSVPs",
                "permissions": [{"type": "permission", "resource": "repo", "collection": ["com.example.calendar.event"]}]}}
        }}),
    );
    assert_eq!(status, 200, "{body}");
    let (_, dir) = server.terminate();
    let txt = format!("_lexicon.calendar.example.com=did={}", alice.did);
    let server = TestServer::start_with(ServerOptions {
        env: vec![
            ("PDS_PORT", port.as_str()),
            ("PDS_DEV_DNS_OVERRIDES", txt.as_str()),
        ],
        dir: Some(dir),
        ..Default::default()
    });

    let scope = format!("atproto include:{nsid}");
    let mut dpop = Dpop::new();
    let pushed = push_ok(&server, &mut dpop, &loopback_client_id(&scope), &scope);
    let mut browser = Browser::new();
    let (_, page, _) = browser.get(&authorize_url(&server, &pushed));
    assert!(page.contains("name=\"password\""), "{page}");
    let back = approve(&server, &mut browser, &pushed, "allow");
    let (status, tokens) = exchange(
        &server,
        &mut dpop,
        &pushed,
        &query_param(&back, "code").unwrap(),
    );
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        tokens["scope"],
        json!(scope),
        "the grant is reported as asked for"
    );
    let access = tokens["access_token"].as_str().unwrap();
    let event = json!({"repo": alice.did, "collection": "com.example.calendar.event", "record": {"$type": "com.example.calendar.event", "name": "Standup"}});
    let (status, body, _) =
        dpop.xrpc_post(&server, "com.atproto.repo.createRecord", access, &event);
    assert_eq!(status, 200, "{body}");
    let (status, body, _) = dpop.xrpc_post(
        &server,
        "com.atproto.repo.createRecord",
        access,
        &post_record("app.bsky.feed.post"),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("ScopeMissingError")),
        "{body}"
    );

    // A set nobody publishes is refused at the push.
    let missing = "atproto include:com.example.nowhere.perms";
    let (status, body, _) = push(
        &server,
        &mut dpop,
        &loopback_client_id(missing),
        missing,
        &[],
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );
}

#[test]
fn a_code_presented_twice_ends_the_grant_it_made() {
    let server = start();
    let mut dpop = Dpop::new();
    let scope = "atproto transition:generic";
    let pushed = push_ok(&server, &mut dpop, &loopback_client_id(scope), scope);
    let back = approve(&server, &mut Browser::new(), &pushed, "allow");
    let code = query_param(&back, "code").unwrap();
    let (status, tokens) = exchange(&server, &mut dpop, &pushed, &code);
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let (status, _, _) = dpop.xrpc_post(
        &server,
        "com.atproto.repo.createRecord",
        access,
        &post_record("app.bsky.feed.post"),
    );
    assert_eq!(status, 200);
    // Whoever presents the code again (the app or a thief) ends the grant made from it.
    let (status, body) = exchange(&server, &mut dpop, &pushed, &code);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _, _) = dpop.xrpc_post(
        &server,
        "com.atproto.repo.createRecord",
        access,
        &post_record("app.bsky.feed.post"),
    );
    assert_eq!(status, 401);
    let (status, body) = dpop.refresh(
        &server,
        &pushed.client_id,
        tokens["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[test]
fn an_app_approved_before_signs_in_again_without_a_page() {
    let server = start();
    let mut dpop = Dpop::new();
    let client_id = loopback_client_id("atproto transition:generic transition:email");
    let scope = "atproto transition:generic";
    let pushed = push_ok(&server, &mut dpop, &client_id, scope);
    let mut browser = Browser::new();
    let back = approve(&server, &mut browser, &pushed, "allow");
    let (status, _) = exchange(
        &server,
        &mut dpop,
        &pushed,
        &query_param(&back, "code").unwrap(),
    );
    assert_eq!(status, 200);

    // The same app on the same browser, naming the account: straight back with a code.
    let straight_back = |browser: &mut Browser, pushed: &Pushed| {
        let (status, page, to) = browser.get(&authorize_url(&server, pushed));
        assert_eq!(status, 303, "{page}");
        let to = to.unwrap();
        assert!(to.starts_with(REDIRECT), "{to}");
        assert_eq!(query_param(&to, "state").as_deref(), Some("state-123"));
        assert_eq!(
            query_param(&to, "iss").as_deref(),
            Some(url(&server, "").as_str())
        );
        to
    };
    let pushed = push_ok(&server, &mut dpop, &client_id, scope);
    let to = straight_back(&mut browser, &pushed);
    let (status, body) = exchange(
        &server,
        &mut dpop,
        &pushed,
        &query_param(&to, "code").unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    // So does prompt=none, the app's silent check.
    let pushed = push_with(&server, &mut dpop, &client_id, scope, &[("prompt", "none")]);
    let to = straight_back(&mut browser, &pushed);
    assert!(query_param(&to, "code").is_some(), "{to}");

    let asks = |browser: &mut Browser, pushed: &Pushed| {
        let (status, page, _) = browser.get(&authorize_url(&server, pushed));
        assert_eq!(status, 200, "{page}");
        assert!(page.contains(">Authorize</button>"), "{page}");
    };
    // The app may ask for the consent page; asking for more than approved shows it anyway.
    let pushed = push_with(
        &server,
        &mut dpop,
        &client_id,
        scope,
        &[("prompt", "consent")],
    );
    asks(&mut browser, &pushed);
    let more = "atproto transition:generic transition:email";
    let pushed = push_ok(&server, &mut dpop, &client_id, more);
    asks(&mut browser, &pushed);
    let pushed = push_with(&server, &mut dpop, &client_id, more, &[("prompt", "none")]);
    let to = straight_back(&mut browser, &pushed);
    assert_eq!(
        query_param(&to, "error").as_deref(),
        Some("consent_required")
    );

    // prompt=none on a browser nobody signed in on: the app hears login_required.
    let pushed = push_with(&server, &mut dpop, &client_id, scope, &[("prompt", "none")]);
    let to = straight_back(&mut Browser::new(), &pushed);
    assert_eq!(query_param(&to, "error").as_deref(), Some("login_required"));
    assert!(query_param(&to, "code").is_none());
}

#[test]
fn prompt_none_with_two_accounts_signed_in_asks_the_app_to_pick_one() {
    let server = start();
    create_account(&server, "bob");
    let mut dpop = Dpop::new();
    let scope = "atproto transition:generic";
    let client_id = loopback_client_id(scope);
    // Both accounts sign in on one browser, through the account page.
    let mut browser = Browser::new();
    for who in ["alice.test", "bob.test"] {
        let (status, page, _) = browser.get(&url(&server, "/account"));
        assert_eq!(status, 200, "{page}");
        let (status, page, to) = browser.post(
            &url(&server, "/account/sign-in"),
            &[
                ("csrf", &field(&page, "csrf")),
                ("identifier", who),
                ("password", PASSWORD),
            ],
        );
        assert_eq!((status, to.as_deref()), (303, Some("/account")), "{page}");
    }
    // Without a hint, two candidates: the app must let the person choose.
    let pushed = push_with(
        &server,
        &mut dpop,
        &client_id,
        scope,
        &[("prompt", "none"), ("login_hint", "")],
    );
    let (status, page, to) = browser.get(&authorize_url(&server, &pushed));
    assert_eq!(status, 303, "{page}");
    let to = to.unwrap();
    assert!(to.starts_with(REDIRECT), "{to}");
    assert_eq!(
        query_param(&to, "error").as_deref(),
        Some("account_selection_required")
    );
    // Shown the page instead, the person is offered both accounts to pick from.
    let pushed = push_with(&server, &mut dpop, &client_id, scope, &[("login_hint", "")]);
    let (status, page, _) = browser.get(&authorize_url(&server, &pushed));
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("@alice.test") && page.contains("@bob.test"),
        "{page}"
    );
    // Naming one of them narrows it down: that one has not approved the app yet.
    let pushed = push_with(&server, &mut dpop, &client_id, scope, &[("prompt", "none")]);
    let (_, _, to) = browser.get(&authorize_url(&server, &pushed));
    assert_eq!(
        query_param(&to.unwrap(), "error").as_deref(),
        Some("consent_required")
    );
}
