//! The inputs of the record methods: JSON bodies and query strings checked against the methods'
//! lexicons (so refusals read as the reference's do), then taken apart into typed values.

use std::collections::BTreeMap;

use pds_ipld::{Cid, Ipld};
use pds_lexicon::{Catalog, Params};
use pds_syntax::{AtIdentifier, Nsid, RecordKey};
use serde_json::Value;

use super::RecordError;

pub const CREATE_RECORD: &str = "com.atproto.repo.createRecord";
pub const PUT_RECORD: &str = "com.atproto.repo.putRecord";
pub const DELETE_RECORD: &str = "com.atproto.repo.deleteRecord";
pub const APPLY_WRITES: &str = "com.atproto.repo.applyWrites";
pub const GET_RECORD: &str = "com.atproto.repo.getRecord";
pub const LIST_RECORDS: &str = "com.atproto.repo.listRecords";
pub const DESCRIBE_REPO: &str = "com.atproto.repo.describeRepo";

const CREATE_TYPE: &str = "com.atproto.repo.applyWrites#create";
const UPDATE_TYPE: &str = "com.atproto.repo.applyWrites#update";
const DELETE_TYPE: &str = "com.atproto.repo.applyWrites#delete";

/// `com.atproto.repo.createRecord`.
#[derive(Debug)]
pub struct CreateRecord {
    pub repo: AtIdentifier,
    pub collection: Nsid,
    pub rkey: Option<RecordKey>,
    pub validate: Option<bool>,
    pub record: Ipld,
    pub swap_commit: Option<Cid>,
}

/// `com.atproto.repo.putRecord`.
#[derive(Debug)]
pub struct PutRecord {
    pub repo: AtIdentifier,
    pub collection: Nsid,
    pub rkey: RecordKey,
    pub validate: Option<bool>,
    pub record: Ipld,
    pub swap_commit: Option<Cid>,
    /// Absent: no check. `Some(None)` (JSON `null`): the record must not exist.
    /// `Some(Some(cid))`: the record must be at `cid`.
    pub swap_record: Option<Option<Cid>>,
}

/// `com.atproto.repo.deleteRecord`.
#[derive(Debug)]
pub struct DeleteRecord {
    pub repo: AtIdentifier,
    pub collection: Nsid,
    pub rkey: RecordKey,
    pub swap_commit: Option<Cid>,
    pub swap_record: Option<Cid>,
}

/// `com.atproto.repo.applyWrites`.
#[derive(Debug)]
pub struct ApplyWrites {
    pub repo: AtIdentifier,
    pub validate: Option<bool>,
    pub swap_commit: Option<Cid>,
    pub writes: Vec<WriteOp>,
}

/// One write of `applyWrites`.
#[derive(Debug)]
pub enum WriteOp {
    Create {
        collection: Nsid,
        rkey: Option<RecordKey>,
        value: Ipld,
    },
    Update {
        collection: Nsid,
        rkey: RecordKey,
        value: Ipld,
    },
    Delete {
        collection: Nsid,
        rkey: RecordKey,
    },
}

impl CreateRecord {
    pub fn from_json(body: &Value) -> Result<Self, RecordError> {
        let mut b = Body::parse(CREATE_RECORD, body)?;
        Ok(CreateRecord {
            repo: b.repo()?,
            collection: b.nsid("collection")?,
            rkey: b.opt_rkey("rkey")?,
            validate: b.opt_bool("validate"),
            record: b.take("record")?,
            swap_commit: b.opt_cid("swapCommit")?,
        })
    }
}

impl PutRecord {
    pub fn from_json(body: &Value) -> Result<Self, RecordError> {
        let mut b = Body::parse(PUT_RECORD, body)?;
        let swap_record = match b.0.remove("swapRecord") {
            None => None,
            Some(Ipld::Null) => Some(None),
            Some(Ipld::String(s)) => Some(Some(parse_cid("swapRecord", &s)?)),
            Some(_) => return Err(invalid("Input/swapRecord must be a string")),
        };
        Ok(PutRecord {
            repo: b.repo()?,
            collection: b.nsid("collection")?,
            rkey: b.rkey("rkey")?,
            validate: b.opt_bool("validate"),
            record: b.take("record")?,
            swap_commit: b.opt_cid("swapCommit")?,
            swap_record,
        })
    }
}

impl DeleteRecord {
    pub fn from_json(body: &Value) -> Result<Self, RecordError> {
        let mut b = Body::parse(DELETE_RECORD, body)?;
        Ok(DeleteRecord {
            repo: b.repo()?,
            collection: b.nsid("collection")?,
            rkey: b.rkey("rkey")?,
            swap_commit: b.opt_cid("swapCommit")?,
            swap_record: b.opt_cid("swapRecord")?,
        })
    }
}

impl ApplyWrites {
    pub fn from_json(body: &Value) -> Result<Self, RecordError> {
        let mut b = Body::parse(APPLY_WRITES, body)?;
        let Ipld::List(items) = b.take("writes")? else {
            return Err(invalid("Input/writes must be an array"));
        };
        let writes = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| write_op(i, item))
            .collect::<Result<_, _>>()?;
        Ok(ApplyWrites {
            repo: b.repo()?,
            validate: b.opt_bool("validate"),
            swap_commit: b.opt_cid("swapCommit")?,
            writes,
        })
    }
}

