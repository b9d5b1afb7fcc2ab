//! `com.atproto.repo.*`: reading and writing an account's records and blobs.

pub mod apply_writes;
pub mod create_record;
pub mod delete_record;
pub mod describe_repo;
pub mod get_record;
pub mod import_repo;
pub mod list_missing_blobs;
pub mod list_records;
pub mod put_record;
pub mod upload_blob;

use crate::api::xrpc::XrpcRouter;

pub fn register(xrpc: XrpcRouter) -> XrpcRouter {
    xrpc.procedure(create_record::NSID, create_record::handle)
        .procedure(put_record::NSID, put_record::handle)
        .procedure(delete_record::NSID, delete_record::handle)
        .procedure(apply_writes::NSID, apply_writes::handle)
        .query(get_record::NSID, get_record::handle)
        .query(list_records::NSID, list_records::handle)
        .query(describe_repo::NSID, describe_repo::handle)
        .procedure(upload_blob::NSID, upload_blob::handle)
        .query(list_missing_blobs::NSID, list_missing_blobs::handle)
        .procedure(import_repo::NSID, import_repo::handle)
}
