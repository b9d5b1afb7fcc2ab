//! The rules that decide whether an operation may join a DID's log, and the
//! verification of a whole audit log against them.
//!
//! A DID's log is a chain: the genesis operation derives the DID, and each
//! later operation names an earlier active one as `prev` and is signed by one
//! of the rotation keys of that earlier operation. Naming an operation that
//! already has a successor forks the chain: the successors are *nullified*
//! (kept in the audit log, marked `nullified`, no longer part of the
//! state). A fork is a recovery and is allowed only if
//!
//! - it is signed by a rotation key of higher priority (lower index in the
//!   forked-from operation's `rotationKeys`) than the key that signed the
//!   first operation it nullifies, and
//! - it arrives at most 72 hours after that first nullified operation.
//!
//! A tombstone ends the DID: nothing may follow it, except a recovery that
//! nullifies it within the window. Time comes in as an argument, so the
//! rules are tested without waiting three days.

use pds_ipld::Cid;
use serde::{Deserialize, Serialize};

use crate::PlcError;
use crate::op::{PlcData, SignedOp};
use crate::time::Timestamp;

/// How long after an operation a higher-priority rotation key may still
/// nullify it: 72 hours, in milliseconds. Exactly 72 hours is still in time.
pub const RECOVERY_WINDOW_MS: i64 = 72 * 60 * 60 * 1000;

/// One entry of an audit log (`GET /:did/log/audit`), in the directory's
/// JSON shape and field order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogEntry {
    /// The DID the operation belongs to.
    pub did: String,
    /// The operation as submitted.
    pub operation: SignedOp,
    /// Its CID string.
    pub cid: String,
    /// Whether a later recovery removed it from the DID's history.
    pub nullified: bool,
    /// When the directory accepted it.
    #[serde(rename = "createdAt")]
    pub created_at: Timestamp,
}

/// What accepting an operation does to the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The new operation's CID.
    pub cid: Cid,
    /// CID strings of the active operations it nullifies, oldest first
    /// (empty unless it is a recovery).
    pub nullified: Vec<String>,
}

/// Decides whether `proposed` may be appended to `log` (the DID's full
/// audit log, nullified entries included, in order) at time `now`.
///
/// `now` must be later than the newest active entry; the directory makes
/// sure of that when it stamps operations.
pub fn validate_next_op(
    did: &str,
    log: &[LogEntry],
    proposed: &SignedOp,
    now: Timestamp,
) -> Result<Accepted, PlcError> {
    let cid = proposed.cid();
    let active: Vec<&LogEntry> = log.iter().filter(|e| !e.nullified).collect();

    let Some(newest) = active.last() else {
        if !log.is_empty() {
            return Err(PlcError::InvalidLog(format!(
                "{did} has operations but none is active"
            )));
        }
        if !proposed.is_genesis() {
            return Err(PlcError::Misordered(format!(
                "{did} is not registered; only a genesis operation (prev: null) can create it"
            )));
        }
        let computed = proposed.did()?;
        if computed != did {
            return Err(PlcError::GenesisHash {
                did: did.to_owned(),
                computed,
            });
        }
        proposed.signer_index(&proposed.rotation_keys())?;
        return Ok(Accepted {
            cid,
            nullified: Vec::new(),
        });
    };

    let Some(prev) = proposed.prev() else {
        return Err(PlcError::Misordered(format!(
            "{did} already exists; an update must name its prev"
        )));
    };
    let prev_cid = pds_ipld::parse_cid(prev)
        .map_err(|_| PlcError::InvalidOperation(format!("prev is not a CID: {prev:?}")))?;
    if log.iter().any(|e| same_cid(&e.cid, &cid)) {
        return Err(PlcError::Misordered(format!(
            "operation {cid} is already in the log of {did}"
        )));
    }
    let Some(index) = active.iter().position(|e| same_cid(&e.cid, &prev_cid)) else {
        let reason = if log.iter().any(|e| same_cid(&e.cid, &prev_cid)) {
            "is nullified"
        } else {
            "is not an operation of this DID"
        };
        return Err(PlcError::Misordered(format!("prev {prev} {reason}")));
    };
    let base = active[index];
    if base.operation.is_tombstone() {
        return Err(PlcError::Misordered(format!(
            "{did} is tombstoned; nothing may follow a tombstone"
        )));
    }
    if now <= newest.created_at {
        return Err(PlcError::Misordered(format!(
            "operation time {now} is not after the newest operation's ({})",
            newest.created_at
        )));
    }

    let keys = base.operation.rotation_keys();
    let to_nullify = &active[index + 1..];
    let Some(disputed) = to_nullify.first() else {
        proposed.signer_index(&keys)?;
        return Ok(Accepted {
            cid,
            nullified: Vec::new(),
        });
    };

    // A fork: only a key stronger than the disputed operation's signer may
    // make it, and only within the recovery window.
    let disputed_signer = disputed.operation.signer_index(&keys).map_err(|e| {
        PlcError::InvalidLog(format!(
            "stored operation {} does not verify: {e}",
            disputed.cid
        ))
    })?;
    proposed
        .signer_index(&keys[..disputed_signer])
        .map_err(|_| {
            PlcError::InvalidSignature(format!(
                "forking from {prev} nullifies {}, so it must be signed by a rotation key \
                 listed before the one that signed that operation",
                disputed.cid
            ))
        })?;
    let elapsed_ms = now.as_millis() - disputed.created_at.as_millis();
    if elapsed_ms > RECOVERY_WINDOW_MS {
        return Err(PlcError::LateRecovery { elapsed_ms });
    }
    Ok(Accepted {
        cid,
        nullified: to_nullify.iter().map(|e| e.cid.clone()).collect(),
    })
}

