//! The checks a directory applies to a submitted operation on its own,
//! before looking at the DID's log: format, sizes and counts.
//!
//! The limits are the public directory's (its `constraints.ts`), which are
//! looser than the v0.1 written spec in one place: it allows 10 rotation keys
//! where the spec says 5. On top of them this directory also checks syntax
//! the public one leaves alone, so that a PDS bug shows up here rather than
//! in a DID document: `at://` aliases must name a valid handle, other
//! aliases must be URIs, service endpoints must be http(s) URLs, rotation
//! keys must be 1 to 10 without repeats, and legacy `create` operations are
//! refused (the public directory refuses those too). Logs read from
//! elsewhere are not held to these extra rules; see [`crate::log`].

use std::collections::HashSet;

use pds_crypto::PublicKey;

use crate::PlcError;
use crate::op::{SignedOp, UnsignedOp};

/// Largest accepted operation, in bytes of signed DAG-CBOR.
pub const MAX_OP_BYTES: usize = 4000;
/// Most rotation keys an operation may list.
pub const MAX_ROTATION_KEYS: usize = 10;
/// Most `alsoKnownAs` entries.
pub const MAX_ALSO_KNOWN_AS: usize = 10;
/// Longest `alsoKnownAs` entry: a 253-character handle plus `at://`.
pub const MAX_ALSO_KNOWN_AS_LEN: usize = 258;
/// Most `services` entries.
pub const MAX_SERVICES: usize = 10;
/// Most `verificationMethods` entries.
pub const MAX_VERIFICATION_METHODS: usize = 10;
/// Longest service or verification-method name.
pub const MAX_ID_LEN: usize = 32;
/// Longest service `type`.
pub const MAX_SERVICE_TYPE_LEN: usize = 96;
/// Longest service `endpoint`.
pub const MAX_SERVICE_ENDPOINT_LEN: usize = 256;

/// Checks an operation submitted to the directory, without its log.
pub fn check_submission(op: &SignedOp) -> Result<(), PlcError> {
    let invalid = |msg: String| Err(PlcError::InvalidOperation(msg));
    let size = op.to_cbor().len();
    if size > MAX_OP_BYTES {
        return invalid(format!(
            "operation is {size} bytes of DAG-CBOR (at most {MAX_OP_BYTES})"
        ));
    }
    op.sig_bytes()?;
    if let Some(prev) = op.prev() {
        pds_ipld::parse_cid(prev)
            .map_err(|_| PlcError::InvalidOperation(format!("prev is not a CID: {prev:?}")))?;
    }
    let data = match &op.op {
        UnsignedOp::Operation { data, .. } => data,
        UnsignedOp::Tombstone { .. } => return Ok(()),
        UnsignedOp::LegacyCreate { .. } => {
            return invalid("legacy create operations are no longer accepted".into());
        }
    };

    if data.rotation_keys.is_empty() {
        return invalid("at least one rotation key is required".into());
    }
    if data.rotation_keys.len() > MAX_ROTATION_KEYS {
        return invalid(format!(
            "too many rotation keys (at most {MAX_ROTATION_KEYS})"
        ));
    }
    let mut seen = HashSet::new();
    for key in &data.rotation_keys {
        check_did_key(key, "rotation key")?;
        if !seen.insert(key) {
            return invalid(format!("duplicate rotation key {key}"));
        }
    }

    if data.verification_methods.len() > MAX_VERIFICATION_METHODS {
        return invalid(format!(
            "too many verification methods (at most {MAX_VERIFICATION_METHODS})"
        ));
    }
    for (id, key) in &data.verification_methods {
        check_id(id, "verification method")?;
        check_did_key(key, "verification method key")?;
    }

    if data.also_known_as.len() > MAX_ALSO_KNOWN_AS {
        return invalid(format!(
            "too many alsoKnownAs entries (at most {MAX_ALSO_KNOWN_AS})"
        ));
    }
    let mut seen = HashSet::new();
    for aka in &data.also_known_as {
        if aka.len() > MAX_ALSO_KNOWN_AS_LEN {
            return invalid(format!(
                "alsoKnownAs entry longer than {MAX_ALSO_KNOWN_AS_LEN} characters"
            ));
        }
        if !seen.insert(aka) {
            return invalid(format!("duplicate alsoKnownAs entry {aka}"));
        }
        match aka.strip_prefix("at://") {
            Some(handle) => {
                if pds_syntax::Handle::new(handle).is_err() {
                    return invalid(format!("alsoKnownAs {aka:?} is not at://<valid handle>"));
                }
            }
            None => {
                if !pds_syntax::is_valid_uri(aka) {
                    return invalid(format!("alsoKnownAs {aka:?} is not a URI"));
                }
            }
        }
    }

    if data.services.len() > MAX_SERVICES {
        return invalid(format!("too many services (at most {MAX_SERVICES})"));
    }
    for (id, service) in &data.services {
        check_id(id, "service")?;
        if service.kind.is_empty() || service.kind.len() > MAX_SERVICE_TYPE_LEN {
            return invalid(format!(
                "service {id}: type must be 1 to {MAX_SERVICE_TYPE_LEN} characters"
            ));
        }
        if service.endpoint.len() > MAX_SERVICE_ENDPOINT_LEN {
            return invalid(format!(
                "service {id}: endpoint longer than {MAX_SERVICE_ENDPOINT_LEN} characters"
            ));
        }
        if !is_http_url(&service.endpoint) {
            return invalid(format!(
                "service {id}: endpoint {:?} is not an http(s) URL",
                service.endpoint
            ));
        }
    }
    Ok(())
}

