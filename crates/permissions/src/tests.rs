use serde_json::json;

use super::*;

fn set(s: &str) -> ScopeSet {
    ScopeSet::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn repo_scopes_in_both_forms() {
    let s = set(
        "atproto repo:app.bsky.feed.post?action=create&action=delete repo?collection=app.bsky.feed.like&collection=app.bsky.graph.follow",
    );
    assert!(s.has_atproto());
    assert!(s.allows_repo("app.bsky.feed.post", RepoAction::Create));
    assert!(s.allows_repo("app.bsky.feed.post", RepoAction::Delete));
    assert!(!s.allows_repo("app.bsky.feed.post", RepoAction::Update));
    // No action given: all three.
    assert!(s.allows_repo("app.bsky.graph.follow", RepoAction::Update));
    assert!(!s.allows_repo("app.bsky.actor.profile", RepoAction::Create));
    assert!(set("repo:*").allows_repo("com.example.thing", RepoAction::Delete));
}

#[test]
fn rpc_scopes_need_an_audience() {
    let s = set("rpc:app.bsky.feed.getTimeline?aud=did:web:api.bsky.app%23bsky_appview");
    assert!(s.allows_rpc(
        "app.bsky.feed.getTimeline",
        "did:web:api.bsky.app#bsky_appview"
    ));
    assert!(!s.allows_rpc(
        "app.bsky.feed.getTimeline",
        "did:web:other.example#bsky_appview"
    ));
    assert!(!s.allows_rpc(
        "app.bsky.feed.getAuthorFeed",
        "did:web:api.bsky.app#bsky_appview"
    ));
    assert!(
        set("rpc:*?aud=did:web:api.bsky.app")
            .allows_rpc("app.bsky.feed.getFeed", "did:web:api.bsky.app#bsky_appview")
    );
    assert!(
        set("rpc:app.bsky.feed.getFeed?aud=*")
            .allows_rpc("app.bsky.feed.getFeed", "did:web:x.example#y")
    );
    assert!(
        ScopeSet::parse("rpc:app.bsky.feed.getFeed").is_err(),
        "aud is required"
    );
    assert!(ScopeSet::parse("rpc:*?aud=*").is_err(), "both wildcards");
    assert!(ScopeSet::parse("rpc:nope?aud=*").is_err());
}

#[test]
fn blob_identity_and_account_scopes() {
    let s = set(
        "blob:image/* blob?accept=video/mp4 identity:handle account:email account:status?action=manage",
    );
    assert!(s.allows_blob("image/png"));
    assert!(s.allows_blob("IMAGE/JPEG; charset=x"));
    assert!(s.allows_blob("video/mp4"));
    assert!(!s.allows_blob("video/webm"));
    assert!(s.allows_identity(IdentityAttr::Handle));
    assert!(!s.allows_identity(IdentityAttr::All));
    assert!(set("identity:*").allows_identity(IdentityAttr::Handle));
    assert!(s.allows_account(AccountAttr::Email, AccountAction::Read));
    assert!(!s.allows_account(AccountAttr::Email, AccountAction::Manage));
    assert!(
        s.allows_account(AccountAttr::Status, AccountAction::Read),
        "manage covers read"
    );
    assert!(!s.allows_account(AccountAttr::Repo, AccountAction::Read));
    for bad in [
        "blob:image",
        "blob:*/png",
        "identity:email",
        "account:password",
        "account:email?action=write",
        "repo:x?action=rename",
        "repo:app.bsky.feed.post?colour=red",
    ] {
        assert!(ScopeSet::parse(bad).is_err(), "{bad} must be refused");
    }
}

#[test]
fn transition_scopes() {
    let generic = set("atproto transition:generic");
    assert!(generic.allows_repo("app.bsky.feed.post", RepoAction::Create));
    assert!(generic.allows_blob("image/png"));
    assert!(generic.allows_rpc(
        "app.bsky.feed.getTimeline",
        "did:web:api.bsky.app#bsky_appview"
    ));
    assert!(!generic.allows_rpc("chat.bsky.convo.getLog", "did:web:api.bsky.chat#bsky_chat"));
    assert!(!generic.allows_identity(IdentityAttr::Handle));
    assert!(!generic.allows_account(AccountAttr::Email, AccountAction::Read));
    let chat = set("atproto transition:chat.bsky");
    assert!(chat.allows_rpc("chat.bsky.convo.getLog", "did:web:api.bsky.chat#bsky_chat"));
    assert!(!chat.allows_rpc(
        "app.bsky.feed.getTimeline",
        "did:web:api.bsky.app#bsky_appview"
    ));
    let email = set("atproto transition:email");
    assert!(email.allows_account(AccountAttr::Email, AccountAction::Read));
    assert!(!email.allows_account(AccountAttr::Email, AccountAction::Manage));
}

#[test]
fn unknown_scopes_are_kept_but_grant_nothing() {
    let s = set("atproto com.example.custom");
    assert_eq!(s.to_scope_string(), "atproto com.example.custom");
    assert!(!s.allows_repo("com.example.custom", RepoAction::Create));
}

#[test]
fn normalized_strings_round_trip() {
    let s = set(
        "repo:app.bsky.feed.post?action=create  atproto rpc:app.bsky.feed.getFeed?aud=did:web:api.bsky.app%23bsky_appview account:repo?action=manage",
    );
    let text = s.to_scope_string();
    assert_eq!(set(&text), s);
    assert!(text.starts_with("atproto "), "{text}");
    assert!(
        text.contains("aud=did:web:api.bsky.app%23bsky_appview"),
        "{text}"
    );
}

#[test]
fn subsets() {
    let registered = set("atproto transition:generic");
    assert!(set("atproto").is_subset_of(&registered));
    assert!(set("atproto repo:app.bsky.feed.post").is_subset_of(&registered));
    assert!(set("atproto blob:image/*").is_subset_of(&registered));
    assert!(!set("atproto transition:chat.bsky").is_subset_of(&registered));
    assert!(!set("atproto identity:handle").is_subset_of(&registered));
    let narrow = set("atproto repo:app.bsky.feed.like?action=create blob:image/*");
    assert!(
        set("atproto repo:app.bsky.feed.like?action=create blob:image/png").is_subset_of(&narrow)
    );
    assert!(
        !set("atproto repo:app.bsky.feed.like").is_subset_of(&narrow),
        "all actions is wider"
    );
    assert!(!set("atproto blob:*/*").is_subset_of(&narrow));
    assert!(!set("atproto transition:generic").is_subset_of(&narrow));
}

fn permission_set() -> serde_json::Value {
    json!({
        "lexicon": 1,
        "id": "com.example.calendar.basePermissions",
        "defs": {"main": {
            "type": "permission-set",
            "title": "Manage your calendar",
            "detail": "Create and change events and RSVPs",
            "permissions": [
                {"type": "permission", "resource": "repo", "collection": ["com.example.calendar.event", "com.example.calendar.rsvp"]},
                {"type": "permission", "resource": "rpc", "lxm": ["com.example.calendar.getEvents"], "inheritAud": true}
            ]
        }}
    })
}

#[test]
fn permission_sets_expand_within_their_namespace() {
    let mut s = set(
        "atproto include:com.example.calendar.basePermissions?aud=did:web:cal.example%23calendar",
    );
    let includes = s.includes();
    assert_eq!(includes.len(), 1);
    assert!(!s.allows_repo("com.example.calendar.event", RepoAction::Create));
    s.expand_include(&includes[0], &permission_set()).unwrap();
    assert!(s.includes().is_empty());
    assert!(s.allows_repo("com.example.calendar.event", RepoAction::Create));
    assert!(s.allows_rpc(
        "com.example.calendar.getEvents",
        "did:web:cal.example#calendar"
    ));
    assert!(!s.allows_rpc(
        "com.example.calendar.getEvents",
        "did:web:evil.example#calendar"
    ));
    assert!(!s.allows_repo("app.bsky.feed.post", RepoAction::Create));
    // The scope string keeps the include, not what it expanded to.
    assert_eq!(
        s.to_scope_string(),
        "atproto include:com.example.calendar.basePermissions?aud=did:web:cal.example%23calendar"
    );
    assert_eq!(s.describe()[0].0, "Manage your calendar");
    let expanded = set(&s.to_expanded_scope_string());
    assert!(expanded.includes().is_empty());
    assert!(expanded.allows_repo("com.example.calendar.rsvp", RepoAction::Delete));
    assert!(expanded.allows_rpc(
        "com.example.calendar.getEvents",
        "did:web:cal.example#calendar"
    ));

    let mut outside = permission_set();
    outside["defs"]["main"]["permissions"][0]["collection"] = json!(["app.bsky.feed.post"]);
    let mut s = set("atproto include:com.example.calendar.basePermissions");
    assert!(s.expand_include(&s.includes()[0], &outside).is_err());
    let mut wrong_type = permission_set();
    wrong_type["defs"]["main"]["type"] = json!("record");
    assert!(s.expand_include(&s.includes()[0], &wrong_type).is_err());
    // inheritAud with no aud on the include.
    assert!(
        s.expand_include(&s.includes()[0], &permission_set())
            .is_err()
    );
}

#[test]
fn descriptions_name_what_is_granted() {
    let lines = set("atproto transition:generic transition:email").describe();
    assert!(lines.iter().any(|(t, _)| t.contains("email")));
    assert!(lines.iter().any(|(t, _)| t.contains("Use your account")));
    assert_eq!(set("atproto").describe().len(), 1);
}
