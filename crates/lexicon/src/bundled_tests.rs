//! The bundled schemas, and real `app.bsky` / `com.atproto` records and calls against them.

use pds_ipld::{Ipld, json_to_ipld};
use serde_json::{Value, json};

use crate::{BUNDLED_COUNT, BUNDLED_JSON, Catalog, Def, LexiconDoc, ValidationError};

const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const POST_URI: &str = "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3l3qo2vutsw2b";
const CBOR_CID: &str = "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq";
const BLOB_CID: &str = "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity";

fn ipld(v: &Value) -> Ipld {
    json_to_ipld(v).unwrap()
}

fn check(nsid: &str, record: Value) -> Result<(), String> {
    Catalog::bundled()
        .validate_record(nsid, &ipld(&record))
        .map_err(|e| e.to_string())
}

fn image(mime: &str, size: u64) -> Value {
    json!({"$type": "blob", "ref": {"$link": BLOB_CID}, "mimeType": mime, "size": size})
}

fn post(text: &str) -> Value {
    json!({"$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-11-21T10:00:00.000Z"})
}

#[test]
fn every_bundled_document_parses_and_resolves() {
    let catalog = Catalog::bundled();
    assert_eq!(catalog.len(), BUNDLED_COUNT);
    assert!(catalog.len() > 300, "{} documents", catalog.len());
    // Each document on its own, so a failure names it.
    let docs: Vec<Value> = serde_json::from_str(BUNDLED_JSON).unwrap();
    for doc in &docs {
        let parsed = LexiconDoc::from_value(doc).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            ["com.atproto.", "app.bsky.", "chat.bsky.", "tools.ozone."]
                .iter()
                .any(|ns| parsed.id.starts_with(ns)),
            "{}",
            parsed.id
        );
    }
    assert_eq!(catalog.unresolved_refs(), Vec::<(String, String)>::new());
    for nsid in [
        "app.bsky.feed.post",
        "app.bsky.feed.like",
        "app.bsky.feed.repost",
        "app.bsky.graph.follow",
        "app.bsky.actor.profile",
        "chat.bsky.actor.declaration",
    ] {
        assert!(matches!(catalog.def(nsid), Some(Def::Record(_))), "{nsid}");
    }
    for nsid in [
        "com.atproto.repo.createRecord",
        "com.atproto.server.createSession",
        "com.atproto.sync.subscribeRepos",
        "tools.ozone.moderation.emitEvent",
        "chat.bsky.convo.sendMessage",
    ] {
        assert!(catalog.contains(nsid), "{nsid}");
    }
}