fn check_did_key(key: &str, what: &str) -> Result<(), PlcError> {
    PublicKey::from_did_key(key)
        .map(|_| ())
        .map_err(|e| PlcError::InvalidOperation(format!("invalid {what} {key:?}: {e}")))
}

fn check_id(id: &str, what: &str) -> Result<(), PlcError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(PlcError::InvalidOperation(format!(
            "{what} name {id:?} must be 1 to {MAX_ID_LEN} of A-Z a-z 0-9 _ - ."
        )))
    }
}

/// `http://` or `https://`, a non-empty authority, and nothing a URL cannot
/// hold (whitespace, control characters).
fn is_http_url(s: &str) -> bool {
    let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    !host.is_empty()
        && !host.starts_with(':')
        && pds_syntax::is_valid_uri(s)
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use pds_crypto::{Algorithm, Keypair};

    use super::*;
    use crate::op::{PlcData, Service};

    fn key() -> Keypair {
        Keypair::generate(Algorithm::K256)
    }

    fn base(rotation: &Keypair) -> PlcData {
        PlcData::atproto(
            "alice.example.com",
            "https://pds.example.com",
            &key().did_key(),
            vec![rotation.did_key()],
        )
    }

    fn check(data: PlcData, rotation: &Keypair) -> Result<(), PlcError> {
        check_submission(&UnsignedOp::genesis(data).sign(rotation))
    }

    fn rejected(data: PlcData, rotation: &Keypair) {
        let result = check(data.clone(), rotation);
        assert!(
            matches!(result, Err(PlcError::InvalidOperation(_))),
            "{data:?} gave {result:?}"
        );
    }

    #[test]
    fn a_normal_operation_passes() {
        let k = key();
        check(base(&k), &k).unwrap();
        let mut d = base(&k);
        d.rotation_keys
            .push(Keypair::generate(Algorithm::P256).did_key());
        d.services.get_mut("atproto_pds").unwrap().endpoint = "http://127.0.0.1:2583".into();
        d.also_known_as.push("https://alice.example.com".into());
        check(d, &k).unwrap();
        let tomb = UnsignedOp::Tombstone {
            prev: "bafyreigp6shzy6dlcxuowwoxz7u5nemdrkad2my5zwzpwilcnhih7bw6zm".into(),
        }
        .sign(&k);
        check_submission(&tomb).unwrap();
    }

    #[test]
    fn key_limits() {
        let k = key();
        let mut d = base(&k);
        d.rotation_keys = vec![];
        rejected(d, &k);
        let mut d = base(&k);
        d.rotation_keys = (0..MAX_ROTATION_KEYS).map(|_| key().did_key()).collect();
        check(d.clone(), &k).unwrap();
        d.rotation_keys.push(key().did_key());
        rejected(d, &k);
        let mut d = base(&k);
        d.rotation_keys.push(k.did_key());
        rejected(d, &k);
        let mut d = base(&k);
        d.rotation_keys.push("did:key:zQ3shNotAKey".into());
        rejected(d, &k);
        let mut d = base(&k);
        d.rotation_keys.push("did:web:example.com".into());
        rejected(d, &k);
        let mut d = base(&k);
        d.verification_methods.insert(
            "atproto".into(),
            "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK".into(),
        );
        rejected(d, &k); // ed25519: not an atproto key type
        let mut d = base(&k);
        d.verification_methods = (0..=MAX_VERIFICATION_METHODS)
            .map(|i| (format!("k{i}"), key().did_key()))
            .collect();
        rejected(d, &k);
    }

    #[test]
    fn names_and_aliases() {
        let k = key();
        for aka in [
            "at://not a handle",
            "at://foo",
            "at://-bad-.example.com",
            "alice.example.com",
            "",
        ] {
            let mut d = base(&k);
            d.also_known_as = vec![aka.into()];
            rejected(d, &k);
        }
        let mut d = base(&k);
        d.also_known_as = vec!["at://a.test".into(), "at://a.test".into()];
        rejected(d, &k);
        let mut d = base(&k);
        d.also_known_as = (0..=MAX_ALSO_KNOWN_AS)
            .map(|i| format!("at://h{i}.test"))
            .collect();
        rejected(d, &k);
        let mut d = base(&k);
        d.also_known_as = vec![format!("at://{}.test", "a".repeat(MAX_ALSO_KNOWN_AS_LEN))];
        rejected(d, &k);
        for id in ["", "#atproto", "has space", &"x".repeat(MAX_ID_LEN + 1)] {
            let mut d = base(&k);
            let key = d.verification_methods.remove("atproto").unwrap();
            d.verification_methods.insert(id.into(), key);
            rejected(d, &k);
        }
    }

    #[test]
    fn services() {
        let k = key();
        for endpoint in [
            "pds.example.com",
            "ftp://pds.example.com",
            "https://",
            "https:///path",
            "https://pds.example.com/a b",
            "https://pds.example.com\n",
            "javascript:alert(1)",
        ] {
            let mut d = base(&k);
            d.services.get_mut("atproto_pds").unwrap().endpoint = endpoint.into();
            rejected(d, &k);
        }
        let mut d = base(&k);
        d.services.get_mut("atproto_pds").unwrap().endpoint = format!(
            "https://{}.example.com",
            "a".repeat(MAX_SERVICE_ENDPOINT_LEN)
        );
        rejected(d, &k);
        let mut d = base(&k);
        d.services.get_mut("atproto_pds").unwrap().kind = String::new();
        rejected(d, &k);
        let mut d = base(&k);
        d.services = (0..=MAX_SERVICES)
            .map(|i| {
                (
                    format!("s{i}"),
                    Service {
                        kind: "X".into(),
                        endpoint: "https://x.test".into(),
                    },
                )
            })
            .collect::<BTreeMap<_, _>>();
        rejected(d, &k);
    }

    #[test]
    fn size_limit() {
        let k = key();
        let mut d = base(&k);
        // Ten long aliases and ten long services pass the count and length
        // limits but not the byte limit.
        d.also_known_as = (0..MAX_ALSO_KNOWN_AS)
            .map(|i| format!("https://{i}{}.test", "a".repeat(240)))
            .collect();
        d.services = (0..MAX_SERVICES)
            .map(|i| {
                let endpoint = format!("https://{i}{}.test", "b".repeat(240));
                let kind = "AtprotoPersonalDataServer".to_owned();
                (format!("s{i}"), Service { kind, endpoint })
            })
            .collect();
        let op = UnsignedOp::genesis(d.clone()).sign(&k);
        assert!(op.to_cbor().len() > MAX_OP_BYTES);
        rejected(d, &k);
    }

    #[test]
    fn legacy_create_and_bad_prev_are_refused() {
        let k = key();
        let legacy = UnsignedOp::LegacyCreate {
            signing_key: k.did_key(),
            recovery_key: k.did_key(),
            handle: "alice.test".into(),
            service: "https://pds.test".into(),
        }
        .sign(&k);
        assert!(check_submission(&legacy).is_err());
        let tomb = UnsignedOp::Tombstone {
            prev: "not-a-cid".into(),
        }
        .sign(&k);
        assert!(check_submission(&tomb).is_err());
        let mut op = UnsignedOp::genesis(base(&k)).sign(&k);
        op.sig.push('=');
        assert!(check_submission(&op).is_err());
    }
}
