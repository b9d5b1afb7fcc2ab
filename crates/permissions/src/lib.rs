//! atproto OAuth permission scopes (atproto.com/specs/permission): what an OAuth grant lets an
//! app do, parsed from the space-separated `scope` string and asked one question at a time
//! ("may it create records in this collection?").
//!
//! Owns the scope grammar (`resource:positional?name=value&...`, percent-encoded, repeatable
//! parameters), the matching rules, the transition scopes, the expansion of permission sets
//! (`include:`) from the lexicon document the caller fetched, and the consent-page wording.
//! Must not do I/O, look at tokens or HTTP, or know which XRPC method needs what: the server
//! asks, this crate answers.
//!
//! Resources:
//! - `repo:<collection|*>?action=create|update|delete` (all three when none is given).
//! - `rpc:<method|*>?aud=<did#service|*>` (the audience is required; both wildcards together
//!   are refused).
//! - `blob:<mime pattern>` (`*/*`, `image/*`, `video/mp4`; `accept` repeats).
//! - `identity:handle` or `identity:*`.
//! - `account:email|repo|status?action=read|manage` (read when none is given; manage covers
//!   read).
//! - `include:<nsid>?aud=<did#service>`: a permission set, expanded by
//!   [`ScopeSet::expand_include`].
//! - `atproto` (every atproto grant carries it), and the transition scopes:
//!   `transition:generic` (what an app password could do: every collection, every blob, any
//!   method at any service except `chat.bsky.*`), `transition:chat.bsky` (the `chat.bsky.*`
//!   methods), `transition:email` (reading the account's e-mail).
//!
//! Any positional part may also be given as its named parameter (`repo?collection=a&
//! collection=b`). A scope whose resource this crate does not know is kept (so it is echoed
//! back) but grants nothing; a known resource with malformed parameters is an error.

use std::collections::BTreeSet;
use std::fmt;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use serde_json::Value;

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("malformed scope {scope:?}: {why}")]
    Malformed { scope: String, why: String },
    #[error("permission set {nsid}: {why}")]
    PermissionSet { nsid: String, why: String },
}

fn malformed(scope: &str, why: impl Into<String>) -> ScopeError {
    ScopeError::Malformed {
        scope: scope.to_owned(),
        why: why.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RepoAction {
    Create,
    Update,
    Delete,
}

impl RepoAction {
    const ALL: [RepoAction; 3] = [RepoAction::Create, RepoAction::Update, RepoAction::Delete];

    fn parse(s: &str) -> Option<RepoAction> {
        match s {
            "create" => Some(RepoAction::Create),
            "update" => Some(RepoAction::Update),
            "delete" => Some(RepoAction::Delete),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            RepoAction::Create => "create",
            RepoAction::Update => "update",
            RepoAction::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IdentityAttr {
    Handle,
    /// `*`: the handle and the whole DID document.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccountAttr {
    Email,
    Repo,
    Status,
}

impl AccountAttr {
    fn as_str(self) -> &'static str {
        match self {
            AccountAttr::Email => "email",
            AccountAttr::Repo => "repo",
            AccountAttr::Status => "status",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccountAction {
    Read,
    /// Covers `Read`.
    Manage,
}

/// A requested or granted `include:` scope still to be expanded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IncludeScope {
    pub nsid: String,
    pub aud: Option<String>,
}

/// One permission.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Permission {
    Atproto,
    TransitionGeneric,
    TransitionChat,
    TransitionEmail,
    Repo {
        collection: String,
        actions: BTreeSet<RepoAction>,
    },
    Rpc {
        lxm: String,
        aud: String,
    },
    Blob {
        accept: String,
    },
    Identity(IdentityAttr),
    Account {
        attr: AccountAttr,
        action: AccountAction,
    },
    Include(IncludeScope),
    /// A scope this crate does not understand: kept, grants nothing.
    Unknown(String),
}

/// Characters percent-encoded in a scope's values when it is written out.
const VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'%')
    .add(b'&')
    .add(b'?')
    .add(b'=')
    .add(b'+')
    .add(b'#');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, VALUE).to_string()
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Permission::Atproto => f.write_str("atproto"),
            Permission::TransitionGeneric => f.write_str("transition:generic"),
            Permission::TransitionChat => f.write_str("transition:chat.bsky"),
            Permission::TransitionEmail => f.write_str("transition:email"),
            Permission::Repo {
                collection,
                actions,
            } => {
                write!(f, "repo:{}", enc(collection))?;
                if actions.len() < RepoAction::ALL.len() {
                    let actions: Vec<_> = actions
                        .iter()
                        .map(|a| format!("action={}", a.as_str()))
                        .collect();
                    write!(f, "?{}", actions.join("&"))?;
                }
                Ok(())
            }
            Permission::Rpc { lxm, aud } => write!(f, "rpc:{}?aud={}", enc(lxm), enc(aud)),
            Permission::Blob { accept } => write!(f, "blob:{}", enc(accept)),
            Permission::Identity(IdentityAttr::Handle) => f.write_str("identity:handle"),
            Permission::Identity(IdentityAttr::All) => f.write_str("identity:*"),
            Permission::Account { attr, action } => {
                write!(f, "account:{}", attr.as_str())?;
                if *action == AccountAction::Manage {
                    f.write_str("?action=manage")?;
                }
                Ok(())
            }
            Permission::Include(IncludeScope { nsid, aud }) => {
                write!(f, "include:{}", enc(nsid))?;
                if let Some(aud) = aud {
                    write!(f, "?aud={}", enc(aud))?;
                }
                Ok(())
            }
            Permission::Unknown(s) => f.write_str(s),
        }
    }
}