#[test]
fn post_with_facets_reply_and_images() {
    let text = "hello @alice.test see https://example.com #rust";
    let record = json!({
        "$type": "app.bsky.feed.post",
        "text": text,
        "createdAt": "2024-11-21T10:00:00.000Z",
        "langs": ["en", "pt-BR"],
        "tags": ["atproto"],
        "facets": [
            {"index": {"byteStart": 6, "byteEnd": 17},
             "features": [{"$type": "app.bsky.richtext.facet#mention", "did": DID}]},
            {"index": {"byteStart": 22, "byteEnd": 41},
             "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com"}]},
            {"index": {"byteStart": 42, "byteEnd": 47},
             "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "rust"}]},
        ],
        "reply": {
            "root": {"uri": POST_URI, "cid": CBOR_CID},
            "parent": {"uri": POST_URI, "cid": CBOR_CID},
        },
        "embed": {
            "$type": "app.bsky.embed.images",
            "images": [
                {"alt": "a cat", "image": image("image/jpeg", 123_456),
                 "aspectRatio": {"width": 4, "height": 3}},
                {"alt": "", "image": image("image/png", 2_000_000)},
            ],
        },
        "labels": {"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "nudity"}]},
    });
    assert_eq!(check("app.bsky.feed.post", record.clone()), Ok(()));
    assert_eq!(
        crate::validate_record(Catalog::bundled(), "app.bsky.feed.post", &ipld(&record)),
        Ok(())
    );

    let mut bad = record.clone();
    bad["facets"][1]["features"][0]["uri"] = json!("not a uri");
    assert_eq!(
        check("app.bsky.feed.post", bad),
        Err("Record/facets/1/features/0/uri must be a uri".into())
    );
    let mut bad = record.clone();
    bad["embed"]["images"][1]["image"] = image("image/png", 2_000_001);
    let err = check("app.bsky.feed.post", bad).unwrap_err();
    assert!(
        err.starts_with("Record/embed/images/1/image is 2000001 bytes"),
        "{err}"
    );
    let mut bad = record.clone();
    bad["embed"]["images"][0]["image"] = image("video/mp4", 10);
    let err = check("app.bsky.feed.post", bad).unwrap_err();
    assert!(
        err.starts_with("Record/embed/images/0/image has mimeType"),
        "{err}"
    );
    let mut bad = record.clone();
    bad["langs"] = json!(["en", "de", "fr", "es"]);
    assert_eq!(
        check("app.bsky.feed.post", bad),
        Err("Record/langs must not have more than 3 elements".into())
    );
    let mut bad = record;
    bad["reply"]["root"]["cid"] = json!("nope");
    assert_eq!(
        check("app.bsky.feed.post", bad),
        Err("Record/reply/root/cid must be a cid string".into())
    );
    // An open union: an embed type this catalog does not know is accepted unchecked.
    let mut other = post("x");
    other["embed"] = json!({"$type": "com.example.embed.future", "anything": [1, 2]});
    assert_eq!(check("app.bsky.feed.post", other), Ok(()));
}

#[test]
fn post_text_limits() {
    let ok = "a".repeat(300);
    assert_eq!(check("app.bsky.feed.post", post(&ok)), Ok(()));
    assert_eq!(
        check("app.bsky.feed.post", post(&"a".repeat(301))),
        Err("Record/text must not be longer than 300 graphemes".into())
    );
    // 300 ZWJ family emoji are 300 graphemes but 7500 bytes: over maxLength (3000 bytes).
    let families = "👩‍👩‍👦‍👦".repeat(300);
    assert_eq!(
        check("app.bsky.feed.post", post(&families)),
        Err("Record/text must not be longer than 3000 characters".into())
    );
    // 120 of them (3000 bytes exactly) are fine; 301 flags are not (301 graphemes, 2408 bytes).
    assert_eq!(check("app.bsky.feed.post", post(&"👩‍👩‍👦‍👦".repeat(120))), Ok(()));
    assert_eq!(
        check("app.bsky.feed.post", post(&"🇩🇪".repeat(301))),
        Err("Record/text must not be longer than 300 graphemes".into())
    );
    let mut missing = post("x");
    missing.as_object_mut().unwrap().remove("createdAt");
    assert_eq!(
        check("app.bsky.feed.post", missing),
        Err("Record must have the property \"createdAt\"".into())
    );
    let mut bad_date = post("x");
    bad_date["createdAt"] = json!("yesterday");
    assert_eq!(
        check("app.bsky.feed.post", bad_date),
        Err(
            "Record/createdAt must be a valid atproto datetime (both RFC-3339 and ISO-8601)".into()
        )
    );
}

#[test]
fn like_and_follow() {
    let like = |uri: &str| {
        json!({"$type": "app.bsky.feed.like", "createdAt": "2024-11-21T10:00:00Z",
            "subject": {"uri": uri, "cid": CBOR_CID}})
    };
    assert_eq!(check("app.bsky.feed.like", like(POST_URI)), Ok(()));
    assert_eq!(
        check(
            "app.bsky.feed.like",
            like("https://bsky.app/profile/x/post/y")
        ),
        Err("Record/subject/uri must be a valid at-uri".into())
    );
    assert_eq!(
        check("app.bsky.feed.like", like("at://")),
        Err("Record/subject/uri must be a valid at-uri".into())
    );
    let follow = json!({"$type": "app.bsky.graph.follow", "subject": DID,
        "createdAt": "2024-11-21T10:00:00Z"});
    assert_eq!(check("app.bsky.graph.follow", follow), Ok(()));
    let follow = json!({"$type": "app.bsky.graph.follow", "subject": "alice.test",
        "createdAt": "2024-11-21T10:00:00Z"});
    assert_eq!(
        check("app.bsky.graph.follow", follow),
        Err("Record/subject must be a valid did".into())
    );
}

