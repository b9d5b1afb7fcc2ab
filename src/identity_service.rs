//! Handles: answering which DID a handle belongs to, and changing an account's handle.
//!
//! A handle change touches three places that must agree: the account row (which makes
//! `resolveHandle` and `/.well-known/atproto-did` answer), the DID document (for did:plc, an
//! operation signed with this server's rotation key that replaces the `at://` alias), and the
//! caches of the [`IdentityResolver`]. Changes of one DID are serialized ([`lock_did`]), so two
//! concurrent requests never build operations on the same `prev`.
//!
//! Order of a change: every check first (handle syntax and TLD, service-domain rules or proof
//! that a custom domain points at the DID, not taken, this server's key still controls the
//! DID); then the account row (the UNIQUE handle column settles races with sign-ups); then the
//! PLC operation; if the directory refuses it, the row is put back. The directory's log is
//! fetched in full and verified ([`pds_plc::verify_audit_log`]) before this server signs
//! anything on top of it, so a directory that lies cannot get other data signed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use pds_identity::{
    BoxFuture, DnsResolver, HickoryDns, IdentityConfig, IdentityError, IdentityResolver,
};
use pds_plc::{PlcClient, SignedOp, UnsignedOp, is_plc_did};
use pds_syntax::{Did, Handle};

use crate::accounts::{self, AccountError};
use crate::config::Config;
use crate::state::AppContext;

/// Dev mode only: fixed DNS answers, so handles under made-up domains can be tried (and tested)
/// against local servers. Comma-separated `name=value` entries: a value that is an `IP:PORT` or
/// an IP is an address of `name` (a port there stands in for the URL's, so
/// `http://alice.example.org/` can reach a server on an ephemeral port); any other value is a
/// TXT record at `name`, e.g. `_atproto.alice.example.org=did=did:plc:...`. Listed names, and
/// `_atproto.` + each listed host, are answered from the list only; other names from the
/// system's DNS. Ignored (with a warning) outside dev mode.
pub const DEV_DNS_OVERRIDES_ENV: &str = "PDS_DEV_DNS_OVERRIDES";

/// TLDs no handle may use (the reference's list): reserved for documentation, local networks
/// or other naming systems.
const DISALLOWED_TLDS: &[&str] = &[
    "alt",
    "arpa",
    "example",
    "internal",
    "invalid",
    "local",
    "localhost",
    "onion",
];

/// What can go wrong with a handle; mapped to XRPC errors at the API edge.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("Handle TLD is invalid or disallowed")]
    DisallowedTld,
    /// A custom domain that does not point at the DID (DNS TXT or HTTPS well-known).
    #[error("External handle did not resolve to DID: {0}")]
    NotProven(String),
    /// A did:web account whose document does not claim the handle.
    #[error("DID is not properly configured for handle: {0}")]
    DidNotConfigured(String),
    /// This server's rotation key no longer controls the DID, or the DID is tombstoned.
    #[error("{0}")]
    NotControlled(String),
    /// The PLC directory failed or refused.
    #[error("the DID directory: {0}")]
    Plc(String),
    /// The outside world could not be asked (timeout, DNS or connection failure).
    #[error("could not resolve: {0}")]
    Unreachable(String),
}

/// What a client may be told about a DID-directory failure. A refusal (the directory's 400 and
/// its reason) is passed on: it explains what was wrong with the request. Anything else
/// (connection failures, odd answers) can name internal addresses, so it is logged and
/// summarised.
pub fn plc_failure_message(e: &pds_plc::PlcError) -> String {
    if e.is_rejection() {
        return e.to_string();
    }
    tracing::warn!(error = %e, "DID directory request failed");
    "the DID directory could not be reached or answered unexpectedly".to_owned()
}

impl From<pds_plc::PlcError> for HandleError {
    fn from(e: pds_plc::PlcError) -> Self {
        HandleError::Plc(plc_failure_message(&e))
    }
}

