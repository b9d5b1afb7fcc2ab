//! `com.atproto.repo.getRecord` (query, public): one record of a repo hosted here.

use axum::Json;
use axum::extract::{Query, State};
use serde::Serialize;

use crate::api::ApiError;
use crate::records::{self, RecordValue, input};
use crate::state::AppState;

pub const NSID: &str = input::GET_RECORD;

#[derive(Debug, Serialize)]
pub struct Output {
    pub uri: String,
    pub cid: String,
    pub value: RecordValue,
}

pub async fn handle(
    State(state): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Output>, ApiError> {
    let params = input::params(NSID, &query)?;
    let text = |name| params.string(name).unwrap_or_default();
    let repo = input::at_identifier("repo", text("repo"))?;
    let collection = input::nsid("collection", text("collection"))?;
    let rkey = input::record_key("rkey", text("rkey"))?;
    let cid = params
        .string("cid")
        .map(|c| input::parse_cid("cid", c))
        .transpose()?;
    let record = records::read::get_record(&state, repo, collection, rkey, cid).await?;
    Ok(Json(Output {
        uri: record.uri,
        cid: record.cid.to_string(),
        value: record.value,
    }))
}
