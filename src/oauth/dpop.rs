//! DPoP at this server: the proof checks of `pds_oauth::dpop` plus what needs state, the
//! server's rotating nonce and the memory of proofs already used.
//!
//! Every response to a request that carried a `DPoP` header gets the current nonce in
//! `DPoP-Nonce` ([`nonce_header`]), so clients learn it from any answer and a rotation costs
//! at most one retry.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use pds_oauth::dpop::{DpopCheck, DpopProof};
use pds_oauth::nonce::NonceSource;

use crate::state::AppState;

/// How old a proof may be. Proofs are used once, so the replay memory holds a proof this long.
pub const PROOF_MAX_AGE_SECS: i64 = 300;
/// How often the nonce changes; the one before and the one after are accepted too.
pub const NONCE_ROTATION_SECS: i64 = 60;
/// The replay memory is swept of expired entries once it holds this many.
const SWEEP_AT: usize = 10_000;

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DpopRefusal {
    /// No `DPoP` header, or more than one.
    Missing,
    /// The proof is malformed, wrongly signed, for another request, or too old.
    Invalid(String),
    /// No nonce, or not a current one: retry with the nonce in the response.
    UseNonce,
    /// This proof was used before.
    Replayed,
}

/// Nonces and used proofs.
pub struct Dpop {
    nonces: NonceSource,
    /// `jti` of used proofs (per key) → when they may be forgotten.
    seen: Mutex<HashMap<String, i64>>,
}

impl Dpop {
    pub fn new(secret: [u8; 32]) -> Dpop {
        Dpop {
            nonces: NonceSource::new(secret, NONCE_ROTATION_SECS),
            seen: Mutex::new(HashMap::new()),
        }
    }

    pub fn current_nonce(&self, now: i64) -> String {
        self.nonces.current(now)
    }

    /// Checks the request's proof for `method` and `url` (the external URL, without query),
    /// and, at a resource server, its binding to `access_token`. The proof is then spent.
    pub fn check(
        &self,
        headers: &HeaderMap,
        method: &Method,
        url: &str,
        access_token: Option<&str>,
        now: i64,
    ) -> Result<DpopProof, DpopRefusal> {
        let mut values = headers.get_all("dpop").iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(DpopRefusal::Missing);
        };
        let proof = value
            .to_str()
            .map_err(|_| DpopRefusal::Invalid("DPoP header is not text".into()))?;
        let checked = pds_oauth::dpop::verify(
            proof,
            &DpopCheck {
                method: method.as_str(),
                url,
                access_token,
                now,
                max_age_secs: PROOF_MAX_AGE_SECS,
            },
        )
        .map_err(|e| DpopRefusal::Invalid(e.to_string()))?;
        match &checked.nonce {
            Some(nonce) if self.nonces.is_valid(nonce, now) => {}
            _ => return Err(DpopRefusal::UseNonce),
        }
        self.spend(&format!("{}:{}", checked.jkt, checked.jti), now)?;
        Ok(checked)
    }

    /// Remembers a one-time value (a proof's or a client assertion's `jti`) until it could no
    /// longer be accepted anyway; refuses one seen before.
    pub fn spend(&self, key: &str, now: i64) -> Result<(), DpopRefusal> {
        let mut seen = self.seen.lock().expect("replay memory lock");
        if seen.len() >= SWEEP_AT {
            seen.retain(|_, forget_at| *forget_at > now);
        }
        if seen.get(key).is_some_and(|forget_at| *forget_at > now) {
            return Err(DpopRefusal::Replayed);
        }
        // Kept a little past the age limit, for proofs dated slightly in the future.
        seen.insert(key.to_owned(), now + PROOF_MAX_AGE_SECS + 60);
        Ok(())
    }
}

impl From<DpopRefusal> for super::error::OAuthHttpError {
    fn from(refusal: DpopRefusal) -> Self {
        use super::error::OAuthHttpError as E;
        match refusal {
            DpopRefusal::Missing => E::invalid_dpop_proof("DPoP proof required"),
            DpopRefusal::Invalid(why) => E::invalid_dpop_proof(why),
            DpopRefusal::UseNonce => E::use_dpop_nonce(),
            DpopRefusal::Replayed => E::invalid_dpop_proof("DPoP proof replayed"),
        }
    }
}

/// Middleware: a response to a request with a `DPoP` header carries the current nonce.
pub async fn nonce_header(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let had_proof = request.headers().contains_key("dpop");
    let mut response = next.run(request).await;
    if had_proof {
        let nonce = state.oauth.dpop.current_nonce(crate::auth::now_secs());
        if let Ok(value) = HeaderValue::from_str(&nonce) {
            response.headers_mut().insert("dpop-nonce", value);
        }
    }
    response
}
