//! `com.atproto.identity.getRecommendedDidCredentials` (query): what the caller's DID document
//! should say for the account to live here, for an account moving here to have the old server
//! sign into its DID: this server's PLC rotation key, the handle, the account's signing key here
//! (`verificationMethods.atproto`, a did:key) and this server as `atproto_pds`. Any session of
//! the account may ask, deactivated accounts included (as the reference).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::accounts::migration;
use crate::api::ApiError;
use crate::auth::AccessAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.identity.getRecommendedDidCredentials";

/// Keys in the reference's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub also_known_as: Vec<String>,
    pub verification_methods: BTreeMap<&'static str, String>,
    pub rotation_keys: Vec<String>,
    pub services: BTreeMap<&'static str, Service>,
}

#[derive(Debug, Serialize)]
pub struct Service {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub endpoint: String,
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
) -> Result<Json<Output>, ApiError> {
    let credentials = migration::recommended_credentials(&state, &auth.did).await?;
    Ok(Json(Output {
        also_known_as: credentials.also_known_as,
        verification_methods: BTreeMap::from([("atproto", credentials.atproto_key)]),
        rotation_keys: credentials.rotation_keys,
        services: BTreeMap::from([(
            "atproto_pds",
            Service {
                kind: "AtprotoPersonalDataServer",
                endpoint: credentials.pds_endpoint,
            },
        )]),
    }))
}
