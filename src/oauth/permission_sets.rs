//! Permission sets: the lexicons an `include:<nsid>` scope names, found as the lexicon spec
//! publishes them. The NSID's authority, reversed, is a domain; `_lexicon.<domain>` has a TXT
//! record `did=<did>`; that DID's repo holds the set as the record
//! `com.atproto.lexicon.schema/<nsid>`. Fetched through the address-checked client and cached
//! for a while, like client metadata.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pds_identity::{DnsResolver, SafeHttpClient};
use pds_permissions::ScopeSet;
use serde_json::Value;

use super::error::OAuthHttpError;
use crate::state::AppState;

const CACHE_TTL: Duration = Duration::from_secs(10 * 60);
const FAILURE_TTL: Duration = Duration::from_secs(30);
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
const MAX_ENTRIES: usize = 10_000;
/// At most this many sets in one scope (each costs lookups).
const MAX_INCLUDES: usize = 10;

type Entry = (Result<Arc<Value>, String>, Instant);

pub struct PermissionSets {
    dns: Arc<dyn DnsResolver>,
    http: SafeHttpClient,
    cache: Mutex<HashMap<String, Entry>>,
}

fn invalid_scope(why: String) -> OAuthHttpError {
    OAuthHttpError::new(axum::http::StatusCode::BAD_REQUEST, "invalid_scope", why)
}

impl PermissionSets {
    pub fn new(dns: Arc<dyn DnsResolver>, http: SafeHttpClient) -> PermissionSets {
        PermissionSets {
            dns,
            http,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Expands every `include:` of `scope` in place.
    pub async fn expand(
        &self,
        state: &AppState,
        scope: &mut ScopeSet,
    ) -> Result<(), OAuthHttpError> {
        let includes = scope.includes();
        if includes.len() > MAX_INCLUDES {
            return Err(invalid_scope(format!(
                "at most {MAX_INCLUDES} permission sets"
            )));
        }
        for include in includes {
            let lexicon = self
                .lexicon(state, &include.nsid)
                .await
                .map_err(|why| invalid_scope(format!("permission set {}: {why}", include.nsid)))?;
            scope
                .expand_include(&include, &lexicon)
                .map_err(|e| invalid_scope(e.to_string()))?;
        }
        Ok(())
    }

    async fn lexicon(&self, state: &AppState, nsid: &str) -> Result<Arc<Value>, String> {
        if let Some((result, at)) = self.cache.lock().expect("set cache").get(nsid) {
            let ttl = if result.is_ok() {
                CACHE_TTL
            } else {
                FAILURE_TTL
            };
            if at.elapsed() < ttl {
                return result.clone();
            }
        }
        let result = self.fetch(state, nsid).await.map(Arc::new);
        let mut cache = self.cache.lock().expect("set cache");
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(nsid.to_owned(), (result.clone(), Instant::now()));
        result
    }

    async fn fetch(&self, state: &AppState, nsid: &str) -> Result<Value, String> {
        let authority = nsid.rsplit_once('.').map(|(a, _)| a).ok_or("not an NSID")?;
        let domain: Vec<&str> = authority.split('.').rev().collect();
        let name = format!("_lexicon.{}", domain.join("."));
        let records = self
            .dns
            .lookup_txt(&name)
            .await
            .map_err(|e| e.to_string())?;
        let dids: Vec<&str> = records
            .iter()
            .filter_map(|r| r.strip_prefix("did="))
            .collect();
        let [did] = dids.as_slice() else {
            return Err(format!("{name} must have exactly one did= TXT record"));
        };
        let did = pds_syntax::Did::new(did).map_err(|_| format!("{name} names an invalid DID"))?;
        let doc = state
            .id_resolver
            .resolve_did(&did)
            .await
            .map_err(|e| e.to_string())?;
        let pds = doc
            .pds_endpoint()
            .ok_or("the publisher's DID document names no PDS")?;
        let url = format!(
            "{}/xrpc/com.atproto.repo.getRecord?repo={}&collection=com.atproto.lexicon.schema&rkey={}",
            pds.trim_end_matches('/'),
            percent_encoding::utf8_percent_encode(did.as_str(), percent_encoding::NON_ALPHANUMERIC),
            percent_encoding::utf8_percent_encode(nsid, percent_encoding::NON_ALPHANUMERIC),
        );
        let body = self
            .http
            .get_limited(&url, "application/json", MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| format!("fetching the lexicon: {e}"))?;
        let record: Value =
            serde_json::from_slice(&body).map_err(|_| "the lexicon record is not JSON")?;
        record
            .get("value")
            .cloned()
            .ok_or_else(|| "the lexicon record has no value".to_owned())
    }
}
