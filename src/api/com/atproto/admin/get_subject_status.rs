//! `com.atproto.admin.getSubjectStatus` (query, admin): an account's takedown and deactivation
//! (`did`). Records (`uri`) and blobs (`blob`) are not supported yet.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use super::update_subject_status::{REPO_REF, StatusAttr};
use crate::api::{ApiError, Params};
use crate::auth::admin::AdminAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.admin.getSubjectStatus";

#[derive(Debug, Serialize)]
pub struct Output {
    pub subject: Value,
    pub takedown: StatusAttr,
    pub deactivated: StatusAttr,
}

pub async fn handle(
    State(state): State<AppState>,
    _admin: AdminAuth,
    params: Params,
) -> Result<Json<Output>, ApiError> {
    if params.get("uri").is_some() || params.get("blob").is_some() {
        return Err(ApiError::invalid_request(
            "Only accounts (did) have a status here yet",
        ));
    }
    let did = params.did("did")?;
    let lookup = did.clone();
    let found = state
        .db
        .read(move |store| {
            let conn = store.connection();
            let takedown = crate::accounts::takedown_ref(conn, &lookup)?;
            let account = crate::accounts::by_did(conn, &lookup)?;
            Ok::<_, crate::accounts::AccountError>(takedown.zip(account))
        })
        .await?;
    let Some((takedown_ref, account)) = found else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "NotFound",
            "Subject not found",
        ));
    };
    Ok(Json(Output {
        subject: json!({"$type": REPO_REF, "did": did}),
        takedown: StatusAttr {
            applied: takedown_ref.is_some(),
            reference: takedown_ref,
        },
        deactivated: StatusAttr {
            applied: account.deactivated,
            reference: None,
        },
    }))
}