/// The newest active entry: the one whose state the DID has now (`None`
/// for an empty log).
pub fn current(log: &[LogEntry]) -> Option<&LogEntry> {
    log.iter().rev().find(|e| !e.nullified)
}

/// The state of `did` as a directory's audit log shows it, after [`verify_audit_log`]: its data
/// and the CID of the operation that set it (what the next operation names as `prev`); `None`
/// if the DID is tombstoned. A log of another DID is refused.
pub fn verified_state(did: &str, entries: &[LogEntry]) -> Result<Option<(PlcData, Cid)>, PlcError> {
    if entries.iter().any(|entry| entry.did != did) {
        return Err(PlcError::InvalidLog(format!(
            "the audit log of {did} holds another DID's operations"
        )));
    }
    let Some(data) = verify_audit_log(entries)? else {
        return Ok(None);
    };
    let current = current(entries).ok_or_else(|| {
        PlcError::InvalidLog(format!("the audit log of {did} has no active operation"))
    })?;
    Ok(Some((data, current.operation.cid())))
}

/// Verifies an audit log from a directory as a resolver should before
/// trusting it: every entry belongs to the same DID and hashes to its CID,
/// the genesis derives the DID, each operation is accepted by
/// [`validate_next_op`] at its `createdAt` given the entries before it, and
/// the `nullified` flags are exactly the ones those recoveries imply.
///
/// Returns the DID's current state, or `None` if it is tombstoned. These are
/// the public directory's rules only; [`crate::validate::check_submission`]'s
/// stricter syntax checks are not applied to logs.
pub fn verify_audit_log(entries: &[LogEntry]) -> Result<Option<PlcData>, PlcError> {
    let first = entries
        .first()
        .ok_or_else(|| PlcError::InvalidLog("the log is empty".into()))?;
    let did = first.did.as_str();
    let mut replay: Vec<LogEntry> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        if entry.did != did {
            return Err(PlcError::InvalidLog(format!(
                "entry {i} is for {}, not {did}",
                entry.did
            )));
        }
        let fail = |e: PlcError| PlcError::InvalidLog(format!("entry {i} ({}): {e}", entry.cid));
        let accepted =
            validate_next_op(did, &replay, &entry.operation, entry.created_at).map_err(fail)?;
        if !same_cid(&entry.cid, &accepted.cid) {
            return Err(fail(PlcError::InvalidOperation(format!(
                "the operation hashes to {}",
                accepted.cid
            ))));
        }
        for e in replay.iter_mut() {
            if accepted.nullified.contains(&e.cid) {
                e.nullified = true;
            }
        }
        replay.push(LogEntry {
            nullified: false,
            ..entry.clone()
        });
    }
    for (i, (claimed, computed)) in entries.iter().zip(&replay).enumerate() {
        if claimed.nullified != computed.nullified {
            return Err(PlcError::InvalidLog(format!(
                "entry {i} ({}) is marked nullified={} but the log implies {}",
                claimed.cid, claimed.nullified, computed.nullified
            )));
        }
    }
    Ok(current(&replay).and_then(|e| e.operation.data()))
}