/// The server's identity resolver: the PLC directory of the configuration, dev mode's relaxed
/// address policy, the system's DNS (plus [`DEV_DNS_OVERRIDES_ENV`] in dev mode).
pub fn resolver(config: &Config) -> std::io::Result<IdentityResolver> {
    let identity = IdentityConfig::new(&config.identity.plc_url, config.server.dev_mode);
    let dns = dns(config, identity.dns_timeout)?;
    IdentityResolver::with_dns(identity, dns).map_err(std::io::Error::other)
}

/// The server's DNS: the system's, behind the dev-mode overrides if any are set.
pub fn dns(config: &Config, timeout: std::time::Duration) -> std::io::Result<Arc<dyn DnsResolver>> {
    let system = HickoryDns::from_system(timeout).map_err(std::io::Error::other)?;
    let overrides = std::env::var(DEV_DNS_OVERRIDES_ENV).unwrap_or_default();
    let dns: Arc<dyn DnsResolver> = if overrides.trim().is_empty() {
        Arc::new(system)
    } else if !config.server.dev_mode {
        tracing::warn!("{DEV_DNS_OVERRIDES_ENV} is ignored outside dev mode");
        Arc::new(system)
    } else {
        let overrides = DevDns::parse(&overrides, system)
            .map_err(|e| std::io::Error::other(format!("{DEV_DNS_OVERRIDES_ENV}: {e}")))?;
        tracing::warn!(names = ?overrides.names(), "dev mode: fixed DNS answers");
        Arc::new(overrides)
    };
    Ok(dns)
}

/// Fixed answers in front of the system DNS (see [`DEV_DNS_OVERRIDES_ENV`]).
struct DevDns {
    addrs: HashMap<String, Vec<SocketAddr>>,
    txt: HashMap<String, Vec<String>>,
    system: HickoryDns,
}

impl DevDns {
    fn parse(spec: &str, system: HickoryDns) -> Result<DevDns, String> {
        let mut dns = DevDns {
            addrs: HashMap::new(),
            txt: HashMap::new(),
            system,
        };
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, value) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?} is not name=value"))?;
            let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
            if name.is_empty() {
                return Err(format!("{entry:?} has no name"));
            }
            let value = value.trim();
            let addr = value
                .parse::<SocketAddr>()
                .ok()
                .or_else(|| value.parse().ok().map(|ip| SocketAddr::new(ip, 0)));
            match addr {
                Some(addr) => dns.addrs.entry(name).or_default().push(addr),
                None => dns.txt.entry(name).or_default().push(value.to_owned()),
            }
        }
        Ok(dns)
    }

    fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .addrs
            .keys()
            .chain(self.txt.keys())
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    fn owns(&self, name: &str) -> bool {
        let listed = |n: &str| self.addrs.contains_key(n) || self.txt.contains_key(n);
        listed(name) || name.strip_prefix("_atproto.").is_some_and(listed)
    }
}

impl DnsResolver for DevDns {
    fn lookup_txt<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, IdentityError>> {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        if self.owns(&key) {
            let answer = self.txt.get(&key).cloned().unwrap_or_default();
            return Box::pin(async move { Ok(answer) });
        }
        self.system.lookup_txt(name)
    }

    fn lookup_ip<'a>(
        &'a self,
        host: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SocketAddr>, IdentityError>> {
        let key = host.trim_end_matches('.').to_ascii_lowercase();
        if self.owns(&key) {
            let answer = self.addrs.get(&key).cloned().unwrap_or_default();
            return Box::pin(async move { Ok(answer) });
        }
        self.system.lookup_ip(host)
    }
}

/// Whether `handle` (lowercase) is under one of this server's handle domains, i.e. one only
/// this server can hand out. The bare domain (`example.com` for `.example.com`) counts too.
pub fn is_service_handle(config: &Config, handle: &str) -> bool {
    config
        .identity
        .handle_domains
        .iter()
        .any(|d| handle.ends_with(d.as_str()) || Some(handle) == d.strip_prefix('.'))
}

