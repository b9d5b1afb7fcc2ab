//! Query parameters of XRPC queries, read one by one with the reference's messages.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;

use super::ApiError;

/// A method's query parameters, checked one by one with the reference's messages
/// (`Params must have the property "did"`, `limit can not be greater than 1000`). An empty value
/// counts as absent, as in the reference.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| ApiError::invalid_request(format!("Invalid query string: {e}")))?;
        Ok(Params(pairs))
    }
}

impl Params {
    /// The value of `name`, if given and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| {
            ApiError::invalid_request(format!("Params must have the property \"{name}\""))
        })
    }

    /// A required DID parameter.
    pub fn did(&self, name: &str) -> Result<String, ApiError> {
        let value = self.required(name)?;
        pds_syntax::Did::new(value)
            .map(|_| value.to_owned())
            .map_err(|_| ApiError::invalid_request(format!("{name} must be a valid did")))
    }

    /// A required CID parameter.
    pub fn cid(&self, name: &str) -> Result<pds_ipld::Cid, ApiError> {
        let value = self.required(name)?;
        pds_ipld::parse_cid(value)
            .map_err(|_| ApiError::invalid_request(format!("{name} must be a cid string")))
    }

    /// Every non-empty value of a repeated parameter (`cids=a&cids=b`), in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A required array of CIDs: at least one value; a bad one is named by its index
    /// (`cids/1 must be a cid string`), as the reference's lexicon validation does.
    pub fn cids(&self, name: &str) -> Result<Vec<pds_ipld::Cid>, ApiError> {
        let values = self.all(name);
        if values.is_empty() {
            return Err(ApiError::invalid_request(format!(
                "Params must have the property \"{name}\""
            )));
        }
        values
            .iter()
            .enumerate()
            .map(|(i, value)| {
                pds_ipld::parse_cid(value).map_err(|_| {
                    ApiError::invalid_request(format!("{name}/{i} must be a cid string"))
                })
            })
            .collect()
    }

    /// A required array of DIDs: at least one value; a bad one is named by its index.
    pub fn dids(&self, name: &str) -> Result<Vec<String>, ApiError> {
        let values = self.all(name);
        if values.is_empty() {
            return Err(ApiError::invalid_request(format!(
                "Params must have the property \"{name}\""
            )));
        }
        values
            .iter()
            .enumerate()
            .map(|(i, value)| {
                pds_syntax::Did::new(value)
                    .map(|_| (*value).to_owned())
                    .map_err(|_| {
                        ApiError::invalid_request(format!("{name}/{i} must be a valid did"))
                    })
            })
            .collect()
    }

    /// A required NSID parameter.
    pub fn nsid(&self, name: &str) -> Result<pds_syntax::Nsid, ApiError> {
        pds_syntax::Nsid::new(self.required(name)?)
            .map_err(|_| ApiError::invalid_request(format!("{name} must be a valid nsid")))
    }

    /// A required record key parameter.
    pub fn record_key(&self, name: &str) -> Result<pds_syntax::RecordKey, ApiError> {
        pds_syntax::RecordKey::new(self.required(name)?)
            .map_err(|_| ApiError::invalid_request(format!("{name} must be a valid Record Key")))
    }

    /// An optional TID parameter.
    pub fn tid(&self, name: &str) -> Result<Option<String>, ApiError> {
        self.get(name)
            .map(|value| {
                pds_syntax::Tid::new(value)
                    .map(|_| value.to_owned())
                    .map_err(|_| ApiError::invalid_request(format!("{name} must be a valid TID")))
            })
            .transpose()
    }

    /// An integer parameter in `min..=max`, `default` if absent.
    pub fn integer(&self, name: &str, default: i64, min: i64, max: i64) -> Result<i64, ApiError> {
        let Some(value) = self.get(name) else {
            return Ok(default);
        };
        let n: i64 = value
            .parse()
            .map_err(|_| ApiError::invalid_request(format!("{name} must be an integer")))?;
        if n < min {
            return Err(ApiError::invalid_request(format!(
                "{name} can not be less than {min}"
            )));
        }
        if n > max {
            return Err(ApiError::invalid_request(format!(
                "{name} can not be greater than {max}"
            )));
        }
        Ok(n)
    }

    /// The `limit` of a listing: 1 to 1000, 500 if absent (the blob listings' lexicons).
    pub fn limit(&self) -> Result<usize, ApiError> {
        Ok(self.integer("limit", 500, 1, 1000)? as usize)
    }
}
