//! `com.atproto.admin.*`: the operator's methods, behind the admin password (HTTP Basic
//! `admin:<PDS_ADMIN_PASSWORD>`, see `crate::auth::admin`).

pub mod delete_account;
pub mod disable_account_invites;
pub mod disable_invite_codes;
pub mod get_account_info;
pub mod get_account_infos;
pub mod get_invite_codes;
pub mod get_subject_status;
pub mod search_accounts;
pub mod send_email;
pub mod update_account_email;
pub mod update_account_handle;
pub mod update_account_password;
pub mod update_subject_status;

use serde::Serialize;

use crate::api::xrpc::XrpcRouter;

pub fn register(xrpc: XrpcRouter) -> XrpcRouter {
    xrpc.query(get_account_info::NSID, get_account_info::handle)
        .query(get_account_infos::NSID, get_account_infos::handle)
        .query(get_subject_status::NSID, get_subject_status::handle)
        .procedure(update_subject_status::NSID, update_subject_status::handle)
        .procedure(delete_account::NSID, delete_account::handle)
        .procedure(update_account_email::NSID, update_account_email::handle)
        .procedure(update_account_handle::NSID, update_account_handle::handle)
        .procedure(
            update_account_password::NSID,
            update_account_password::handle,
        )
        .query(search_accounts::NSID, search_accounts::handle)
        .query(get_invite_codes::NSID, get_invite_codes::handle)
        .procedure(disable_invite_codes::NSID, disable_invite_codes::handle)
        .procedure(send_email::NSID, send_email::handle)
        .procedure(
            disable_account_invites::DISABLE,
            disable_account_invites::disable,
        )
        .procedure(
            disable_account_invites::ENABLE,
            disable_account_invites::enable,
        )
}

/// A DID from a procedure's input, checked (the lexicon's `format: did`).
fn input_did(text: &str) -> Result<String, crate::api::ApiError> {
    pds_syntax::Did::new(text)
        .map(|did| did.to_string())
        .map_err(|_| crate::api::ApiError::invalid_request("Input/did must be a valid did"))
}

/// `com.atproto.admin.defs#accountView`, as far as this server keeps the fields.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub did: String,
    pub handle: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub indexed_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_confirmed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deactivated_at: Option<String>,
    pub invites_disabled: bool,
}

/// Reads the view of each account of `dids` that exists, in the order given: one row read each.
pub fn account_views(
    conn: &rusqlite::Connection,
    dids: &[String],
) -> Result<Vec<AccountView>, crate::accounts::AccountError> {
    use rusqlite::OptionalExtension;
    let mut stmt = conn.prepare_cached(
        "SELECT did, handle, email, created_at, email_confirmed_at, deactivated_at, invites_disabled
         FROM account WHERE did = ?1",
    )?;
    let mut views = Vec::with_capacity(dids.len());
    for did in dids {
        let view = stmt
            .query_row([did], |r| {
                Ok(AccountView {
                    did: r.get(0)?,
                    handle: r.get(1)?,
                    email: r.get(2)?,
                    indexed_at: r.get(3)?,
                    email_confirmed_at: r.get(4)?,
                    deactivated_at: r.get(5)?,
                    invites_disabled: r.get(6)?,
                })
            })
            .optional()?;
        views.extend(view);
    }
    Ok(views)
}
