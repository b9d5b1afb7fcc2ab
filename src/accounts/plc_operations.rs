//! The old server's side of moving an account away: the account asks for an e-mailed code
//! ([`request_signature`]), trades it for a did:plc operation signed with this server's rotation
//! key ([`sign`]), and hands that to its new server, which checks that it points there and
//! submits it ([`submit`]).
//!
//! Shaped as the reference PDS, with two differences that only make refusals earlier and
//! clearer:
//!
//! - [`sign`] builds on the DID's state as its full audit log shows it, verified
//!   ([`pds_plc::verify_audit_log`]), not on whatever the directory calls the last operation, so
//!   a directory that lies cannot get other data signed; and it refuses to sign what the
//!   directory would refuse anyway (malformed fields, a DID this server's key no longer
//!   controls). Those refusals come before the code is used up, so a typo does not cost the
//!   account a new e-mail. The code is used up in the same step that hands out the operation:
//!   the same code never signs twice.
//! - [`submit`] activates an account moving in whose copy is complete, in the same request: see
//!   there.
//! - Changes of one DID are serialized with handle changes ([`identity_service::lock_did`]), so
//!   an operation is never built on a `prev` another request is replacing.

use std::collections::BTreeMap;

use pds_plc::op::{ATPROTO_PDS_SERVICE, ATPROTO_PDS_TYPE, ATPROTO_VERIFICATION_METHOD};
use pds_plc::{PlcClient, PlcData, Service, SignedOp, UnsignedOp, is_plc_did};

use super::email_tokens::{self, Purpose};
use super::{AccountError, migration, status};
use crate::identity_service;
use crate::mailer::messages;
use crate::state::AppContext;

/// Why a PLC operation was not requested, signed or submitted; mapped to XRPC errors in
/// `api::error`.
#[derive(Debug, thiserror::Error)]
pub enum PlcOperationError {
    /// signPlcOperation without a code.
    #[error("email confirmation token required to sign PLC operations")]
    TokenRequired,
    /// A wrong or expired code, no address to send one to, the mailer failing.
    #[error(transparent)]
    Token(#[from] email_tokens::Error),
    #[error(transparent)]
    Account(#[from] AccountError),
    /// A did:web account: its document is its owner's to change, there is nothing to sign.
    #[error(
        "{0} is not a did:plc: its DID document is changed by whoever serves it, not by signed operations"
    )]
    NotPlc(String),
    #[error("Did is tombstoned")]
    Tombstoned,
    /// This server's rotation key can no longer sign for the DID.
    #[error("this server's rotation key is no longer one of {0}'s rotation keys")]
    NotControlled(String),
    /// The operation asked for, or given, is malformed or does not point at this server.
    #[error("{0}")]
    Invalid(String),
    /// The directory refused the operation (its reason).
    #[error("the DID directory refused the operation: {0}")]
    Rejected(String),
    /// The directory could not be asked, or answered something unusable (safe to show).
    #[error("the DID directory: {0}")]
    Directory(String),
}

impl From<pds_plc::PlcError> for PlcOperationError {
    fn from(e: pds_plc::PlcError) -> Self {
        if e.is_rejection() {
            PlcOperationError::Rejected(e.to_string())
        } else {
            PlcOperationError::Directory(identity_service::plc_failure_message(&e))
        }
    }
}

pub type Result<T, E = PlcOperationError> = std::result::Result<T, E>;

/// The fields signPlcOperation replaces; `None` keeps the DID's current value.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub rotation_keys: Option<Vec<String>>,
    pub also_known_as: Option<Vec<String>>,
    pub verification_methods: Option<BTreeMap<String, String>>,
    pub services: Option<BTreeMap<String, Service>>,
}

impl Changes {
    fn apply(self, mut data: PlcData) -> PlcData {
        if let Some(keys) = self.rotation_keys {
            data.rotation_keys = keys;
        }
        if let Some(aka) = self.also_known_as {
            data.also_known_as = aka;
        }
        if let Some(methods) = self.verification_methods {
            data.verification_methods = methods;
        }
        if let Some(services) = self.services {
            data.services = services;
        }
        data
    }
}