/// A scope's parts: the resource, the positional value, and the named parameters.
struct Parts {
    resource: String,
    positional: Option<String>,
    params: Vec<(String, String)>,
}

fn decode(scope: &str, s: &str) -> Result<String, ScopeError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| malformed(scope, "bad percent-encoding"))
}

fn split(scope: &str) -> Result<Parts, ScopeError> {
    let (head, query) = match scope.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (scope, None),
    };
    let (resource, positional) = match head.split_once(':') {
        Some((r, p)) => (r, Some(decode(scope, p)?)),
        None => (head, None),
    };
    let mut params = Vec::new();
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| malformed(scope, format!("parameter {pair:?} has no value")))?;
        params.push((decode(scope, name)?, decode(scope, value)?));
    }
    Ok(Parts {
        resource: resource.to_owned(),
        positional: positional.filter(|p| !p.is_empty()),
        params,
    })
}

impl Parts {
    /// The values of the positional part (named `name`) and of its repeated named parameter.
    fn values(&self, scope: &str, name: &str) -> Result<Vec<String>, ScopeError> {
        let named: Vec<String> = self
            .params
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect();
        match (&self.positional, named.is_empty()) {
            (Some(_), false) => Err(malformed(scope, format!("{name} given twice"))),
            (Some(p), true) => Ok(vec![p.clone()]),
            (None, _) => Ok(named),
        }
    }

