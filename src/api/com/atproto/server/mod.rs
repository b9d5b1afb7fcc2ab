//! `com.atproto.server.*`: the server's description, accounts and sessions.

pub mod activate_account;
pub mod check_account_status;
pub mod confirm_email;
pub mod create_account;
pub mod create_app_password;
pub mod create_invite_code;
pub mod create_invite_codes;
pub mod create_session;
pub mod deactivate_account;
pub mod delete_account;
pub mod delete_session;
pub mod describe_server;
pub mod get_account_invite_codes;
pub mod get_service_auth;
pub mod get_session;
pub mod list_app_passwords;
pub mod refresh_session;
pub mod request_account_delete;
pub mod request_email_confirmation;
pub mod request_email_update;
pub mod request_password_reset;
pub mod reserve_signing_key;
pub mod reset_password;
pub mod revoke_app_password;
pub mod update_email;

use crate::api::xrpc::XrpcRouter;

pub fn register(xrpc: XrpcRouter) -> XrpcRouter {
    xrpc.query(describe_server::NSID, describe_server::handle)
        .procedure(create_account::NSID, create_account::handle)
        .procedure(create_session::NSID, create_session::handle)
        .query(get_session::NSID, get_session::handle)
        .procedure(refresh_session::NSID, refresh_session::handle)
        .procedure(delete_session::NSID, delete_session::handle)
        .procedure(create_app_password::NSID, create_app_password::handle)
        .query(list_app_passwords::NSID, list_app_passwords::handle)
        .procedure(revoke_app_password::NSID, revoke_app_password::handle)
        .procedure(create_invite_code::NSID, create_invite_code::handle)
        .procedure(create_invite_codes::NSID, create_invite_codes::handle)
        .query(
            get_account_invite_codes::NSID,
            get_account_invite_codes::handle,
        )
        // Account management by e-mailed code, and signing keys for accounts migrating in.
        .procedure(
            request_email_confirmation::NSID,
            request_email_confirmation::handle,
        )
        .procedure(confirm_email::NSID, confirm_email::handle)
        .procedure(request_email_update::NSID, request_email_update::handle)
        .procedure(update_email::NSID, update_email::handle)
        .procedure(request_password_reset::NSID, request_password_reset::handle)
        .procedure(reset_password::NSID, reset_password::handle)
        .procedure(request_account_delete::NSID, request_account_delete::handle)
        .procedure(delete_account::NSID, delete_account::handle)
        .procedure(reserve_signing_key::NSID, reserve_signing_key::handle)
        .procedure(deactivate_account::NSID, deactivate_account::handle)
        .procedure(activate_account::NSID, activate_account::handle)
        // Moving an account here.
        .query(get_service_auth::NSID, get_service_auth::handle)
        .query(check_account_status::NSID, check_account_status::handle)
}