/// Whether a CID string names `cid` (in any multibase encoding).
fn same_cid(s: &str, cid: &Cid) -> bool {
    pds_ipld::parse_cid(s).is_ok_and(|c| &c == cid)
}

#[cfg(test)]
mod tests {
    use pds_crypto::{Algorithm, Keypair};

    use super::*;
    use crate::op::UnsignedOp;

    const HOUR: i64 = 60 * 60 * 1000;

    fn parse_log(json: &str) -> Vec<LogEntry> {
        serde_json::from_str(json).unwrap()
    }

    macro_rules! vector {
        ($kind:literal, $name:literal) => {
            (
                $name,
                include_str!(concat!("../testdata/", $kind, "/", $name, ".json")),
            )
        };
    }

    #[test]
    fn valid_interop_logs_verify() {
        for (name, json) in [
            vector!("valid", "log_bskyapp"),
            vector!("valid", "log_legacy_dholms"),
            vector!("valid", "log_nullification"),
            vector!("valid", "log_nullification_at_exactly_72h"),
            vector!("valid", "log_tombstone"),
        ] {
            let log = parse_log(json);
            let state = verify_audit_log(&log).unwrap_or_else(|e| panic!("{name}: {e}"));
            let last = current(&log).unwrap();
            assert_eq!(state, last.operation.data(), "{name}");
            // Entries serialize back to the same JSON values.
            let again: serde_json::Value = serde_json::to_value(&log).unwrap();
            let original: serde_json::Value = serde_json::from_str(json).unwrap();
            assert_eq!(again, original, "{name}");
        }
    }

    #[test]
    fn known_states() {
        let bsky = verify_audit_log(&parse_log(vector!("valid", "log_bskyapp").1))
            .unwrap()
            .unwrap();
        assert_eq!(bsky.handle(), Some("bsky.app"));
        assert_eq!(bsky.pds_endpoint(), Some("https://bsky.social"));
        let dholms = verify_audit_log(&parse_log(vector!("valid", "log_legacy_dholms").1))
            .unwrap()
            .unwrap();
        assert_eq!(dholms.handle(), Some("dholms.xyz"));
        let tomb = verify_audit_log(&parse_log(vector!("valid", "log_tombstone").1)).unwrap();
        assert_eq!(tomb, None);
    }

    #[test]
    fn invalid_interop_logs_are_rejected_for_the_right_reason() {
        for ((name, json), reason) in [
            (
                vector!("invalid", "log_invalid_nullification_reused_key"),
                "must be signed by a rotation key listed before",
            ),
            (
                vector!("invalid", "log_invalid_nullification_too_slow"),
                "recovery window has passed",
            ),
            (
                vector!("invalid", "log_invalid_sig_k256_high_s"),
                "not signed by any allowed rotation key",
            ),
            (
                vector!("invalid", "log_invalid_sig_b64_padding_bits"),
                "not base64url",
            ),
            (
                vector!("invalid", "log_invalid_update_nullified"),
                "is nullified",
            ),
        ] {
            let err = verify_audit_log(&parse_log(json)).expect_err(name);
            assert!(err.to_string().contains(reason), "{name}: {err}");
        }
    }

