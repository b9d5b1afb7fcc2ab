//! `com.atproto.identity.signPlcOperation` (procedure): trades the e-mailed code for the
//! account's next did:plc operation, its current state with the given fields replaced, signed
//! with this server's rotation key. Returned as `{operation}`, not submitted: the account takes
//! it to its new server's `submitPlcOperation`. Needs a session made with the account password.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::accounts::plc_operations::{self, Changes};
use crate::api::{ApiError, XrpcJson};
use crate::auth::AccessAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.identity.signPlcOperation";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    pub token: Option<String>,
    pub rotation_keys: Option<Vec<String>>,
    pub also_known_as: Option<Vec<String>>,
    pub verification_methods: Option<BTreeMap<String, String>>,
    pub services: Option<BTreeMap<String, pds_plc::Service>>,
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub operation: serde_json::Value,
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<Json<Output>, ApiError> {
    auth.require_identity(pds_permissions::IdentityAttr::All)?;
    let changes = Changes {
        rotation_keys: input.rotation_keys,
        also_known_as: input.also_known_as,
        verification_methods: input.verification_methods,
        services: input.services,
    };
    let op = plc_operations::sign(&state, &auth.did, input.token.as_deref(), changes).await?;
    Ok(Json(Output {
        operation: op.to_json(),
    }))
}