/// A handle as a request gave it: valid syntax, lowercased, and not under a disallowed TLD.
pub fn parse_handle(requested: &str) -> Result<Handle, HandleError> {
    let handle = Handle::new(requested)
        .map_err(|e| AccountError::InvalidHandle(e.to_string()))?
        .normalized();
    let tld = handle.as_str().rsplit('.').next().unwrap_or_default();
    if DISALLOWED_TLDS.contains(&tld) {
        return Err(HandleError::DisallowedTld);
    }
    Ok(handle)
}

/// The DID `handle` belongs to: an active account here answers from the account table; a
/// handle under this server's domains that no active account has is not found without asking
/// anyone; any other is resolved and verified both ways (the DID document must claim the
/// handle back). `Ok(None)`: not found. `Err(Unreachable)`: the outside world did not answer.
pub async fn resolve_handle(
    ctx: &AppContext,
    handle: &Handle,
) -> Result<Option<String>, HandleError> {
    let handle = handle.normalized();
    let key = handle.as_str().to_owned();
    let hosted = ctx
        .db
        .read(move |store| accounts::by_handle(store.connection(), &key))
        .await?;
    if let Some(account) = hosted.filter(|a| a.active()) {
        return Ok(Some(account.did));
    }
    if is_service_handle(&ctx.config, handle.as_str()) {
        return Ok(None);
    }
    match ctx.id_resolver.resolve_handle_verified(&handle).await {
        Ok(did) => Ok(Some(did.into_string())),
        Err(
            e @ (IdentityError::Timeout(_) | IdentityError::Dns(_) | IdentityError::Transport(_)),
        ) => Err(HandleError::Unreachable(e.to_string())),
        Err(e) => {
            tracing::debug!(%handle, error = %e, "handle does not resolve");
            Ok(None)
        }
    }
}

/// Changes `did`'s handle to `requested` (see the module documentation for the order of
/// things). Returns the handle as stored (lowercase). Asking for the handle the account already
/// has re-announces it and changes nothing.
pub async fn update_handle(
    ctx: &AppContext,
    did: &str,
    requested: &str,
) -> Result<String, HandleError> {
    let handle = parse_handle(requested)?;
    let new = handle.as_str().to_owned();
    let _serialized = lock_did(did).await;

    let account = {
        let did = did.to_owned();
        ctx.db
            .read(move |store| accounts::not_taken_down(store.connection(), &did))
            .await?
    };
    if is_service_handle(&ctx.config, &new) {
        accounts::service::check_new_handle(ctx, &new)?;
    } else {
        prove_custom_domain(ctx, did, &handle).await?;
    }
    let holder = {
        let new = new.clone();
        ctx.db
            .read(move |store| accounts::by_handle(store.connection(), &new))
            .await?
    };
    match holder {
        Some(holder) if holder.did != did => return Err(AccountError::HandleTaken.into()),
        Some(_) => {
            identity_changed(ctx, did, None, &new).await;
            return Ok(new);
        }
        None => {}
    }

    // Built (and the DID's current state verified) before anything changes here.
    let plc_update = if is_plc_did(did) {
        plc_handle_update(ctx, did, &new).await?
    } else {
        check_did_claims_handle(ctx, did, &handle).await?;
        None
    };

    set_handle(ctx, did, &new).await?;
    if let Some((plc, op)) = plc_update
        && let Err(e) = plc.submit(did, &op).await
    {
        // Put the account back as the DID document still has it.
        if let Err(revert) = set_handle(ctx, did, &account.handle).await {
            tracing::error!(%did, handle = %account.handle, error = %revert,
                "the directory refused a handle change and the old handle could not be restored");
        }
        return Err(e.into());
    }
    identity_changed(ctx, did, Some(&account.handle), &new).await;
    Ok(new)
}

async fn set_handle(ctx: &AppContext, did: &str, handle: &str) -> Result<(), AccountError> {
    let (did, handle) = (did.to_owned(), handle.to_owned());
    ctx.db
        .write(move |w| accounts::set_handle(w.tx.connection(), &did, &handle))
        .await
}