fn write_op(i: usize, item: Ipld) -> Result<WriteOp, RecordError> {
    let Ipld::Map(map) = item else {
        return Err(invalid(format!("Input/writes/{i} must be an object")));
    };
    let mut w = Body(map);
    let kind = match w.0.get("$type") {
        Some(Ipld::String(t)) => t.clone(),
        _ => {
            return Err(invalid(format!(
                "Input/writes/{i} must be an object which includes the \"$type\" property"
            )));
        }
    };
    Ok(match kind.as_str() {
        CREATE_TYPE => WriteOp::Create {
            collection: w.nsid("collection")?,
            rkey: w.opt_rkey("rkey")?,
            value: w.take("value")?,
        },
        UPDATE_TYPE => WriteOp::Update {
            collection: w.nsid("collection")?,
            rkey: w.rkey("rkey")?,
            value: w.take("value")?,
        },
        DELETE_TYPE => WriteOp::Delete {
            collection: w.nsid("collection")?,
            rkey: w.rkey("rkey")?,
        },
        other => return Err(invalid(format!("Action not supported: {other}"))),
    })
}

/// Decodes and checks a query method's parameters (given as the URL's key/value pairs).
pub fn params(nsid: &str, query: &[(String, String)]) -> Result<Params, RecordError> {
    Catalog::bundled()
        .validate_params(nsid, query)
        .map_err(|e| invalid(e.to_string()))
}

/// A parameter or field already checked by the lexicon, as a typed identifier.
pub fn at_identifier(name: &str, s: &str) -> Result<AtIdentifier, RecordError> {
    AtIdentifier::new(s)
        .map_err(|e| invalid(format!("{name} must be a valid did or a handle: {e}")))
}

pub fn nsid(name: &str, s: &str) -> Result<Nsid, RecordError> {
    Nsid::new(s).map_err(|e| invalid(format!("{name} must be a valid nsid: {e}")))
}

pub fn record_key(name: &str, s: &str) -> Result<RecordKey, RecordError> {
    RecordKey::new(s).map_err(|e| invalid(format!("{name} must be a valid Record Key: {e}")))
}

pub fn parse_cid(name: &str, s: &str) -> Result<Cid, RecordError> {
    pds_ipld::parse_cid(s).map_err(|e| invalid(format!("{name} must be a cid string: {e}")))
}

fn invalid(message: impl Into<String>) -> RecordError {
    RecordError::InvalidRequest(message.into())
}

/// A JSON body as a data model map, after its lexicon check.
struct Body(BTreeMap<String, Ipld>);

impl Body {
    fn parse(nsid: &str, json: &Value) -> Result<Body, RecordError> {
        // The whole body becomes data model values once: records are taken out of it as they
        // are, without another conversion. Floats and malformed `$link`/`$bytes` end here.
        let ipld = pds_ipld::json_to_ipld(json)
            .map_err(|e| invalid(format!("Invalid request body: {e}")))?;
        Catalog::bundled()
            .validate_input(nsid, &ipld)
            .map_err(|e| invalid(e.to_string()))?;
        match ipld {
            Ipld::Map(map) => Ok(Body(map)),
            _ => Err(invalid("Input must be an object")),
        }
    }

    fn take(&mut self, name: &str) -> Result<Ipld, RecordError> {
        self.0
            .remove(name)
            .ok_or_else(|| invalid(format!("Input must have the property \"{name}\"")))
    }

    fn string(&mut self, name: &str) -> Result<String, RecordError> {
        match self.take(name)? {
            Ipld::String(s) => Ok(s),
            _ => Err(invalid(format!("Input/{name} must be a string"))),
        }
    }

    fn opt_string(&mut self, name: &str) -> Result<Option<String>, RecordError> {
        match self.0.remove(name) {
            None => Ok(None),
            Some(Ipld::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(format!("Input/{name} must be a string"))),
        }
    }

    fn repo(&mut self) -> Result<AtIdentifier, RecordError> {
        let s = self.string("repo")?;
        at_identifier("Input/repo", &s)
    }

    fn nsid(&mut self, name: &str) -> Result<Nsid, RecordError> {
        let s = self.string(name)?;
        nsid(&format!("Input/{name}"), &s)
    }

    fn rkey(&mut self, name: &str) -> Result<RecordKey, RecordError> {
        let s = self.string(name)?;
        record_key(&format!("Input/{name}"), &s)
    }

    fn opt_rkey(&mut self, name: &str) -> Result<Option<RecordKey>, RecordError> {
        self.opt_string(name)?
            .map(|s| record_key(&format!("Input/{name}"), &s))
            .transpose()
    }

    fn opt_cid(&mut self, name: &str) -> Result<Option<Cid>, RecordError> {
        self.opt_string(name)?
            .map(|s| parse_cid(&format!("Input/{name}"), &s))
            .transpose()
    }

    fn opt_bool(&mut self, name: &str) -> Option<bool> {
        match self.0.get(name) {
            Some(Ipld::Bool(b)) => Some(*b),
            _ => None,
        }
    }
}