    #[test]
    fn tampered_logs_are_rejected() {
        let log = parse_log(vector!("valid", "log_nullification").1);
        let mut flags = log.clone();
        flags[1].nullified = false;
        assert!(verify_audit_log(&flags).is_err());
        let mut cid = log.clone();
        cid[2].cid = cid[0].cid.clone();
        assert!(verify_audit_log(&cid).is_err());
        let mut did = log.clone();
        did[1].did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".into();
        assert!(verify_audit_log(&did).is_err());
        let mut order = log.clone();
        order.swap(1, 2);
        assert!(verify_audit_log(&order).is_err());
        let mut genesis = log.clone();
        for e in &mut genesis {
            e.did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".into();
        }
        assert!(verify_audit_log(&genesis).is_err());
        assert!(verify_audit_log(&[]).is_err());
    }

    /// A DID with rotation keys `[recovery, pds]` and a helper to build its
    /// log the way the directory would.
    struct Fixture {
        recovery: Keypair,
        pds: Keypair,
        did: String,
        log: Vec<LogEntry>,
    }

    impl Fixture {
        fn new() -> Fixture {
            let recovery = Keypair::generate(Algorithm::K256);
            let pds = Keypair::generate(Algorithm::P256);
            let genesis = UnsignedOp::genesis(Self::data(&recovery, &pds, "alice.test")).sign(&pds);
            let did = genesis.did().unwrap();
            let mut f = Fixture {
                recovery,
                pds,
                did,
                log: Vec::new(),
            };
            f.apply(genesis, Timestamp::from_millis(0)).unwrap();
            f
        }

        fn data(recovery: &Keypair, pds: &Keypair, handle: &str) -> PlcData {
            PlcData::atproto(
                handle,
                "https://pds.test",
                &pds.did_key(),
                vec![recovery.did_key(), pds.did_key()],
            )
        }

        fn update(&self, prev: usize, handle: &str, key: &Keypair) -> SignedOp {
            let prev = pds_ipld::parse_cid(&self.log[prev].cid).unwrap();
            UnsignedOp::update(Self::data(&self.recovery, &self.pds, handle), &prev).sign(key)
        }

        fn apply(&mut self, op: SignedOp, now: Timestamp) -> Result<Accepted, PlcError> {
            let accepted = validate_next_op(&self.did, &self.log, &op, now)?;
            for e in &mut self.log {
                if accepted.nullified.contains(&e.cid) {
                    e.nullified = true;
                }
            }
            self.log.push(LogEntry {
                did: self.did.clone(),
                operation: op,
                cid: accepted.cid.to_string(),
                nullified: false,
                created_at: now,
            });
            Ok(accepted)
        }
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn updates_chain_and_verify() {
        let mut f = Fixture::new();
        let op = f.update(0, "bob.test", &f.pds);
        f.apply(op, at(1)).unwrap();
        // The recovery key may make a plain update too.
        let op = f.update(1, "carol.test", &f.recovery);
        assert_eq!(f.apply(op, at(2)).unwrap().nullified, Vec::<String>::new());
        let state = verify_audit_log(&f.log).unwrap().unwrap();
        assert_eq!(state.handle(), Some("carol.test"));
    }