/// Everything that must follow a change of `did`'s handle (or of its DID document): the
/// resolver's cached answers are dropped, so this server's own resolutions see the change now,
/// and the firehose carries an `#identity` event so that relays and AppViews re-resolve it.
/// Called both for a real change and for a re-announcement of the same handle, as the reference
/// does (a user's way to make the network look again).
///
/// The event is sequenced after the change is complete everywhere (here and in the DID
/// directory), so it never announces a change that was then undone.
pub async fn identity_changed(ctx: &AppContext, did: &str, old_handle: Option<&str>, handle: &str) {
    if let Ok(did) = Did::new(did) {
        ctx.id_resolver.purge_did(&did);
    }
    for h in old_handle.into_iter().chain([handle]) {
        if let Ok(h) = Handle::new(h) {
            ctx.id_resolver.purge_handle(&h);
        }
    }
    let (event_did, event_handle) = (did.to_owned(), handle.to_owned());
    let sequenced = ctx
        .db
        .write(move |w| {
            crate::firehose::sequence_identity(w.tx.connection(), &event_did, Some(&event_handle))
        })
        .await;
    if let Err(e) = sequenced {
        // The change itself stands; relays learn of it at the next identity event or resync.
        tracing::error!(%did, %handle, error = %e, "could not put the #identity event on the firehose");
    }
}

/// A custom domain must point at `did` now (fetched fresh, not from the cache: the user has
/// just set it up), by DNS TXT `_atproto.<handle>` or `https://<handle>/.well-known/atproto-did`.
pub(crate) async fn prove_custom_domain(
    ctx: &AppContext,
    did: &str,
    handle: &Handle,
) -> Result<(), HandleError> {
    match ctx.id_resolver.refresh_handle(handle).await {
        Ok(found) if found.as_str() == did => Ok(()),
        Ok(found) => Err(HandleError::NotProven(format!(
            "{handle} points to {found}, not {did}"
        ))),
        Err(e) => Err(HandleError::NotProven(e.to_string())),
    }
}

/// A did:web account's document (fetched fresh) must claim the handle: only its owner can
/// change it, so there is nothing to sign here.
async fn check_did_claims_handle(
    ctx: &AppContext,
    did: &str,
    handle: &Handle,
) -> Result<(), HandleError> {
    let parsed = Did::new(did).map_err(|e| HandleError::DidNotConfigured(e.to_string()))?;
    match ctx.id_resolver.refresh_did(&parsed).await {
        Ok(doc) if doc.claims_handle(handle) => Ok(()),
        Ok(_) => Err(HandleError::DidNotConfigured(format!(
            "the DID document of {did} does not list at://{handle} first"
        ))),
        Err(e) => Err(HandleError::DidNotConfigured(e.to_string())),
    }
}

/// The signed operation that gives `did` the handle `handle`, built on the DID's current state
/// as its verified audit log shows it; `None` if the document already has that handle (a
/// retry after the directory took the operation but the account row was put back).
async fn plc_handle_update(
    ctx: &AppContext,
    did: &str,
    handle: &str,
) -> Result<Option<(PlcClient, SignedOp)>, HandleError> {
    let plc = PlcClient::new(&ctx.config.identity.plc_url)?;
    let log = plc.get_audit_log(did).await?;
    let Some((data, current)) = pds_plc::verified_state(did, &log)? else {
        return Err(HandleError::NotControlled(format!(
            "{did} has been deactivated for good (tombstoned)"
        )));
    };
    let key = &ctx.secrets.plc_rotation_key;
    if !data.rotation_keys.contains(&key.did_key()) {
        return Err(HandleError::NotControlled(format!(
            "this server's rotation key is no longer one of {did}'s: update the handle in the DID document with a key you hold"
        )));
    }
    if data.handle() == Some(handle) {
        return Ok(None);
    }
    let op = UnsignedOp::update(with_handle(data, handle), &current).sign(key);
    Ok(Some((plc, op)))
}

