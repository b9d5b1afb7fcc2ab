//! `com.atproto.admin.getSubjectStatus` (query, admin): the takedown of an account (`did`, with
//! its deactivation), a record (`uri`) or a blob (`did` and `blob`). An unknown subject is 400
//! `NotFound`.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::{Value, json};

use super::update_subject_status::{
    REPO_BLOB_REF, REPO_REF, STRONG_REF, StatusAttr, not_found, record_uri,
};
use crate::api::{ApiError, Params};
use crate::auth::admin::AdminAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.admin.getSubjectStatus";

#[derive(Debug, Serialize)]
pub struct Output {
    pub subject: Value,
    pub takedown: StatusAttr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deactivated: Option<StatusAttr>,
}

fn takedown_attr(reference: Option<String>) -> StatusAttr {
    StatusAttr {
        applied: reference.is_some(),
        reference,
    }
}

/// A record's status: its current CID from the repo (the one taken down if it is gone since).
async fn record_status(state: &AppState, uri: String) -> Result<Output, ApiError> {
    // `record_uri` checked the shape: at://<did>/<collection>/<rkey>.
    let mut parts = uri["at://".len()..].splitn(3, '/');
    let (Some(did), Some(collection), Some(rkey)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(not_found());
    };
    let (did, collection, rkey) = (did.to_owned(), collection.to_owned(), rkey.to_owned());
    let found = state
        .db
        .read(move |store| {
            let taken_down = crate::moderation::record_takedown(store.connection(), &uri)?;
            let current = store
                .get_record(&did, &collection, &rkey)?
                .map(|(cid, _)| cid.to_string());
            Ok::<_, pds_storage::StorageError>(current.map(|cid| (uri, cid, taken_down)))
        })
        .await
        .map_err(ApiError::internal)?;
    let (uri, cid, taken_down) = found.ok_or_else(not_found)?;
    Ok(Output {
        subject: json!({"$type": STRONG_REF, "uri": uri, "cid": cid}),
        takedown: takedown_attr(taken_down),
        deactivated: None,
    })
}

async fn blob_status(state: &AppState, did: String, cid: String) -> Result<Output, ApiError> {
    let (lookup_did, lookup_cid) = (did.clone(), cid.clone());
    let found = state
        .db
        .read(move |store| crate::blobs::takedown(store.connection(), &lookup_did, &lookup_cid))
        .await
        .map_err(ApiError::internal)?;
    let taken_down = found.ok_or_else(not_found)?;
    Ok(Output {
        subject: json!({"$type": REPO_BLOB_REF, "did": did, "cid": cid}),
        takedown: takedown_attr(taken_down),
        deactivated: None,
    })
}

pub async fn handle(
    State(state): State<AppState>,
    _admin: AdminAuth,
    params: Params,
) -> Result<Json<Output>, ApiError> {
    if let Some(uri) = params.get("uri") {
        let uri = record_uri(uri)?;
        return record_status(&state, uri).await.map(Json);
    }
    if params.get("blob").is_some() {
        let did = params.did("did")?;
        let cid = params.cid("blob")?.to_string();
        return blob_status(&state, did, cid).await.map(Json);
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
        return Err(not_found());
    };
    Ok(Json(Output {
        subject: json!({"$type": REPO_REF, "did": did}),
        takedown: takedown_attr(takedown_ref),
        deactivated: Some(StatusAttr {
            applied: account.deactivated,
            reference: None,
        }),
    }))
}
