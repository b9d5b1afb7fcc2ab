//! Account operations that span the identity directory, the repo and the account tables:
//! creating an account and logging in.
//!
//! A new account's DID is either registered here (a did:plc whose rotation key this server
//! holds) or brought by the caller, whose control of it the request has proven (see the
//! `createAccount` handler):
//!
//! - a did:web whose document its owner has already pointed here: nothing is signed or
//!   published by this server; its document must name this server as the PDS, the key
//!   reserved here with `reserveSigningKey` as the `#atproto` key, and the account's handle,
//!   and the account takes that key;
//! - an existing did:plc or did:web moving here from another server (migration, as the
//!   reference; the request proven with a service-auth token the DID signed): the
//!   account takes the key reserved for the DID, or a new one, starts **deactivated** with an
//!   empty repo signed by that key, and nothing is sent to the directory or the firehose. The
//!   DID document still points at the old server; the repo comes with `importRepo`, the blobs
//!   with `uploadBlob`, and the account is activated once the document points here.
//!
//! A handle under one of this server's domains follows that domain's rules; any other handle
//! (a custom domain) is allowed only with a brought DID, and must already resolve to it.

use std::sync::Arc;

use pds_crypto::{Algorithm, Keypair, PublicKey};
use pds_identity::DidDocument;
use pds_plc::{PlcClient, PlcData, UnsignedOp};
use pds_syntax::{Datetime, Did, Handle};

use super::{Account, AccountError, NewAccount, email_tokens, password};
use crate::auth::{self, Scope, SessionTokens};
use crate::firehose;
use crate::identity_service::{self, HandleError};
use crate::state::AppContext;

/// The shortest and longest first label of a handle under a service domain (as the reference).
const SERVICE_LABEL_LEN: std::ops::RangeInclusive<usize> = 3..=18;
/// The shortest password accepted.
const MIN_PASSWORD_LEN: usize = 8;

/// What `createAccount` was asked for.
pub struct CreateAccountInput {
    pub handle: String,
    pub email: Option<String>,
    pub password: String,
    /// A did:key the user holds, listed first among a new did:plc's rotation keys.
    pub recovery_key: Option<String>,
    /// An invite code to use up in the account's transaction (when the server requires one).
    pub invite_code: Option<String>,
    /// The DID the account is for, when the caller brings one; `None` registers a new did:plc.
    pub did: Option<BroughtDid>,
}

/// A DID an account is to be created for, whose control the request has already proven.
pub struct BroughtDid {
    pub did: Did,
    /// Its document, when proving control fetched it a moment ago (fetched here otherwise).
    pub document: Option<Arc<DidDocument>>,
}

/// A created account and its first session.
pub struct CreatedAccount {
    pub did: String,
    pub handle: String,
    pub tokens: SessionTokens,
}

/// A handle for a new account: valid syntax, lowercase, and under one of this server's domains.
pub fn check_new_handle(ctx: &AppContext, handle: &str) -> Result<String, AccountError> {
    let handle = Handle::new(handle)
        .map_err(|e| AccountError::InvalidHandle(e.to_string()))?
        .normalized();
    let handle = handle.as_str().to_owned();
    let domain = ctx
        .config
        .identity
        .handle_domains
        .iter()
        .find(|d| handle.ends_with(d.as_str()))
        .ok_or_else(|| AccountError::UnsupportedDomain(handle.clone()))?;
    let label = &handle[..handle.len() - domain.len()];
    if label.contains('.') || !SERVICE_LABEL_LEN.contains(&label.len()) {
        return Err(AccountError::InvalidHandle(format!(
            "the name before {domain} must be one label of {} to {} characters",
            SERVICE_LABEL_LEN.start(),
            SERVICE_LABEL_LEN.end()
        )));
    }
    Ok(handle)
}