    #[test]
    fn rejections() {
        let mut f = Fixture::new();
        let stranger = Keypair::generate(Algorithm::K256);
        // Key not in the rotation set.
        let op = f.update(0, "bob.test", &stranger);
        assert!(matches!(
            f.apply(op, at(1)),
            Err(PlcError::InvalidSignature(_))
        ));
        // The atproto signing key is not a rotation key unless listed.
        let signing = Keypair::generate(Algorithm::K256);
        let data = PlcData::atproto(
            "x.test",
            "https://p.test",
            &signing.did_key(),
            vec![f.pds.did_key()],
        );
        let genesis = UnsignedOp::genesis(data).sign(&signing);
        let err = validate_next_op(&genesis.did().unwrap(), &[], &genesis, at(0));
        assert!(matches!(err, Err(PlcError::InvalidSignature(_))));
        // Unknown prev.
        let op = UnsignedOp::Operation {
            data: Fixture::data(&f.recovery, &f.pds, "bob.test"),
            prev: Some("bafyreigp6shzy6dlcxuowwoxz7u5nemdrkad2my5zwzpwilcnhih7bw6zm".into()),
        }
        .sign(&f.pds);
        assert!(matches!(f.apply(op, at(1)), Err(PlcError::Misordered(_))));
        // prev that is not a CID.
        let op = UnsignedOp::Operation {
            data: Fixture::data(&f.recovery, &f.pds, "bob.test"),
            prev: Some("nope".into()),
        }
        .sign(&f.pds);
        assert!(matches!(
            f.apply(op, at(1)),
            Err(PlcError::InvalidOperation(_))
        ));
        // A second genesis for an existing DID.
        let op = UnsignedOp::genesis(Fixture::data(&f.recovery, &f.pds, "bob.test")).sign(&f.pds);
        assert!(matches!(f.apply(op, at(1)), Err(PlcError::Misordered(_))));
        // A genesis submitted under the wrong DID.
        let op = UnsignedOp::genesis(Fixture::data(&f.recovery, &f.pds, "bob.test")).sign(&f.pds);
        let err = validate_next_op("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", &[], &op, at(0));
        assert!(matches!(err, Err(PlcError::GenesisHash { .. })));
        // An update for a DID with no log.
        let op = f.update(0, "bob.test", &f.pds);
        let err = validate_next_op("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", &[], &op, at(0));
        assert!(matches!(err, Err(PlcError::Misordered(_))));
        // Bad signature bytes.
        let mut op = f.update(0, "bob.test", &f.pds);
        op.sig = op.sig.chars().rev().collect();
        assert!(f.apply(op, at(1)).is_err());
        // Time must move forward.
        let op = f.update(0, "bob.test", &f.pds);
        assert!(matches!(f.apply(op, at(0)), Err(PlcError::Misordered(_))));
        // The same operation twice.
        let op = f.update(0, "bob.test", &f.pds);
        f.apply(op.clone(), at(1)).unwrap();
        assert!(matches!(f.apply(op, at(2)), Err(PlcError::Misordered(_))));
    }

    #[test]
    fn tombstone_ends_the_did() {
        let mut f = Fixture::new();
        let prev = pds_ipld::parse_cid(&f.log[0].cid).unwrap();
        let tomb = UnsignedOp::tombstone(&prev).sign(&f.pds);
        f.apply(tomb, at(10)).unwrap();
        assert_eq!(verify_audit_log(&f.log).unwrap(), None);
        // Nothing may follow the tombstone, not even from the recovery key.
        let tomb_cid = pds_ipld::parse_cid(&f.log[1].cid).unwrap();
        let after = UnsignedOp::update(Fixture::data(&f.recovery, &f.pds, "z.test"), &tomb_cid)
            .sign(&f.recovery);
        assert!(matches!(
            f.apply(after, at(11)),
            Err(PlcError::Misordered(_))
        ));
        let again = UnsignedOp::tombstone(&tomb_cid).sign(&f.recovery);
        assert!(matches!(
            f.apply(again, at(11)),
            Err(PlcError::Misordered(_))
        ));
        // But a recovery may nullify a tombstone signed by a weaker key in time.
        let op = f.update(0, "back.test", &f.recovery);
        let accepted = f.apply(op, at(10 + HOUR)).unwrap();
        assert_eq!(accepted.nullified, vec![f.log[1].cid.clone()]);
        let state = verify_audit_log(&f.log).unwrap().unwrap();
        assert_eq!(state.handle(), Some("back.test"));
    }

