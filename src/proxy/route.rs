//! Where a forwarded method goes: the service an `atproto-proxy` header names, or the one the
//! operator configured for the method's namespace; and which methods are never forwarded.

use pds_identity::IdentityResolver;
use pds_syntax::Did;

use super::ProxyError;
use crate::auth::service_jwt::PROTECTED_METHODS;
use crate::config::{Config, ServiceEndpoint};

/// The request header naming the service a request is for: `<did>#<service id>`.
pub const PROXY_HEADER: &str = "atproto-proxy";

/// A service requests are forwarded to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Where the service answers: the origin of its URL (`scheme://host[:port]`, as the
    /// reference takes it), to which `/xrpc/<method>` is appended.
    pub endpoint: String,
    /// The `aud` of the tokens minted for it: the service's DID, followed by `#<service id>`
    /// when a request named the service with an `atproto-proxy` header (as the reference mints
    /// them, so a service with several ids can tell which was meant).
    pub aud: String,
    /// How it was chosen; an endpoint read from a DID document the request named is reached
    /// only under the address policy of other user-influenced fetches.
    pub source: Source,
}

/// How a [`Target`] was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The operator's configuration (`PDS_BSKY_APP_VIEW_URL` and the like).
    Configured,
    /// A DID document, named by the request.
    DidDocument,
}

impl Target {
    pub fn configured(service: &ServiceEndpoint) -> Target {
        Target {
            // Configured URLs are checked at start-up.
            endpoint: origin_of(&service.url)
                .unwrap_or_else(|| service.url.trim_end_matches('/').to_owned()),
            aud: service.did.clone(),
            source: Source::Configured,
        }
    }

    /// A service read from a DID document: `endpoint` must be an http(s) URL.
    pub fn from_document(endpoint: &str, aud: String) -> Option<Target> {
        Some(Target {
            endpoint: origin_of(endpoint)?,
            aud,
            source: Source::DidDocument,
        })
    }

    /// `<endpoint>/xrpc/<path and query>`.
    pub fn xrpc_url(&self, path_and_query: &str) -> String {
        format!("{}/xrpc/{path_and_query}", self.endpoint)
    }
}

/// What an `atproto-proxy` header says, checked for shape (as the reference: one `#`, a DID
/// before it, an id after it, no spaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHeader {
    pub did: Did,
    /// The service id, without its `#`.
    pub service_id: String,
}

impl ProxyHeader {
    pub fn parse(value: &str) -> Result<ProxyHeader, ProxyError> {
        let bad = |why: &'static str| ProxyError::BadHeader(why);
        let Some(hash) = value.find('#') else {
            return Err(bad("no service id specified in proxy header"));
        };
        if hash == 0 {
            return Err(bad("no did specified in proxy header"));
        }
        if hash == value.len() - 1 {
            return Err(bad("no service id specified in proxy header"));
        }
        if value[hash + 1..].contains('#') {
            return Err(bad("invalid proxy header format"));
        }
        if value.contains(char::is_whitespace) {
            return Err(bad("proxy header cannot contain spaces"));
        }
        let did =
            Did::new(&value[..hash]).map_err(|_| bad("proxy header does not start with a DID"))?;
        Ok(ProxyHeader {
            did,
            service_id: value[hash + 1..].to_owned(),
        })
    }

    /// The service's endpoint from the DID's document (cached): the entry with this id whose
    /// `serviceEndpoint` is an http(s) URL.
    pub async fn resolve(&self, resolver: &IdentityResolver) -> Result<Target, ProxyError> {
        let doc = resolver.resolve_did(&self.did).await.map_err(|e| {
            // The reason stays in the log: it may name internal hosts.
            tracing::debug!(did = %self.did, error = %e, "atproto-proxy: DID not resolved");
            ProxyError::UnresolvableDid(self.did.to_string())
        })?;
        let named = format!("{}#{}", self.did, self.service_id);
        doc.service(&self.service_id)
            .and_then(|service| service.endpoint.as_deref())
            .and_then(|url| Target::from_document(url, named.clone()))
            .ok_or(ProxyError::NoServiceEndpoint(named))
    }
}

/// The origin (`scheme://host[:port]`) of an http(s) URL with a host; `None` for anything else.
fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return None;
    }
    Some(parsed.origin().ascii_serialization())
}

/// Where a method goes when the request names no service: the AppView for `app.bsky.*`, the
/// moderation service for `tools.ozone.*`, the report service for reports. `chat.bsky.*` has no
/// default (clients name the chat service), and neither has anything else.
pub fn default_target(config: &Config, nsid: &str) -> Result<Target, ProxyError> {
    let service = if nsid == "com.atproto.moderation.createReport" {
        config.report_service.as_ref()
    } else if nsid.starts_with("app.bsky.") {
        config.appview.as_ref()
    } else if nsid.starts_with("tools.ozone.") {
        config.mod_service.as_ref()
    } else if nsid.starts_with("chat.bsky.") {
        return Err(ProxyError::HeaderRequired(nsid.to_owned()));
    } else {
        None
    };
    service
        .map(Target::configured)
        .ok_or_else(|| ProxyError::NotImplemented(nsid.to_owned()))
}

