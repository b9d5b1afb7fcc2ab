//! Account operations that span the identity directory, the repo and the account tables:
//! creating an account and logging in.

use pds_crypto::{Algorithm, Keypair, PublicKey};
use pds_plc::{PlcClient, PlcData, UnsignedOp};
use pds_syntax::{Datetime, Handle};

use super::{Account, AccountError, NewAccount, password};
use crate::auth::{self, Scope, SessionTokens};
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
    /// A did:key the user holds, listed first among the DID's rotation keys.
    pub recovery_key: Option<String>,
    /// An invite code to use up in the account's transaction (when the server requires one).
    pub invite_code: Option<String>,
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

/// Creates an account: a new did:plc registered with the directory, an empty repo signed with
/// a fresh key, and the account row, the last two in one transaction.
pub async fn create_account(
    ctx: &AppContext,
    input: CreateAccountInput,
) -> Result<CreatedAccount, AccountError> {
    let handle = check_new_handle(ctx, &input.handle)?;
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
    // Refuse early what the transaction would refuse, before registering a DID for nothing.
    {
        let (handle, email) = (handle.clone(), email.clone());
        ctx.db
            .read(move |store| {
                let conn = store.connection();
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

    let signing_key = Keypair::generate(Algorithm::K256);
    let mut rotation_keys = Vec::new();
    if let Some(recovery) = &input.recovery_key {
        PublicKey::from_did_key(recovery)
            .map_err(|e| AccountError::InvalidRecoveryKey(e.to_string()))?;
        rotation_keys.push(recovery.clone());
    }
    rotation_keys.push(ctx.secrets.plc_rotation_key.did_key());
    let data = PlcData::atproto(
        &handle,
        &ctx.config.server.public_url,
        &signing_key.did_key(),
        rotation_keys,
    );
    let genesis = UnsignedOp::genesis(data).sign(&ctx.secrets.plc_rotation_key);
    let plc = PlcClient::new(&ctx.config.identity.plc_url)
        .map_err(|e| AccountError::Plc(crate::identity_service::plc_failure_message(&e)))?;
    let did = plc
        .create(&genesis)
        .await
        .map_err(|e| AccountError::Plc(crate::identity_service::plc_failure_message(&e)))?;

    // Hashing is deliberately slow: keep it off the async threads.
    let password = input.password;
    let password_scrypt = tokio::task::spawn_blocking(move || password::hash(&password))
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
                if let Some(code) = &invite_code {
                    super::invites::consume(w.tx.connection(), code, &did, &created_at)?;
                }
                let new = NewAccount {
                    did: &did,
                    handle: &handle,
                    email: email.as_deref(),
                    password_scrypt: &password_scrypt,
                    signing_key: &key,
                    created_at: &created_at,
                    deactivated: false,
                };
                super::insert(w.tx.connection(), &new)?;
                w.tx.create_repo(&did, &key, &clock_ctx, &[])?;
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
    let identifier = identifier.trim().to_lowercase();
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