/// requestPlcOperationSignature: e-mails `did` a code for [`sign`], replacing any earlier one.
/// As the reference, deactivated and taken-down accounts may ask too (moving away is how an
/// account leaves a server it is no longer welcome on).
pub async fn request_signature(ctx: &AppContext, did: &str) -> Result<()> {
    ctx.mailer
        .ensure_available()
        .map_err(email_tokens::Error::from)?;
    let now = email_tokens::now_ms();
    let did = did.to_owned();
    let (email, token) = ctx
        .db
        .write(move |w| -> Result<_, email_tokens::Error> {
            let conn = w.tx.connection();
            let account = super::by_did(conn, &did)?.ok_or(AccountError::NotFound)?;
            let email = account.email.ok_or(email_tokens::Error::NoEmail)?;
            let token = email_tokens::create(conn, &did, Purpose::PlcOperation, now)?;
            Ok((email, token))
        })
        .await?;
    let mail = messages::plc_operation(&email, &token, ctx.mailer.hostname());
    ctx.mailer
        .send(&mail)
        .await
        .map_err(email_tokens::Error::from)?;
    Ok(())
}

/// signPlcOperation: checks `token` (the code [`request_signature`] sent), builds the DID's
/// next operation from its current state with `changes` applied, signs it with this server's
/// rotation key and uses the code up. The operation is returned, not submitted.
pub async fn sign(
    ctx: &AppContext,
    did: &str,
    token: Option<&str>,
    changes: Changes,
) -> Result<SignedOp> {
    let token = token
        .filter(|t| !t.trim().is_empty())
        .ok_or(PlcOperationError::TokenRequired)?
        .to_owned();
    let _serialized = identity_service::lock_did(did).await;
    let now = email_tokens::now_ms();
    {
        let (did, token) = (did.to_owned(), token.clone());
        ctx.db
            .read(move |store| {
                email_tokens::check(store.connection(), &did, Purpose::PlcOperation, &token, now)
            })
            .await?;
    }
    if !is_plc_did(did) {
        return Err(PlcOperationError::NotPlc(did.to_owned()));
    }
    let (current, prev) = current_state(ctx, did).await?;
    let key = &ctx.secrets.plc_rotation_key;
    if !current.rotation_keys.contains(&key.did_key()) {
        return Err(PlcOperationError::NotControlled(did.to_owned()));
    }
    let op = UnsignedOp::update(changes.apply(current), &prev).sign(key);
    pds_plc::validate::check_submission(&op)
        .map_err(|e| PlcOperationError::Invalid(e.to_string()))?;
    // Checked again where it is used up: a concurrent request (another process) may have
    // spent it, or it may have expired while the directory answered.
    let did = did.to_owned();
    ctx.db
        .write(move |w| {
            email_tokens::redeem(
                w.tx.connection(),
                &did,
                Purpose::PlcOperation,
                &token,
                email_tokens::now_ms(),
            )
        })
        .await?;
    Ok(op)
}

/// The DID's current data and the CID of the operation that set it, from its verified audit log.
async fn current_state(ctx: &AppContext, did: &str) -> Result<(PlcData, pds_ipld::Cid)> {
    let plc = PlcClient::new(&ctx.config.identity.plc_url)?;
    let log = plc.get_audit_log(did).await?;
    pds_plc::verified_state(did, &log)
        .map_err(|e| PlcOperationError::Directory(e.to_string()))?
        .ok_or(PlcOperationError::Tombstoned)
}

/// What [`submit`] requires of an operation for it to move `account` here: the reference's
/// checks, in its order and with its messages.
fn check_points_here(
    data: &PlcData,
    rotation_key: &str,
    public_url: &str,
    signing_key: &str,
    handle: &str,
) -> Result<()> {
    let refuse = |m: &str| Err(PlcOperationError::Invalid(m.to_owned()));
    if !data.rotation_keys.iter().any(|k| k == rotation_key) {
        return refuse("Rotation keys do not include server's rotation key");
    }
    let pds = data.services.get(ATPROTO_PDS_SERVICE);
    if pds.map(|s| s.kind.as_str()) != Some(ATPROTO_PDS_TYPE) {
        return refuse("Incorrect type on atproto_pds service");
    }
    if pds.map(|s| s.endpoint.as_str()) != Some(public_url) {
        return refuse("Incorrect endpoint on atproto_pds service");
    }
    if data
        .verification_methods
        .get(ATPROTO_VERIFICATION_METHOD)
        .map(String::as_str)
        != Some(signing_key)
    {
        return refuse("Incorrect signing key");
    }
    if data.also_known_as.first().map(String::as_str) != Some(format!("at://{handle}").as_str()) {
        return refuse("Incorrect handle in alsoKnownAs");
    }
    Ok(())
}

