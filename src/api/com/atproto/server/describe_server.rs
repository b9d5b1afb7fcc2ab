//! `com.atproto.server.describeServer` (query): what a client needs to know
//! before creating an account here: the server's DID, the handle domains it
//! offers, whether an invite code is needed, and its policy links.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.describeServer";

/// The output schema of the lexicon. `did` and `availableUserDomains` are
/// required; the rest are optional there, and always sent here.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub did: String,
    pub available_user_domains: Vec<String>,
    pub invite_code_required: bool,
    /// This server never asks for phone verification.
    pub phone_verification_required: bool,
    /// The largest blob `uploadBlob` accepts, in bytes.
    pub blob_upload_limit: u64,
    pub links: Links,
    pub contact: Contact,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Links {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privacy_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terms_of_service: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Contact {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

pub async fn handle(State(ctx): State<AppState>) -> Json<Output> {
    let config = &ctx.config;
    Json(Output {
        did: config.server.service_did.clone(),
        available_user_domains: config.identity.handle_domains.clone(),
        invite_code_required: config.accounts.invite_required,
        phone_verification_required: false,
        blob_upload_limit: config.limits.blob_upload_limit,
        links: Links {
            privacy_policy: config.server.privacy_policy_url.clone(),
            terms_of_service: config.server.terms_of_service_url.clone(),
        },
        contact: Contact {
            email: config.server.contact_email.clone(),
        },
    })
}