/// Account management is done with this server directly, never through another service on the
/// account's behalf: those methods are not forwarded and no token is minted for them.
pub fn check_forwardable(nsid: &str) -> Result<(), ProxyError> {
    if PROTECTED_METHODS.contains(&nsid) {
        return Err(ProxyError::Protected(nsid.to_owned()));
    }
    Ok(())
}

/// The audience an OAuth `rpc:` scope names for a call to `aud`: a DID with the service id.
/// A service reached by its namespace default has no id in its token's `aud`; scopes name
/// it by the id apps use in the `atproto-proxy` header.
pub fn scope_audience(aud: &str, nsid: &str) -> String {
    if aud.contains('#') {
        return aud.to_owned();
    }
    let service_id = if nsid.starts_with("chat.bsky.") {
        "bsky_chat"
    } else if nsid.starts_with("com.atproto.moderation.") || nsid.starts_with("tools.ozone.") {
        "atproto_labeler"
    } else {
        "bsky_appview"
    };
    format!("{aud}#{service_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_headers_are_checked_as_the_reference_checks_them() {
        let ok = ProxyHeader::parse("did:web:api.bsky.app#bsky_appview").unwrap();
        assert_eq!(ok.did.as_str(), "did:web:api.bsky.app");
        assert_eq!(ok.service_id, "bsky_appview");
        let message = |v: &str| ProxyHeader::parse(v).unwrap_err().to_string();
        assert_eq!(message("#bsky_appview"), "no did specified in proxy header");
        assert_eq!(
            message("did:web:api.bsky.app"),
            "no service id specified in proxy header"
        );
        assert_eq!(
            message("did:web:api.bsky.app#"),
            "no service id specified in proxy header"
        );
        assert_eq!(
            message("did:web:api.bsky.app#a#b"),
            "invalid proxy header format"
        );
        assert_eq!(
            message("did:web:api.bsky.app #a"),
            "proxy header cannot contain spaces"
        );
        assert_eq!(
            message("api.bsky.app#bsky_appview"),
            "proxy header does not start with a DID"
        );
    }

    #[test]
    fn default_services_by_namespace() {
        let env = |name: &str| match name {
            "PDS_BSKY_APP_VIEW_URL" => Some("https://api.bsky.app/".to_owned()),
            "PDS_BSKY_APP_VIEW_DID" => Some("did:web:api.bsky.app".to_owned()),
            "PDS_MOD_SERVICE_URL" => Some("https://mod.bsky.app".to_owned()),
            "PDS_MOD_SERVICE_DID" => Some("did:plc:ar7c4by46qjdydhdevvrndac".to_owned()),
            _ => None,
        };
        let config = Config::from_toml_str("", &env).unwrap();
        let timeline = default_target(&config, "app.bsky.feed.getTimeline").unwrap();
        assert_eq!(timeline.endpoint, "https://api.bsky.app");
        assert_eq!(timeline.aud, "did:web:api.bsky.app");
        assert_eq!(timeline.source, Source::Configured);
        assert_eq!(
            timeline.xrpc_url("app.bsky.feed.getTimeline?limit=2"),
            "https://api.bsky.app/xrpc/app.bsky.feed.getTimeline?limit=2"
        );
        let ozone = default_target(&config, "tools.ozone.moderation.queryEvents").unwrap();
        assert_eq!(ozone.aud, "did:plc:ar7c4by46qjdydhdevvrndac");
        // Reports go to the moderation service when no report service is set.
        let report = default_target(&config, "com.atproto.moderation.createReport").unwrap();
        assert_eq!(report.endpoint, "https://mod.bsky.app");
        assert!(matches!(
            default_target(&config, "chat.bsky.convo.listConvos"),
            Err(ProxyError::HeaderRequired(_))
        ));
        assert!(matches!(
            default_target(&config, "com.example.thing"),
            Err(ProxyError::NotImplemented(_))
        ));
        let bare = Config::from_toml_str("", &|_: &str| None).unwrap();
        assert!(matches!(
            default_target(&bare, "app.bsky.feed.getTimeline"),
            Err(ProxyError::NotImplemented(_))
        ));
        assert!(check_forwardable("com.atproto.admin.sendEmail").is_err());
        // Only the origin of a URL is kept.
        let named = Target::from_document("https://h.example:8443/x?y#z", "did:web:h#s".into());
        assert_eq!(named.unwrap().endpoint, "https://h.example:8443");
        assert!(Target::from_document("ftp://h.example", String::new()).is_none());
        assert!(Target::from_document("not a url", String::new()).is_none());
        assert!(check_forwardable("app.bsky.feed.getTimeline").is_ok());
    }
}