    #[test]
    fn recovery_inside_the_window_nullifies_the_fork() {
        let mut f = Fixture::new();
        // The PDS key (priority 1) makes two updates...
        let op = f.update(0, "hijacked.test", &f.pds);
        f.apply(op, at(HOUR)).unwrap();
        let op = f.update(1, "hijacked2.test", &f.pds);
        f.apply(op, at(2 * HOUR)).unwrap();
        // ...which the recovery key (priority 0) undoes from the genesis,
        // exactly 72 hours after the first of them.
        let op = f.update(0, "alice.test", &f.recovery);
        let accepted = f.apply(op, at(HOUR + RECOVERY_WINDOW_MS)).unwrap();
        assert_eq!(
            accepted.nullified,
            vec![f.log[1].cid.clone(), f.log[2].cid.clone()]
        );
        assert!(f.log[1].nullified && f.log[2].nullified && !f.log[3].nullified);
        let state = verify_audit_log(&f.log).unwrap().unwrap();
        assert_eq!(state.handle(), Some("alice.test"));
        // A nullified operation can no longer be built on.
        let op = f.update(2, "again.test", &f.pds);
        assert!(matches!(
            f.apply(op, at(100 * HOUR)),
            Err(PlcError::Misordered(_))
        ));
    }

    #[test]
    fn recovery_after_the_window_is_refused() {
        let mut f = Fixture::new();
        let op = f.update(0, "hijacked.test", &f.pds);
        f.apply(op, at(HOUR)).unwrap();
        let op = f.update(0, "alice.test", &f.recovery);
        let err = f.apply(op, at(HOUR + RECOVERY_WINDOW_MS + 1)).unwrap_err();
        assert_eq!(
            err,
            PlcError::LateRecovery {
                elapsed_ms: RECOVERY_WINDOW_MS + 1
            }
        );
        assert_eq!(f.log.len(), 2);
    }

    #[test]
    fn recovery_needs_a_stronger_key() {
        let mut f = Fixture::new();
        // Signed by the recovery key (priority 0): nobody can fork past it.
        let op = f.update(0, "bob.test", &f.recovery);
        f.apply(op, at(HOUR)).unwrap();
        for key in [f.recovery.clone(), f.pds.clone()] {
            let op = f.update(0, "alice.test", &key);
            assert!(matches!(
                f.apply(op, at(2 * HOUR)),
                Err(PlcError::InvalidSignature(_))
            ));
        }
        // The same key as the disputed operation's signer is not enough
        // either, even when that key is the weaker one.
        let mut f = Fixture::new();
        let op = f.update(0, "bob.test", &f.pds);
        f.apply(op, at(HOUR)).unwrap();
        let op = f.update(0, "alice.test", &f.pds);
        assert!(matches!(
            f.apply(op, at(2 * HOUR)),
            Err(PlcError::InvalidSignature(_))
        ));
        // A stranger certainly not.
        let stranger = Keypair::generate(Algorithm::K256);
        let op = f.update(0, "alice.test", &stranger);
        assert!(f.apply(op, at(2 * HOUR)).is_err());
    }

    #[test]
    fn recovery_can_rotate_away_the_weak_key() {
        let mut f = Fixture::new();
        let op = f.update(0, "evil.test", &f.pds);
        f.apply(op, at(HOUR)).unwrap();
        // The recovery op drops the PDS key from the rotation set.
        let prev = pds_ipld::parse_cid(&f.log[0].cid).unwrap();
        let data = PlcData::atproto(
            "alice.test",
            "https://pds.test",
            &f.pds.did_key(),
            vec![f.recovery.did_key()],
        );
        let op = UnsignedOp::update(data, &prev).sign(&f.recovery);
        f.apply(op, at(2 * HOUR)).unwrap();
        // The PDS key can no longer update.
        let prev = pds_ipld::parse_cid(&f.log[2].cid).unwrap();
        let data = Fixture::data(&f.recovery, &f.pds, "evil.test");
        let op = UnsignedOp::update(data, &prev).sign(&f.pds);
        assert!(matches!(
            f.apply(op, at(3 * HOUR)),
            Err(PlcError::InvalidSignature(_))
        ));
        verify_audit_log(&f.log).unwrap();
    }
}
