//! `com.atproto.identity.*`: handles and DIDs.

pub mod get_recommended_did_credentials;
pub mod request_plc_operation_signature;
pub mod resolve_handle;
pub mod sign_plc_operation;
pub mod submit_plc_operation;
pub mod update_handle;
pub mod well_known;

use crate::api::xrpc::XrpcRouter;

pub fn register(xrpc: XrpcRouter) -> XrpcRouter {
    xrpc.query(resolve_handle::NSID, resolve_handle::handle)
        .procedure(update_handle::NSID, update_handle::handle)
        .query(
            get_recommended_did_credentials::NSID,
            get_recommended_did_credentials::handle,
        )
        .procedure(
            request_plc_operation_signature::NSID,
            request_plc_operation_signature::handle,
        )
        .procedure(sign_plc_operation::NSID, sign_plc_operation::handle)
        .procedure(submit_plc_operation::NSID, submit_plc_operation::handle)
}
