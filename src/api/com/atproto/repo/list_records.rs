//! `com.atproto.repo.listRecords` (query, public): a page of one collection of a repo, newest
//! first unless `reverse`.

use axum::Json;
use axum::extract::{Query, State};
use serde::Serialize;

use crate::api::ApiError;
use crate::records::{self, RecordValue, input};
use crate::state::AppState;

pub const NSID: &str = input::LIST_RECORDS;

#[derive(Debug, Serialize)]
pub struct Output {
    pub records: Vec<Record>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `com.atproto.repo.listRecords#record`.
#[derive(Debug, Serialize)]
pub struct Record {
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
    // The lexicon gave `limit` its default (50) and held it to 1..=100.
    let limit = usize::try_from(params.integer("limit").unwrap_or(50)).unwrap_or(50);
    let cursor = params.string("cursor").map(str::to_owned);
    let reverse = params.boolean("reverse").unwrap_or(false);
    let page =
        records::read::list_records(&state, repo, collection, limit, cursor, reverse).await?;
    Ok(Json(Output {
        records: page
            .records
            .into_iter()
            .map(|r| Record {
                uri: r.uri,
                cid: r.cid.to_string(),
                value: r.value,
            })
            .collect(),
        cursor: page.cursor,
    }))
}