/// The handle of an account being created for `did` (a brought DID) or for a new did:plc
/// (`None`): a service handle by that domain's rules, or, with a brought DID only, a custom
/// domain that resolves to that DID now (as the reference, which checks only that direction
/// here: the DID document's side is checked with the rest of the document).
async fn new_account_handle(
    ctx: &AppContext,
    requested: &str,
    did: Option<&str>,
) -> Result<String, AccountError> {
    let Some(did) = did else {
        return check_new_handle(ctx, requested);
    };
    let handle = identity_service::parse_handle(requested).map_err(handle_refusal)?;
    if identity_service::is_service_handle(&ctx.config, handle.as_str()) {
        return check_new_handle(ctx, handle.as_str());
    }
    identity_service::prove_custom_domain(ctx, did, &handle)
        .await
        .map_err(handle_refusal)?;
    Ok(handle.as_str().to_owned())
}

/// A refused handle as an account error: syntax stays `InvalidHandle`; a custom domain that
/// does not point at the DID keeps the reference's message ("External handle did not resolve
/// to DID").
fn handle_refusal(e: HandleError) -> AccountError {
    match e {
        HandleError::Account(e) => e,
        HandleError::DisallowedTld => AccountError::InvalidHandle(e.to_string()),
        other => AccountError::Refused(other.to_string()),
    }
}

/// Which brought DIDs an account can be created for.
fn check_brought_did(brought: &BroughtDid, recovery_key: Option<&str>) -> Result<(), AccountError> {
    match brought.did.method() {
        "web" if recovery_key.is_some() => Err(AccountError::Refused(
            "recoveryKey is a did:plc rotation key; a did:web account has none (leave it out)"
                .into(),
        )),
        // The rotation keys of a DID moving here are its owner's to change (with a PLC
        // operation the old server signs), not something this request can set.
        "plc" if recovery_key.is_some() => Err(AccountError::Refused(
            "recoveryKey is only for a new did:plc; an existing did:plc keeps its rotation keys (leave it out)"
                .into(),
        )),
        "web" | "plc" => Ok(()),
        other => Err(AccountError::Refused(format!(
            "Accounts can be created for a did:web or a did:plc, not a did:{other}"
        ))),
    }
}

/// How a new account gets its DID and key.
struct NewIdentity {
    did: String,
    signing_key: Keypair,
    /// The key was reserved for the DID (`reserveSigningKey`): the reservation is used up in
    /// the account's transaction.
    reserved: bool,
    /// A migrating account starts deactivated, and the network hears nothing of it yet.
    migrating: bool,
}