/// submitPlcOperation: submits `operation` (JSON, as signPlcOperation on the old server
/// returned it) for `did`, if it makes this server the account's home with the account's key
/// and handle here; then announces the identity change and drops cached resolutions.
pub async fn submit(ctx: &AppContext, did: &str, operation: &serde_json::Value) -> Result<()> {
    let invalid = || PlcOperationError::Invalid("Invalid operation".to_owned());
    let op = SignedOp::from_json(operation).map_err(|_| invalid())?;
    let UnsignedOp::Operation { data, .. } = &op.op else {
        return Err(invalid());
    };
    let (account, signing_key) = {
        let did = did.to_owned();
        ctx.db
            .read(move |store| {
                let conn = store.connection();
                let account = super::not_taken_down(conn, &did)?;
                Ok::<_, AccountError>((account, super::signing_key(conn, &did)?))
            })
            .await?
    };
    check_points_here(
        data,
        &ctx.secrets.plc_rotation_key.did_key(),
        &ctx.config.server.public_url,
        &signing_key.did_key(),
        &account.handle,
    )?;
    if !is_plc_did(did) {
        return Err(PlcOperationError::NotPlc(did.to_owned()));
    }
    pds_plc::validate::check_submission(&op)
        .map_err(|e| PlcOperationError::Invalid(e.to_string()))?;
    let moved_here = {
        let _serialized = identity_service::lock_did(did).await;
        let (before, _) = current_state(ctx, did).await?;
        PlcClient::new(&ctx.config.identity.plc_url)?
            .submit(did, &op)
            .await?;
        before.pds_endpoint() != Some(ctx.config.server.public_url.as_str())
    };
    // The DID now points here. An account moving in whose copy is complete is activated in this
    // same request (announced with its identity): otherwise, until the client's activateAccount
    // arrives, the DID would point at a host that does not serve the account while the old host
    // no longer has the DID, and a client that stops in between would leave it so.
    //
    // The directory has accepted the operation, so nothing after this fails the request: a
    // client told "failed" would throw away an operation that took effect. What cannot be done
    // now is logged, and the client's activateAccount (or a re-run of `pds migrate`) does it.
    let complete = account.deactivated
        && moved_here
        && match migration::copy_is_complete(ctx, did).await {
            Ok(complete) => complete,
            Err(e) => {
                tracing::warn!(%did, error = %e, "submitPlcOperation: could not check the copy; not activating");
                false
            }
        };
    if complete {
        match status::activate(ctx, did).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::warn!(%did, error = %e, "submitPlcOperation: the DID moved here, but activating failed");
            }
        }
    }
    identity_service::identity_changed(ctx, did, None, &account.handle).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROTATION: &str = "did:key:zQ3shRotation";
    const SIGNING: &str = "did:key:zQ3shSigning";
    const URL: &str = "https://pds.example.com";

    fn here() -> PlcData {
        PlcData::atproto("alice.test", URL, SIGNING, vec![ROTATION.to_owned()])
    }

    fn refusal(data: &PlcData) -> String {
        match check_points_here(data, ROTATION, URL, SIGNING, "alice.test") {
            Err(PlcOperationError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn submitted_operations_must_point_here() {
        check_points_here(&here(), ROTATION, URL, SIGNING, "alice.test").unwrap();
        let mut data = here();
        data.rotation_keys = vec!["did:key:zOther".into()];
        assert_eq!(
            refusal(&data),
            "Rotation keys do not include server's rotation key"
        );
        let mut data = here();
        data.services.get_mut(ATPROTO_PDS_SERVICE).unwrap().kind = "Other".into();
        assert_eq!(refusal(&data), "Incorrect type on atproto_pds service");
        let mut data = here();
        data.services.clear();
        assert_eq!(refusal(&data), "Incorrect type on atproto_pds service");
        let mut data = here();
        data.services.get_mut(ATPROTO_PDS_SERVICE).unwrap().endpoint = "https://x.test".into();
        assert_eq!(refusal(&data), "Incorrect endpoint on atproto_pds service");
        let mut data = here();
        data.verification_methods.clear();
        assert_eq!(refusal(&data), "Incorrect signing key");
        // The handle must come first.
        let mut data = here();
        data.also_known_as.insert(0, "https://alice.example".into());
        assert_eq!(refusal(&data), "Incorrect handle in alsoKnownAs");
    }

    #[test]
    fn changes_replace_only_what_they_name() {
        let changed = Changes {
            rotation_keys: Some(vec!["did:key:zNew".into()]),
            ..Default::default()
        }
        .apply(here());
        assert_eq!(changed.rotation_keys, ["did:key:zNew"]);
        assert_eq!(changed.also_known_as, here().also_known_as);
        assert_eq!(changed.services, here().services);
        assert_eq!(changed.verification_methods, here().verification_methods);
        assert_eq!(Changes::default().apply(here()), here());
    }
}