/// `data` with its handle (the first `at://` alias) replaced, other aliases kept in place.
fn with_handle(mut data: pds_plc::PlcData, handle: &str) -> pds_plc::PlcData {
    let alias = format!("at://{handle}");
    match data
        .also_known_as
        .iter()
        .position(|a| a.starts_with("at://"))
    {
        Some(i) => data.also_known_as[i] = alias,
        None => data.also_known_as.insert(0, alias),
    }
    data
}

/// Serializes identity changes of one DID within this process: operations built concurrently
/// on the same `prev` would fork the log. Held until the returned guard drops.
pub async fn lock_did(did: &str) -> tokio::sync::OwnedMutexGuard<()> {
    type Locks = Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>;
    static LOCKS: LazyLock<Locks> = LazyLock::new(Locks::default);
    let lock = {
        let mut locks = LOCKS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.retain(|_, lock| lock.strong_count() > 0);
        match locks.get(did).and_then(Weak::upgrade) {
            Some(lock) => lock,
            None => {
                let lock = Arc::new(tokio::sync::Mutex::new(()));
                locks.insert(did.to_owned(), Arc::downgrade(&lock));
                lock
            }
        }
    };
    lock.lock_owned().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(aka: &[&str]) -> pds_plc::PlcData {
        pds_plc::PlcData {
            also_known_as: aka.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn handle_alias_is_replaced_in_place() {
        assert_eq!(
            with_handle(
                data(&["https://x.example", "at://old.test", "at://other.test"]),
                "new.test"
            )
            .also_known_as,
            ["https://x.example", "at://new.test", "at://other.test"]
        );
        assert_eq!(
            with_handle(data(&["https://x.example"]), "new.test").also_known_as,
            ["at://new.test", "https://x.example"]
        );
    }

    #[test]
    fn handles_are_parsed_and_tlds_checked() {
        assert_eq!(
            parse_handle("Alice.Example.COM").unwrap().as_str(),
            "alice.example.com"
        );
        assert!(parse_handle("alice.test").is_ok());
        for bad in ["alice.local", "alice.example", "bob.onion", "x.localhost"] {
            assert!(
                matches!(parse_handle(bad), Err(HandleError::DisallowedTld)),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_handle("not a handle"),
            Err(HandleError::Account(AccountError::InvalidHandle(_)))
        ));
    }

    #[tokio::test]
    async fn dev_dns_answers_listed_names_only() {
        let system = HickoryDns::from_system(std::time::Duration::from_secs(1)).unwrap();
        let dns = DevDns::parse(
            " alice.example.org=127.0.0.1:8080, bob.example.org = 127.0.0.2 ,\
             _atproto.carol.example.org=did=did:plc:ewvi7nxzyoun6zhxrhs64oiz,",
            system,
        )
        .unwrap();
        assert_eq!(
            dns.lookup_ip("Alice.Example.org.").await.unwrap(),
            ["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            dns.lookup_ip("bob.example.org").await.unwrap(),
            ["127.0.0.2:0".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            dns.lookup_txt("_atproto.carol.example.org").await.unwrap(),
            ["did=did:plc:ewvi7nxzyoun6zhxrhs64oiz"]
        );
        // A listed host's _atproto name is answered (empty) without asking the system.
        assert!(
            dns.lookup_txt("_atproto.alice.example.org")
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            dns.names(),
            [
                "_atproto.carol.example.org",
                "alice.example.org",
                "bob.example.org"
            ]
        );
        let system = HickoryDns::from_system(std::time::Duration::from_secs(1)).unwrap();
        assert!(DevDns::parse("no-equals-sign", system).is_err());
    }

    #[tokio::test]
    async fn did_locks_serialize_one_did_only() {
        let first = lock_did("did:plc:a").await;
        // Another DID is not blocked.
        drop(lock_did("did:plc:b").await);
        let waiting = tokio::spawn(async { drop(lock_did("did:plc:a").await) });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.unwrap();
    }
}