/// Creates an account, with a new did:plc, for a brought did:web, or for a did:plc moving here
/// (see the module documentation): every check first, then (new did:plc) the DID's
/// registration with the directory, then the account row and an empty repo signed with the
/// account's key in one transaction, and a first session.
pub async fn create_account(
    ctx: &AppContext,
    input: CreateAccountInput,
) -> Result<CreatedAccount, AccountError> {
    if let Some(brought) = &input.did {
        check_brought_did(brought, input.recovery_key.as_deref())?;
    }
    if input.password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AccountError::InvalidPassword(format!(
            "use at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    let email = input.email.map(|e| e.trim().to_lowercase());
    if let Some(email) = &email
        && !looks_like_email(email)
    {
        return Err(AccountError::InvalidEmail);
    }
    // After the checks that cost nothing: a custom domain is resolved.
    let brought_did = input.did.as_ref().map(|b| b.did.as_str());
    let handle = new_account_handle(ctx, &input.handle, brought_did).await?;
    // Refuse early what the transaction would refuse, before registering a DID for nothing.
    {
        let (handle, email, did) = (
            handle.clone(),
            email.clone(),
            brought_did.map(str::to_owned),
        );
        ctx.db
            .read(move |store| {
                let conn = store.connection();
                if let Some(did) = did
                    && super::by_did(conn, &did)?.is_some()
                {
                    return Err(AccountError::DidTaken);
                }
                if super::by_handle(conn, &handle)?.is_some() {
                    return Err(AccountError::HandleTaken);
                }
                if let Some(email) = email
                    && super::by_email(conn, &email)?.is_some()
                {
                    return Err(AccountError::EmailTaken);
                }
                Ok(())
            })
            .await?;
    }

    // Hashing is deliberately slow (and kept off the async threads): it runs while the DID is
    // registered, rather than after.
    let password = input.password;
    let hashing = tokio::task::spawn_blocking(move || password::hash(&password));

    let NewIdentity {
        did,
        signing_key,
        reserved,
        migrating,
    } = match &input.did {
        None => {
            let signing_key = Keypair::generate(Algorithm::K256);
            let did = register_plc_did(ctx, &handle, input.recovery_key, &signing_key).await?;
            NewIdentity {
                did,
                signing_key,
                reserved: false,
                migrating: false,
            }
        }
        Some(brought) if brought.did.method() == "plc" => {
            let did = brought.did.to_string();
            let reservation = {
                let did = did.clone();
                ctx.db
                    .read(move |store| email_tokens::reserved_key(store.connection(), &did))
                    .await
                    .map_err(reservation_error)?
            };
            let reserved = reservation.is_some();
            NewIdentity {
                did,
                signing_key: reservation.unwrap_or_else(|| Keypair::generate(Algorithm::K256)),
                reserved,
                migrating: true,
            }
        }
        Some(brought) => did_web_identity(ctx, brought, &handle).await?,
    };

    let password_scrypt = hashing
        .await
        .map_err(|e| AccountError::Key(e.to_string()))?;
    let created_at = Datetime::now().to_string();
    {
        let (did, handle, email, key) = (
            did.clone(),
            handle.clone(),
            email.clone(),
            signing_key.clone(),
        );
        let clock_ctx = ctx.clock.clone();
        let invite_code = input.invite_code;
        ctx.db
            .write(move |w| {
                let conn = w.tx.connection();
                if let Some(code) = &invite_code {
                    super::invites::consume(conn, code, &did, &created_at)?;
                }
                if reserved {
                    // Used up with the account: still reserved (not expired meanwhile), and
                    // still the key the DID document was checked against.
                    let still = email_tokens::reserved_key(conn, &did).map_err(reservation_error)?;
                    if still.map(|k| k.private_bytes()) != Some(key.private_bytes()) {
                        return Err(AccountError::Refused(format!(
                            "The signing key reserved for {did} changed or expired while the account was being created: try again"
                        )));
                    }
                    email_tokens::clear_reserved_key(conn, &did).map_err(reservation_error)?;
                }
                let new = NewAccount {
                    did: &did,
                    handle: &handle,
                    email: email.as_deref(),
                    password_scrypt: &password_scrypt,
                    signing_key: &key,
                    created_at: &created_at,
                    deactivated: migrating,
                };
                super::insert(conn, &new)?;
                let commit = w.tx.create_repo(&did, &key, &clock_ctx, &[])?;
                // A migrating account is announced when it is activated here (as the
                // reference): until then its DID still points at the old server, whose repo
                // relays follow.
                if migrating {
                    return Ok(());
                }
                // What the network learns of a new account, in the reference's order.
                let conn = w.tx.connection();
                firehose::sequence_identity(conn, &did, Some(&handle))?;
                firehose::sequence_account(conn, &did, true, None)?;
                firehose::sequence_commit(conn, &commit, &[])?;
                firehose::sequence_sync(conn, &commit)?;
                Ok::<_, AccountError>(())
            })
            .await?;
    }
    let tokens = start_session(ctx, &did, Scope::Full, None).await?;
    Ok(CreatedAccount {
        did,
        handle,
        tokens,
    })
}

/// Registers a new did:plc for `handle` with the directory: this server as the PDS,
/// `signing_key` as the atproto key, this server's rotation key (after the user's recovery key,
/// if given) as the rotation keys.
async fn register_plc_did(
    ctx: &AppContext,
    handle: &str,
    recovery_key: Option<String>,
    signing_key: &Keypair,
) -> Result<String, AccountError> {
    let mut rotation_keys = Vec::new();
    if let Some(recovery) = recovery_key {
        PublicKey::from_did_key(&recovery)
            .map_err(|e| AccountError::InvalidRecoveryKey(e.to_string()))?;
        rotation_keys.push(recovery);
    }
    rotation_keys.push(ctx.secrets.plc_rotation_key.did_key());
    let data = PlcData::atproto(
        handle,
        &ctx.config.server.public_url,
        &signing_key.did_key(),
        rotation_keys,
    );
    let genesis = UnsignedOp::genesis(data).sign(&ctx.secrets.plc_rotation_key);
    let plc = PlcClient::new(&ctx.config.identity.plc_url)
        .map_err(|e| AccountError::Plc(identity_service::plc_failure_message(&e)))?;
    plc.create(&genesis)
        .await
        .map_err(|e| AccountError::Plc(identity_service::plc_failure_message(&e)))
}

/// The identity of a new did:web account. Two cases:
///
/// - its owner (with a service-auth token the DID signed) moves it here from another server,
///   whose document still names that server: as a moving did:plc, it takes the key reserved for
///   it (or a new one) and starts deactivated, until the owner points the document here;
/// - otherwise the document must already point here, with the key reserved for the DID.
async fn did_web_identity(
    ctx: &AppContext,
    brought: &BroughtDid,
    handle: &str,
) -> Result<NewIdentity, AccountError> {
    let did = brought.did.as_str();
    let reserved = {
        let did = did.to_owned();
        ctx.db
            .read(move |store| email_tokens::reserved_key(store.connection(), &did))
            .await
            .map_err(reservation_error)?
    };
    let no_reservation = || {
        AccountError::Refused(format!(
            "No signing key is reserved for {did}: call com.atproto.server.reserveSigningKey with {{\"did\": \"{did}\"}} first, \
             and publish the key it returns as the #atproto verification method of the DID document"
        ))
    };
    let document = match &brought.document {
        Some(document) => document.clone(),
        // The operator (admin auth) brings a DID whose document must already point here with
        // the reserved key: without a reservation there is nothing to check it against.
        None if reserved.is_none() => return Err(no_reservation()),
        None => ctx
            .id_resolver
            .refresh_did(&brought.did)
            .await
            .map_err(|e| {
                AccountError::UnresolvableDid(format!(
                    "Could not resolve a valid DID document for {did}: {e}"
                ))
            })?,
    };
    let proven_by_the_did = brought.document.is_some();
    let points_elsewhere = document
        .pds_endpoint()
        .is_some_and(|endpoint| endpoint != ctx.config.server.public_url);
    if proven_by_the_did && points_elsewhere {
        return Ok(NewIdentity {
            did: did.to_owned(),
            reserved: reserved.is_some(),
            signing_key: reserved.unwrap_or_else(|| Keypair::generate(Algorithm::K256)),
            migrating: true,
        });
    }
    let Some(reserved) = reserved else {
        return Err(no_reservation());
    };
    let handle = Handle::new(handle).map_err(|e| AccountError::InvalidHandle(e.to_string()))?;
    let problems = document_problems(
        &document,
        &ctx.config.server.public_url,
        &reserved.public_key(),
        "the key reserved for it here",
        Some(&handle),
    );
    if !problems.is_empty() {
        return Err(AccountError::IncompatibleDidDoc(format!(
            "The DID document of {did} does not fit this account: {}",
            problems.join("; ")
        )));
    }
    Ok(NewIdentity {
        did: did.to_owned(),
        signing_key: reserved,
        reserved: true,
        migrating: false,
    })
}

/// What is wrong, if anything, with a DID document for an account hosted here: it must name this
/// server (`public_url`) as its `#atproto_pds`, `key` (described as `key_is` in messages) as its
/// `#atproto` key and, if given,
/// `handle` as its handle (first in `alsoKnownAs`). All mismatches are listed, so an operator
/// or user fixes the document in one go.
pub(crate) fn document_problems(
    document: &DidDocument,
    public_url: &str,
    key: &PublicKey,
    key_is: &str,
    handle: Option<&Handle>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let public_url = public_url.trim_end_matches('/');
    match document.pds_endpoint() {
        Some(endpoint) if endpoint.trim_end_matches('/') == public_url => {}
        Some(endpoint) => problems.push(format!(
            "its #atproto_pds service endpoint is {endpoint}, not this server ({public_url})"
        )),
        None => problems.push(format!(
            "it has no #atproto_pds service (type AtprotoPersonalDataServer) with serviceEndpoint {public_url}"
        )),
    }
    let reserved = key.did_key();
    match document.signing_key() {
        Some(found) if found.did_key() == reserved => {}
        Some(found) => problems.push(format!(
            "its #atproto key is {}, not {key_is} ({reserved})",
            found.did_key()
        )),
        None => problems.push(format!(
            "it has no usable #atproto verification method; it needs {key_is} ({reserved}), \
             as type Multikey with publicKeyMultibase {}",
            key.multikey()
        )),
    }
    let Some(handle) = handle else {
        return problems;
    };
    match document.handle() {
        Some(found) if found == *handle => {}
        Some(found) => problems.push(format!(
            "its handle (the first at:// entry of alsoKnownAs) is at://{found}, not at://{handle}"
        )),
        None => problems.push(format!(
            "its alsoKnownAs has no at:// handle; it needs at://{handle} first"
        )),
    }
    problems
}

/// Reserved keys are kept with the e-mail tokens, whose functions answer in that module's
/// error type; the only ways they fail here are the database's and a bad stored key.
fn reservation_error(e: email_tokens::Error) -> AccountError {
    match e {
        email_tokens::Error::Account(e) => e,
        email_tokens::Error::Db(e) => AccountError::Db(e),
        email_tokens::Error::Storage(e) => AccountError::Storage(e),
        other => AccountError::Key(other.to_string()),
    }
}

/// Issues session tokens and records the refresh token.
pub async fn start_session(
    ctx: &AppContext,
    did: &str,
    scope: Scope,
    app_password: Option<String>,
) -> Result<SessionTokens, AccountError> {
    let tokens = auth::issue(
        ctx.secrets.jwt_secret.as_bytes(),
        &ctx.config.server.service_did,
        did,
        scope,
    );
    let (id, did, expires) = (
        tokens.refresh_id.clone(),
        did.to_owned(),
        tokens.refresh_expires_at,
    );
    ctx.db
        .write(move |w| {
            super::store_refresh_token(
                w.tx.connection(),
                &id,
                &did,
                expires,
                app_password.as_deref(),
            )
        })
        .await?;
    Ok(tokens)
}

/// Checks a login (handle, DID or e-mail, and the account password or an app password) and
/// returns the account with the scope the login grants.
pub async fn login(
    ctx: &AppContext,
    identifier: &str,
    password: &str,
) -> Result<(Account, Scope, Option<String>), AccountError> {
    // Handles and e-mail addresses are stored lowercase; DIDs are case-sensitive (a did:web's
    // port separator is `%3A`).
    let identifier = identifier.trim();
    let identifier = if identifier.starts_with("did:") {
        identifier.to_owned()
    } else {
        identifier.to_lowercase()
    };
    let found = ctx
        .db
        .read(move |store| {
            let conn = store.connection();
            let Some(account) = super::by_identifier(conn, &identifier)? else {
                return Ok::<_, AccountError>(None);
            };
            let hash = super::password_hash(conn, &account.did)?;
            let app_passwords = super::app_password_hashes(conn, &account.did)?;
            Ok(Some((account, hash, app_passwords)))
        })
        .await?;
    let password = password.to_owned();
    // Hash even for an unknown account, so timing does not tell which accounts exist.
    let (account, hash, app_passwords) = match found {
        Some(found) => found,
        None => {
            tokio::task::spawn_blocking(move || password::verify(&password, DUMMY_HASH))
                .await
                .ok();
            return Err(AccountError::BadCredentials);
        }
    };
    let did = account.did.clone();
    let verdict = tokio::task::spawn_blocking(move || {
        if password::verify(&password, &hash) {
            return Some((Scope::Full, None));
        }
        // One scrypt for all of them (they share the DID's salt).
        super::app_passwords::find(&did, &password, app_passwords).map(|p| {
            let scope = if p.privileged {
                Scope::AppPassPrivileged
            } else {
                Scope::AppPass
            };
            (scope, Some(p.name))
        })
    })
    .await
    .map_err(|e| AccountError::Key(e.to_string()))?;
    let (scope, app_password) = verdict.ok_or(AccountError::BadCredentials)?;
    Ok((account, scope, app_password))
}

/// A valid hash of a password nobody has, for constant-time refusals.
const DUMMY_HASH: &str = "00000000000000000000000000000000:\
0000000000000000000000000000000000000000000000000000000000000000\
0000000000000000000000000000000000000000000000000000000000000000";

fn looks_like_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !email.contains(char::is_whitespace)
        }
        None => false,
    }
}
