//! `pds admin check-handle <handle>`: why a handle does or does not work, step by step, the way
//! the network resolves it: the `_atproto.<handle>` DNS TXT record, the
//! `https://<handle>/.well-known/atproto-did` file, then the DID document, which must claim the
//! handle back (its first `at://` entry of `alsoKnownAs`). Each finding is one line; the handle
//! works when some way gives a DID whose document claims it.

use pds_identity::{DidDocument, IdentityError, IdentityResolver};
use pds_syntax::{Did, Handle};

use crate::config::Config;

/// What the check found: one line per finding, and whether the handle works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandleReport {
    pub lines: Vec<String>,
    pub works: bool,
}

/// Checks `handle` with `config`'s resolver (its DNS, its address policy, its PLC directory).
pub async fn check(config: &Config, handle: &str) -> Result<HandleReport, String> {
    let handle = Handle::new(handle).map_err(|e| format!("{handle:?} is not a handle: {e}"))?;
    let identity =
        pds_identity::IdentityConfig::new(&config.identity.plc_url, config.server.dev_mode);
    let dns =
        crate::identity_service::dns(config, identity.dns_timeout).map_err(|e| e.to_string())?;
    let resolver = IdentityResolver::with_dns(identity, dns.clone()).map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    let normalized = handle.normalized();

    // DNS.
    let name = format!("_atproto.{normalized}");
    let from_dns = match dns.lookup_txt(&name).await {
        Ok(records) => txt_finding(&name, &records, &mut lines),
        Err(e) => {
            lines.push(format!("DNS: looking up TXT {name} failed: {e}"));
            None
        }
    };

    // HTTPS.
    let scheme = if config.server.dev_mode {
        "http"
    } else {
        "https"
    };
    let url = format!("{scheme}://{normalized}/.well-known/atproto-did");
    let from_https = match resolver.handle_resolver().resolve_well_known(&handle).await {
        Ok(did) => {
            lines.push(format!("HTTPS: {url} says {did}"));
            Some(did)
        }
        Err(IdentityError::NotFound(_)) | Err(IdentityError::HttpStatus { .. }) => {
            lines.push(format!(
                "HTTPS: {url} has no DID (not found); fine if the DNS record is set"
            ));
            None
        }
        Err(e) => {
            lines.push(format!("HTTPS: {url}: {e}"));
            None
        }
    };

    let mut candidates: Vec<Did> = Vec::new();
    for did in [from_dns, from_https].into_iter().flatten() {
        if !candidates.contains(&did) {
            candidates.push(did);
        }
    }
    if candidates.len() > 1 {
        lines.push(format!(
            "problem: DNS and HTTPS name different DIDs ({} and {}); resolvers take the DNS one: \
             remove or correct the other",
            candidates[0], candidates[1]
        ));
    }
    if candidates.is_empty() {
        lines.push(format!(
            "problem: {handle} does not resolve: add a TXT record {name} with the value did=<your DID>, \
             or serve the DID as plain text at {url}"
        ));
        return Ok(HandleReport {
            lines,
            works: false,
        });
    }

    // The DID document must claim the handle back.
    let did = candidates[0].clone();
    let works = match resolver.refresh_did(&did).await {
        Ok(document) => document_finding(&did, &document, normalized.as_str(), config, &mut lines),
        Err(e) => {
            lines.push(format!(
                "problem: the DID document of {did} could not be read: {e}"
            ));
            false
        }
    };
    if works {
        lines.push(format!("ok: {handle} is {did}"));
    }
    Ok(HandleReport { lines, works })
}

/// What the TXT records at `name` say; the DID if exactly one valid `did=` record is there.
fn txt_finding(name: &str, records: &[String], lines: &mut Vec<String>) -> Option<Did> {
    let dids: Vec<&str> = records
        .iter()
        .filter_map(|r| r.strip_prefix("did="))
        .collect();
    match (records.len(), dids.as_slice()) {
        (0, _) => {
            lines.push(format!(
                "DNS: no TXT record at {name}; fine if the HTTPS file is served"
            ));
            None
        }
        (_, []) => {
            let shown: Vec<String> = records.iter().map(|r| format!("{r:?}")).collect();
            lines.push(format!(
                "problem: DNS: TXT {name} holds {}, but none starts with \"did=\" (lower case, no spaces)",
                shown.join(", ")
            ));
            None
        }
        (_, [one]) => match Did::new(one.trim()) {
            Ok(did) => {
                lines.push(format!("DNS: TXT {name} says {did}"));
                Some(did)
            }
            Err(e) => {
                lines.push(format!(
                    "problem: DNS: TXT {name} holds did={one}, which is not a DID: {e}"
                ));
                None
            }
        },
        (_, many) => {
            lines.push(format!(
                "problem: DNS: TXT {name} holds {} did= records; there must be exactly one",
                many.len()
            ));
            None
        }
    }
}

/// Whether `document` claims `handle` back; and where it says the account is hosted.
fn document_finding(
    did: &Did,
    document: &DidDocument,
    handle: &str,
    config: &Config,
    lines: &mut Vec<String>,
) -> bool {
    let claimed = document.handle().map(|h| h.normalized().to_string());
    let works = match claimed.as_deref() {
        Some(claimed) if claimed == handle => {
            lines.push(format!("DID document of {did}: claims at://{handle}"));
            true
        }
        Some(claimed) => {
            lines.push(format!(
                "problem: the DID document of {did} claims at://{claimed}, not at://{handle}: \
                 change the handle through the account's host (com.atproto.identity.updateHandle)"
            ));
            false
        }
        None => {
            lines.push(format!(
                "problem: the DID document of {did} claims no handle (no at:// entry in alsoKnownAs)"
            ));
            false
        }
    };
    match document.pds_endpoint() {
        Some(endpoint) if endpoint == config.server.public_url => {
            lines.push(format!("DID document of {did}: hosted here ({endpoint})"));
        }
        Some(endpoint) => lines.push(format!("DID document of {did}: hosted at {endpoint}")),
        None => lines.push(format!(
            "note: the DID document of {did} names no #atproto_pds service"
        )),
    }
    works
}