#[test]
fn profile() {
    let profile = json!({
        "$type": "app.bsky.actor.profile",
        "displayName": "Alice 🏳️‍🌈",
        "description": "Writes Rust.\nLikes cats.",
        "avatar": image("image/png", 100_000),
        "banner": image("image/jpeg", 900_000),
        "labels": {"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "!no-unauthenticated"}]},
        "pinnedPost": {"uri": POST_URI, "cid": CBOR_CID},
        "createdAt": "2024-11-21T10:00:00Z",
    });
    assert_eq!(check("app.bsky.actor.profile", profile.clone()), Ok(()));
    // Every property is optional.
    assert_eq!(
        check(
            "app.bsky.actor.profile",
            json!({"$type": "app.bsky.actor.profile"})
        ),
        Ok(())
    );

    let mut bad = profile.clone();
    bad["displayName"] = json!("x".repeat(65));
    assert_eq!(
        check("app.bsky.actor.profile", bad),
        Err("Record/displayName must not be longer than 64 graphemes".into())
    );
    let mut bad = profile.clone();
    bad["avatar"] = image("image/gif", 1);
    let err = check("app.bsky.actor.profile", bad).unwrap_err();
    assert!(
        err.starts_with("Record/avatar has mimeType \"image/gif\""),
        "{err}"
    );
    let mut bad = profile;
    bad["avatar"] = json!({"$link": BLOB_CID});
    assert_eq!(
        check("app.bsky.actor.profile", bad),
        Err("Record/avatar should be a blob ref".into())
    );

    let c = Catalog::bundled();
    assert_eq!(
        c.validate_record_key("app.bsky.actor.profile", "self"),
        Ok(())
    );
    assert!(
        c.validate_record_key("app.bsky.actor.profile", "other")
            .is_err()
    );
    assert_eq!(
        c.validate_record_key("app.bsky.feed.post", "3l3qo2vutsw2b"),
        Ok(())
    );
    assert_eq!(
        c.validate_record_key("app.bsky.feed.post", "hello")
            .unwrap_err()
            .to_string(),
        "Record key must be a TID for app.bsky.feed.post records"
    );
    assert!(c.validate_record_key("app.bsky.feed.post", "..").is_err());
}

#[test]
fn unknown_and_non_record_collections() {
    let c = Catalog::bundled();
    let rec = ipld(&json!({"$type": "com.example.thing", "x": 1}));
    assert_eq!(
        c.validate_record("com.example.thing", &rec),
        Err(ValidationError::UnknownLexicon {
            nsid: "com.example.thing".into()
        })
    );
    let rec = ipld(&json!({"$type": "app.bsky.feed.getTimeline"}));
    let err = c
        .validate_record("app.bsky.feed.getTimeline", &rec)
        .unwrap_err();
    assert!(!err.is_unknown_lexicon(), "{err}");
}

#[test]
fn xrpc_params_and_bodies() {
    let c = Catalog::bundled();
    let p = c
        .validate_params(
            "com.atproto.repo.listRecords",
            &[
                ("repo", "alice.test"),
                ("collection", "app.bsky.feed.post"),
                ("reverse", "true"),
            ],
        )
        .unwrap();
    assert_eq!(p.string("repo"), Some("alice.test"));
    assert_eq!(p.integer("limit"), Some(50));
    assert_eq!(p.boolean("reverse"), Some(true));
    assert_eq!(
        c.validate_params("com.atproto.repo.listRecords", &[("repo", "alice.test")])
            .unwrap_err()
            .to_string(),
        "Params must have the property \"collection\""
    );
    assert_eq!(
        c.validate_params(
            "app.bsky.feed.getPosts",
            &[("uris", POST_URI), ("uris", "bad")]
        )
        .unwrap_err()
        .to_string(),
        "uris/1 must be a valid at-uri"
    );

    let input = json!({"repo": DID, "collection": "app.bsky.feed.post", "record": post("hi")});
    assert_eq!(
        c.validate_input("com.atproto.repo.createRecord", &ipld(&input)),
        Ok(())
    );
    assert_eq!(
        c.validate_input(
            "com.atproto.repo.createRecord",
            &ipld(&json!({"repo": DID}))
        )
        .unwrap_err()
        .to_string(),
        "Input must have the property \"collection\""
    );
    assert_eq!(
        c.validate_input("com.atproto.repo.createRecord", &Ipld::Integer(1))
            .unwrap_err()
            .to_string(),
        "Input must be an object"
    );
    // Blob upload: no JSON schema, anything goes.
    assert_eq!(
        c.validate_input("com.atproto.repo.uploadBlob", &Ipld::Null),
        Ok(())
    );
    let output = json!({"did": DID, "handle": "alice.test", "accessJwt": "a", "refreshJwt": "r"});
    assert_eq!(
        c.validate_output("com.atproto.server.createSession", &ipld(&output)),
        Ok(())
    );
    let prefs = json!({"$type": "app.bsky.actor.defs#adultContentPref", "enabled": "yes"});
    assert_eq!(
        c.validate_value("app.bsky.actor.defs#adultContentPref", &ipld(&prefs))
            .unwrap_err()
            .to_string(),
        "Object/enabled must be a boolean"
    );
}

/// Throughput of record validation and the cost of loading the bundled catalog. Run with
/// `cargo test --release -p pds-lexicon -- --ignored --nocapture timing`.
#[test]
#[ignore = "timing, not a check"]
fn timing() {
    use std::time::Instant;
    let t = Instant::now();
    let docs = crate::schema::parse_many(BUNDLED_JSON).unwrap();
    let parsed = Catalog::from_docs(docs).unwrap();
    println!("parse {} bundled docs: {:?}", parsed.len(), t.elapsed());
    let c = Catalog::bundled();
    let record = ipld(&json!({
        "$type": "app.bsky.feed.post",
        "text": "hello @alice.test see https://example.com #rust, a fairly ordinary post of some length 🏳️‍🌈",
        "createdAt": "2024-11-21T10:00:00.000Z",
        "langs": ["en"],
        "facets": [
            {"index": {"byteStart": 6, "byteEnd": 17},
             "features": [{"$type": "app.bsky.richtext.facet#mention", "did": DID}]},
            {"index": {"byteStart": 22, "byteEnd": 41},
             "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com"}]},
        ],
        "reply": {"root": {"uri": POST_URI, "cid": CBOR_CID}, "parent": {"uri": POST_URI, "cid": CBOR_CID}},
        "embed": {"$type": "app.bsky.embed.images", "images": [
            {"alt": "a cat", "image": image("image/jpeg", 123_456), "aspectRatio": {"width": 4, "height": 3}}]},
    }));
    let like = ipld(
        &json!({"$type": "app.bsky.feed.like", "createdAt": "2024-11-21T10:00:00Z",
        "subject": {"uri": POST_URI, "cid": CBOR_CID}}),
    );
    for (name, nsid, value) in [
        ("post", "app.bsky.feed.post", &record),
        ("like", "app.bsky.feed.like", &like),
    ] {
        let n = 100_000;
        let t = Instant::now();
        for _ in 0..n {
            c.validate_record(nsid, std::hint::black_box(value))
                .unwrap();
        }
        let per = t.elapsed() / n;
        println!("validate {name}: {per:?} each");
    }
    for (f, s) in [
        (crate::StringFormat::Cid, CBOR_CID),
        (crate::StringFormat::AtUri, POST_URI),
        (crate::StringFormat::Datetime, "2024-11-21T10:00:00Z"),
        (crate::StringFormat::Did, DID),
    ] {
        let n = 1_000_000;
        let t = Instant::now();
        for _ in 0..n {
            crate::check_format(f, std::hint::black_box(s)).unwrap();
        }
        println!("format {f:?}: {:?} each", t.elapsed() / n);
    }
}