    fn named(&self, name: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn only(&self, scope: &str, allowed: &[&str]) -> Result<(), ScopeError> {
        match self
            .params
            .iter()
            .find(|(n, _)| !allowed.contains(&n.as_str()))
        {
            Some((n, _)) => Err(malformed(scope, format!("unknown parameter {n}"))),
            None => Ok(()),
        }
    }
}

/// An NSID-shaped name: at least three dot-separated segments of letters, digits and hyphens.
fn is_nsid(s: &str) -> bool {
    let segments: Vec<&str> = s.split('.').collect();
    segments.len() >= 3
        && s.len() <= 317
        && segments.iter().all(|seg| {
            !seg.is_empty()
                && seg.len() <= 63
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `did:method:id`, optionally `#service`.
fn is_audience(s: &str) -> bool {
    let did = s.split('#').next().unwrap_or_default();
    let mut parts = did.splitn(3, ':');
    matches!((parts.next(), parts.next(), parts.next()), (Some("did"), Some(m), Some(id)) if !m.is_empty() && !id.is_empty())
        && s.matches('#').count() <= 1
}

fn is_mime_pattern(s: &str) -> bool {
    match s.split_once('/') {
        Some(("*", "*")) => true,
        Some((t, "*")) => {
            !t.is_empty()
                && t != "*"
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-+.".contains(&b))
        }
        Some((t, sub)) => {
            !t.is_empty()
                && !sub.is_empty()
                && t != "*"
                && !sub.contains('*')
                && format!("{t}{sub}")
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-+.".contains(&b))
        }
        None => false,
    }
}

fn parse_one(scope: &str) -> Result<Vec<Permission>, ScopeError> {
    match scope {
        "atproto" => return Ok(vec![Permission::Atproto]),
        "transition:generic" => return Ok(vec![Permission::TransitionGeneric]),
        "transition:chat.bsky" => return Ok(vec![Permission::TransitionChat]),
        "transition:email" => return Ok(vec![Permission::TransitionEmail]),
        _ => {}
    }
    let parts = split(scope)?;
    match parts.resource.as_str() {
        "repo" => {
            parts.only(scope, &["collection", "action"])?;
            let collections = parts.values(scope, "collection")?;
            if collections.is_empty() {
                return Err(malformed(scope, "no collection"));
            }
            let mut actions = BTreeSet::new();
            for a in parts.named("action") {
                actions.insert(
                    RepoAction::parse(a)
                        .ok_or_else(|| malformed(scope, format!("unknown action {a}")))?,
                );
            }
            if actions.is_empty() {
                actions.extend(RepoAction::ALL);
            }
            collections
                .into_iter()
                .map(|c| match c == "*" || is_nsid(&c) {
                    true => Ok(Permission::Repo {
                        collection: c,
                        actions: actions.clone(),
                    }),
                    false => Err(malformed(scope, format!("{c:?} is not a collection NSID"))),
                })
                .collect()
        }
        "rpc" => {
            parts.only(scope, &["lxm", "aud"])?;
            let lxms = parts.values(scope, "lxm")?;
            let auds = parts.named("aud");
            let [aud] = auds.as_slice() else {
                return Err(malformed(scope, "exactly one aud is required"));
            };
            if *aud != "*" && !is_audience(aud) {
                return Err(malformed(scope, "aud must be a DID (with a #service) or *"));
            }
            if lxms.is_empty() {
                return Err(malformed(scope, "no method"));
            }
            lxms.into_iter()
                .map(|lxm| {
                    if lxm == "*" && *aud == "*" {
                        Err(malformed(
                            scope,
                            "rpc:* may not be granted at every audience",
                        ))
                    } else if lxm != "*" && !is_nsid(&lxm) {
                        Err(malformed(scope, format!("{lxm:?} is not a method NSID")))
                    } else {
                        Ok(Permission::Rpc {
                            lxm,
                            aud: (*aud).to_owned(),
                        })
                    }
                })
                .collect()
        }
        "blob" => {
            parts.only(scope, &["accept"])?;
            let accepts = parts.values(scope, "accept")?;
            if accepts.is_empty() {
                return Err(malformed(scope, "no accept pattern"));
            }
            accepts
                .into_iter()
                .map(|a| match is_mime_pattern(&a) {
                    true => Ok(Permission::Blob {
                        accept: a.to_ascii_lowercase(),
                    }),
                    false => Err(malformed(
                        scope,
                        format!("{a:?} is not a MIME type pattern"),
                    )),
                })
                .collect()
        }
        "identity" => {
            parts.only(scope, &["attr"])?;
            match parts.values(scope, "attr")?.as_slice() {
                [a] if a == "handle" => Ok(vec![Permission::Identity(IdentityAttr::Handle)]),
                [a] if a == "*" => Ok(vec![Permission::Identity(IdentityAttr::All)]),
                _ => Err(malformed(scope, "identity takes handle or *")),
            }
        }
        "account" => {
            parts.only(scope, &["attr", "action"])?;
            let attr = match parts.values(scope, "attr")?.as_slice() {
                [a] if a == "email" => AccountAttr::Email,
                [a] if a == "repo" => AccountAttr::Repo,
                [a] if a == "status" => AccountAttr::Status,
                _ => return Err(malformed(scope, "account takes email, repo or status")),
            };
            let action = match parts.named("action").as_slice() {
                [] | ["read"] => AccountAction::Read,
                ["manage"] => AccountAction::Manage,
                _ => return Err(malformed(scope, "action must be read or manage")),
            };
            Ok(vec![Permission::Account { attr, action }])
        }
        "include" => {
            parts.only(scope, &["nsid", "aud"])?;
            let nsids = parts.values(scope, "nsid")?;
            let [nsid] = nsids.as_slice() else {
                return Err(malformed(scope, "include names one permission set"));
            };
            if !is_nsid(nsid) {
                return Err(malformed(scope, "not an NSID"));
            }
            let aud = match parts.named("aud").as_slice() {
                [] => None,
                [aud] if is_audience(aud) => Some((*aud).to_owned()),
                _ => return Err(malformed(scope, "aud must be one DID with a #service")),
            };
            Ok(vec![Permission::Include(IncludeScope {
                nsid: nsid.clone(),
                aud,
            })])
        }
        _ => Ok(vec![Permission::Unknown(scope.to_owned())]),
    }
}

/// `image/png` against `image/*`, `*/*` or `image/png` (case-insensitive).
fn mime_matches(pattern: &str, mime: &str) -> bool {
    let mime = mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match pattern.split_once('/') {
        Some(("*", "*")) => true,
        Some((t, "*")) => mime.split_once('/').is_some_and(|(mt, _)| mt == t),
        _ => pattern == mime,
    }
}

/// Whether an audience grant covers a requested audience. A grant for a DID without a service
/// id covers every service of that DID.
fn aud_matches(granted: &str, requested: &str) -> bool {
    granted == "*"
        || granted == requested
        || (!granted.contains('#') && requested.split('#').next() == Some(granted))
}

/// A permission set's own title and detail, shown for its permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SetInfo {
    nsid: String,
    title: Option<String>,
    detail: Option<String>,
}

/// The parsed scope of a request or a grant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet {
    permissions: BTreeSet<Permission>,
    /// What expanded permission sets grant (not part of the scope string).
    from_sets: BTreeSet<Permission>,
    /// The expanded permission sets, for display.
    sets: Vec<SetInfo>,
    /// The include scopes already expanded (kept in the scope string).
    expanded: BTreeSet<IncludeScope>,
}

impl ScopeSet {
    /// Parses a space-separated scope string.
    pub fn parse(scope: &str) -> Result<ScopeSet, ScopeError> {
        let mut set = ScopeSet::default();
        for one in scope.split(' ').filter(|s| !s.is_empty()) {
            set.permissions.extend(parse_one(one)?);
        }
        Ok(set)
    }

    fn has(&self, p: &Permission) -> bool {
        self.permissions.contains(p)
    }

    /// Everything granted: the scope's own permissions and what its sets expanded to.
    fn all(&self) -> impl Iterator<Item = &Permission> {
        self.permissions.iter().chain(self.from_sets.iter())
    }

    pub fn has_atproto(&self) -> bool {
        self.has(&Permission::Atproto)
    }

    pub fn has_transition_generic(&self) -> bool {
        self.has(&Permission::TransitionGeneric)
    }

    pub fn has_transition_chat(&self) -> bool {
        self.has(&Permission::TransitionChat)
    }

    pub fn has_transition_email(&self) -> bool {
        self.has(&Permission::TransitionEmail)
    }

    pub fn allows_repo(&self, collection: &str, action: RepoAction) -> bool {
        self.has_transition_generic()
            || self.all().any(|p| {
                matches!(p, Permission::Repo { collection: c, actions } if (c == "*" || c == collection) && actions.contains(&action))
            })
    }

    pub fn allows_rpc(&self, lxm: &str, aud: &str) -> bool {
        let chat = lxm.starts_with("chat.bsky.");
        if chat && self.has_transition_chat() {
            return true;
        }
        if !chat && self.has_transition_generic() {
            return true;
        }
        self.all().any(|p| {
            matches!(p, Permission::Rpc { lxm: l, aud: a } if (l == "*" || l == lxm) && aud_matches(a, aud))
        })
    }

    pub fn allows_blob(&self, mime: &str) -> bool {
        self.has_transition_generic()
            || self
                .all()
                .any(|p| matches!(p, Permission::Blob { accept } if mime_matches(accept, mime)))
    }

    pub fn allows_identity(&self, attr: IdentityAttr) -> bool {
        self.all().any(|p| match p {
            Permission::Identity(IdentityAttr::All) => true,
            Permission::Identity(granted) => *granted == attr,
            _ => false,
        })
    }

    pub fn allows_account(&self, attr: AccountAttr, action: AccountAction) -> bool {
        if attr == AccountAttr::Email
            && action == AccountAction::Read
            && self.has_transition_email()
        {
            return true;
        }
        self.all().any(|p| {
            matches!(p, Permission::Account { attr: a, action: granted } if *a == attr && (*granted == AccountAction::Manage || *granted == action))
        })
    }

    /// The `include:` scopes not expanded yet.
    pub fn includes(&self) -> Vec<IncludeScope> {
        self.permissions
            .iter()
            .filter_map(|p| match p {
                Permission::Include(i) if !self.expanded.contains(i) => Some(i.clone()),
                _ => None,
            })
            .collect()
    }

    /// Expands a permission set from its lexicon document (`defs.main.type` is
    /// `permission-set`). A set may only grant collections and methods under its own NSID's
    /// namespace (the NSID without its last segment), so a set published by one domain cannot
    /// hand out another's. `rpc` entries with `inheritAud` take the include's `aud`.
    pub fn expand_include(
        &mut self,
        include: &IncludeScope,
        lexicon: &Value,
    ) -> Result<(), ScopeError> {
        let fail = |why: &str| ScopeError::PermissionSet {
            nsid: include.nsid.clone(),
            why: why.to_owned(),
        };
        if lexicon.get("id").and_then(Value::as_str) != Some(include.nsid.as_str()) {
            return Err(fail("the lexicon's id is not the set's NSID"));
        }
        let main = lexicon
            .pointer("/defs/main")
            .ok_or_else(|| fail("no main definition"))?;
        if main.get("type").and_then(Value::as_str) != Some("permission-set") {
            return Err(fail("not a permission-set"));
        }
        let namespace = include
            .nsid
            .rsplit_once('.')
            .map(|(ns, _)| ns)
            .unwrap_or_default();
        let in_namespace = |nsid: &str| {
            nsid.strip_prefix(namespace)
                .is_some_and(|rest| rest.starts_with('.'))
        };
        let strings = |v: Option<&Value>| -> Vec<String> {
            match v {
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            }
        };
        let mut granted = Vec::new();
        for entry in main
            .get("permissions")
            .and_then(Value::as_array)
            .ok_or_else(|| fail("no permissions"))?
        {
            match entry.get("resource").and_then(Value::as_str) {
                Some("repo") => {
                    let collections = strings(entry.get("collection"));
                    if collections.is_empty()
                        || collections.iter().any(|c| !is_nsid(c) || !in_namespace(c))
                    {
                        return Err(fail(
                            "a repo permission names a collection outside the set's namespace",
                        ));
                    }
                    let mut actions = BTreeSet::new();
                    for a in strings(entry.get("action")) {
                        actions.insert(
                            RepoAction::parse(&a).ok_or_else(|| fail("unknown repo action"))?,
                        );
                    }
                    if actions.is_empty() {
                        actions.extend(RepoAction::ALL);
                    }
                    granted.extend(collections.into_iter().map(|collection| Permission::Repo {
                        collection,
                        actions: actions.clone(),
                    }));
                }
                Some("rpc") => {
                    let lxms = strings(entry.get("lxm"));
                    if lxms.is_empty() || lxms.iter().any(|l| !is_nsid(l) || !in_namespace(l)) {
                        return Err(fail(
                            "an rpc permission names a method outside the set's namespace",
                        ));
                    }
                    let inherit = entry
                        .get("inheritAud")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    let aud = match (inherit, entry.get("aud").and_then(Value::as_str)) {
                        (true, _) => include
                            .aud
                            .clone()
                            .ok_or_else(|| fail("inheritAud, but the include has no aud"))?,
                        (false, Some(aud)) if aud == "*" || is_audience(aud) => aud.to_owned(),
                        _ => return Err(fail("an rpc permission needs an aud")),
                    };
                    granted.extend(lxms.into_iter().map(|lxm| Permission::Rpc {
                        lxm,
                        aud: aud.clone(),
                    }));
                }
                // Sets may only hold repo and rpc permissions (blob, identity, account need
                // their own scopes, asked for by name).
                _ => {
                    return Err(fail(
                        "a permission set may only hold repo and rpc permissions",
                    ));
                }
            }
        }
        self.from_sets.extend(granted);
        self.expanded.insert(include.clone());
        let text = |k: &str| main.get(k).and_then(Value::as_str).map(str::to_owned);
        self.sets.push(SetInfo {
            nsid: include.nsid.clone(),
            title: text("title"),
            detail: text("detail"),
        });
        Ok(())
    }

    /// The scope as a normalized, space-separated string (stable order; expanded sets keep
    /// their `include:` scope, not what it expanded to).
    pub fn to_scope_string(&self) -> String {
        let mut out: Vec<String> = self.permissions.iter().map(|p| p.to_string()).collect();
        out.dedup();
        out.join(" ")
    }

    /// Everything granted, as explicit scopes: each expanded permission set replaced by what it
    /// grants. What a server enforces once the sets are fetched; parsing it gives the same
    /// answers as this set.
    pub fn to_expanded_scope_string(&self) -> String {
        let mut out: Vec<String> = self
            .permissions
            .iter()
            .filter(|p| !matches!(p, Permission::Include(i) if self.expanded.contains(i)))
            .chain(self.from_sets.iter())
            .map(|p| p.to_string())
            .collect();
        out.sort();
        out.dedup();
        out.join(" ")
    }

    /// Whether every permission here is also granted by `other`.
    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.all().all(|p| match p {
            Permission::Atproto | Permission::TransitionGeneric | Permission::TransitionChat | Permission::TransitionEmail => {
                other.has(p)
            }
            Permission::Repo { collection, actions } => {
                other.has_transition_generic()
                    || actions.iter().all(|a| {
                        other.all().any(|o| {
                            matches!(o, Permission::Repo { collection: c, actions: oa } if (c == "*" || c == collection) && oa.contains(a))
                        })
                    })
            }
            Permission::Rpc { lxm, aud } => {
                (lxm != "*" && aud != "*" && other.allows_rpc(lxm, aud))
                    || other.all().any(|o| {
                        matches!(o, Permission::Rpc { lxm: l, aud: a } if (l == "*" || l == lxm) && (a == "*" || a == aud))
                    })
            }
            Permission::Blob { accept } => {
                other.has_transition_generic()
                    || other.all().any(|o| match o {
                        Permission::Blob { accept: pattern } => {
                            pattern == accept || pattern == "*/*" || (pattern.ends_with("/*") && accept.split('/').next() == pattern.split('/').next() && !accept.starts_with('*'))
                        }
                        _ => false,
                    })
            }
            Permission::Identity(attr) => other.allows_identity(*attr),
            Permission::Account { attr, action } => other.allows_account(*attr, *action),
            Permission::Include(_) | Permission::Unknown(_) => other.has(p),
        })
    }

    /// What the grant lets an app do, in words for a consent page: (title, detail) pairs.
    pub fn describe(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let generic = self.has_transition_generic();
        if generic {
            out.push((
                "Use your account as you can".to_owned(),
                "Create, change and delete any of your records, upload files, and use Bluesky services on your behalf (not direct messages, not account settings)".to_owned(),
            ));
        }
        if self.has_transition_chat() {
            out.push((
                "Read and send your direct messages".to_owned(),
                "Bluesky chat, on your behalf".to_owned(),
            ));
        }
        for set in &self.sets {
            out.push((
                set.title
                    .clone()
                    .unwrap_or_else(|| format!("Permissions of {}", set.nsid)),
                set.detail.clone().unwrap_or_default(),
            ));
        }
        for p in &self.permissions {
            let line = match p {
                Permission::Repo { collection, actions } if !generic => {
                    let verbs: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
                    let what = if collection == "*" { "any kind of record".to_owned() } else { format!("{collection} records") };
                    Some((format!("Change your data: {what}"), format!("May {}", verbs.join(", "))))
                }
                Permission::Rpc { lxm, aud } if !generic || lxm.starts_with("chat.bsky.") => {
                    let what = if lxm == "*" { "any method".to_owned() } else { lxm.clone() };
                    let at = if aud == "*" { "any service".to_owned() } else { aud.clone() };
                    Some((format!("Act for you at {at}"), format!("Call {what}")))
                }
                Permission::Blob { accept } if !generic => Some(("Upload files".to_owned(), format!("Of type {accept}"))),
                Permission::Identity(IdentityAttr::Handle) => Some(("Change your handle".to_owned(), String::new())),
                Permission::Identity(IdentityAttr::All) => Some((
                    "Change your identity".to_owned(),
                    "Your handle and your DID document, including the keys that control your account".to_owned(),
                )),
                Permission::TransitionEmail => Some(("Read your email address".to_owned(), "And whether it is confirmed".to_owned())),
                Permission::Account { attr, action } => {
                    let verb = if *action == AccountAction::Manage { "Manage" } else { "Read" };
                    let what = match attr {
                        AccountAttr::Email => "your email address",
                        AccountAttr::Repo => "your repository (import and export all of it)",
                        AccountAttr::Status => "your account's status (deactivate or reactivate it)",
                    };
                    Some((format!("{verb} {what}"), String::new()))
                }
                Permission::Include(i) if !self.expanded.contains(i) => Some((format!("Permissions of {}", i.nsid), String::new())),
                _ => None,
            };
            out.extend(line);
        }
        if out.is_empty() {
            out.push((
                "Know who you are".to_owned(),
                "Your account's DID and handle; nothing else".to_owned(),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests;
