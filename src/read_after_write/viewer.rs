//! Views of the account's own records, as an AppView would show them, for the records the
//! AppView has not indexed yet: post views (counts zero, as right after writing), the author's
//! basic profile, embeds, and profile views brought up to date with a newer profile record.

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};

use super::records::LocalRecord;
use crate::proxy::{self, route::Target};
use crate::state::AppState;

/// Builds the views of one account's records.
pub struct LocalViewer<'a> {
    state: &'a AppState,
    did: String,
    handle: String,
    /// The account's current profile record.
    profile: Option<Value>,
}

impl<'a> LocalViewer<'a> {
    pub fn new(
        state: &'a AppState,
        did: String,
        handle: String,
        profile: Option<Value>,
    ) -> LocalViewer<'a> {
        LocalViewer {
            state,
            did,
            handle,
            profile,
        }
    }

    pub fn did(&self) -> &str {
        &self.did
    }

    /// Whether `actor` (a DID or a handle) is the account.
    pub fn is_actor(&self, actor: &str) -> bool {
        actor == self.did || actor.eq_ignore_ascii_case(&self.handle)
    }

    /// Where an image blob of the account is served: the AppView's CDN when its pattern is
    /// configured, else this server's `com.atproto.sync.getBlob`.
    pub fn image_url(&self, kind: &str, cid: &str) -> String {
        match &self.state.config.appview_cdn_url_pattern {
            Some(pattern) => {
                let mut url = pattern.clone();
                for value in [kind, self.did.as_str(), cid] {
                    url = url.replacen("%s", value, 1);
                }
                url
            }
            None => format!(
                "{}/xrpc/com.atproto.sync.getBlob?did={}&cid={cid}",
                self.state.config.server.public_url,
                utf8_percent_encode(&self.did, NON_ALPHANUMERIC)
            ),
        }
    }

    /// The account as a post's author (`app.bsky.actor.defs#profileViewBasic`).
    pub fn profile_basic(&self) -> Value {
        let mut view = json!({"did": self.did, "handle": self.handle});
        if let Some(record) = &self.profile {
            self.update_profile_basic(&mut view, record);
        }
        view
    }

    /// `view` (a basic profile view) with the display name and avatar of `record`.
    pub fn update_profile_basic(&self, view: &mut Value, record: &Value) {
        let Some(view) = view.as_object_mut() else {
            return;
        };
        set_or_remove(view, "displayName", record.get("displayName").cloned());
        let avatar = blob_cid(record.get("avatar")).map(|cid| self.image_url("avatar", &cid));
        set_or_remove(view, "avatar", avatar.map(Value::String));
    }

    /// `view` (a profile view) with the display name, avatar and description of `record`.
    pub fn update_profile(&self, view: &mut Value, record: &Value) {
        self.update_profile_basic(view, record);
        if let Some(view) = view.as_object_mut() {
            set_or_remove(view, "description", record.get("description").cloned());
        }
    }

    /// `view` (a detailed profile view) with everything `record` says: also the banner.
    pub fn update_profile_detailed(&self, view: &mut Value, record: &Value) {
        self.update_profile(view, record);
        let banner = blob_cid(record.get("banner")).map(|cid| self.image_url("banner", &cid));
        if let Some(view) = view.as_object_mut() {
            set_or_remove(view, "banner", banner.map(Value::String));
        }
    }

    /// A post of the account (`app.bsky.feed.defs#postView`), as right after it was written.
    pub async fn post_view(&self, post: &LocalRecord) -> Value {
        let mut view = json!({
            "uri": post.uri,
            "cid": post.cid,
            "author": self.profile_basic(),
            "record": post.value,
            "replyCount": 0,
            "repostCount": 0,
            "likeCount": 0,
            "quoteCount": 0,
            "indexedAt": post.indexed_at,
        });
        if let Some(embed) = post.value.get("embed")
            && let Some(embed_view) = self.embed_view(embed).await
        {
            view["embed"] = embed_view;
        }
        view
    }

    /// The view of a post's embed: images and links from the record itself, quoted records
    /// from the AppView.
    async fn embed_view(&self, embed: &Value) -> Option<Value> {
        match type_of(embed) {
            "app.bsky.embed.images" | "app.bsky.embed.external" => self.media_view(embed),
            "app.bsky.embed.record" => Some(self.record_embed_view(embed).await),
            "app.bsky.embed.recordWithMedia" => {
                let media = self.media_view(embed.get("media")?)?;
                let record = self.record_embed_view(embed.get("record")?).await;
                Some(json!({
                    "$type": "app.bsky.embed.recordWithMedia#view",
                    "record": record,
                    "media": media,
                }))
            }
            _ => None,
        }
    }

    fn media_view(&self, embed: &Value) -> Option<Value> {
        match type_of(embed) {
            "app.bsky.embed.images" => {
                let images = embed
                    .get("images")?
                    .as_array()?
                    .iter()
                    .filter_map(|image| {
                        let cid = blob_cid(image.get("image"))?;
                        let mut view = json!({
                            "thumb": self.image_url("feed_thumbnail", &cid),
                            "fullsize": self.image_url("feed_fullsize", &cid),
                            "alt": image.get("alt").cloned().unwrap_or_else(|| json!("")),
                        });
                        if let Some(ratio) = image.get("aspectRatio") {
                            view["aspectRatio"] = ratio.clone();
                        }
                        Some(view)
                    })
                    .collect::<Vec<_>>();
                Some(json!({"$type": "app.bsky.embed.images#view", "images": images}))
            }
            "app.bsky.embed.external" => {
                let external = embed.get("external")?;
                let mut view = json!({
                    "uri": external.get("uri")?,
                    "title": external.get("title").cloned().unwrap_or_else(|| json!("")),
                    "description": external.get("description").cloned().unwrap_or_else(|| json!("")),
                });
                if let Some(cid) = blob_cid(external.get("thumb")) {
                    view["thumb"] = json!(self.image_url("feed_thumbnail", &cid));
                }
                Some(json!({"$type": "app.bsky.embed.external#view", "external": view}))
            }
            _ => None,
        }
    }

    /// A quoted record (`app.bsky.embed.record#view`): its view from the AppView, or "not
    /// found" when the AppView does not have it (or none is configured).
    async fn record_embed_view(&self, embed: &Value) -> Value {
        let uri = embed
            .get("record")
            .and_then(|r| r.get("uri"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let record = match self.quoted_record(uri).await {
            Some(view) => view,
            None => json!({
                "$type": "app.bsky.embed.record#viewNotFound",
                "uri": uri,
                "notFound": true,
            }),
        };
        json!({"$type": "app.bsky.embed.record#view", "record": record})
    }

    async fn quoted_record(&self, uri: &str) -> Option<Value> {
        let collection = uri.strip_prefix("at://")?.split('/').nth(1)?;
        match collection {
            "app.bsky.feed.post" => {
                let answer = self
                    .appview_query("app.bsky.feed.getPosts", "uris", uri)
                    .await?;
                let post = answer.get("posts")?.as_array()?.first()?;
                let mut view = json!({
                    "$type": "app.bsky.embed.record#viewRecord",
                    "uri": post.get("uri")?,
                    "cid": post.get("cid")?,
                    "author": post.get("author")?,
                    "value": post.get("record")?,
                    "indexedAt": post.get("indexedAt")?,
                });
                if let Some(labels) = post.get("labels") {
                    view["labels"] = labels.clone();
                }
                if let Some(embed) = post.get("embed") {
                    view["embeds"] = json!([embed]);
                }
                Some(view)
            }
            "app.bsky.feed.generator" => {
                let answer = self
                    .appview_query("app.bsky.feed.getFeedGenerator", "feed", uri)
                    .await?;
                typed(answer.get("view")?, "app.bsky.feed.defs#generatorView")
            }
            "app.bsky.graph.list" => {
                let answer = self
                    .appview_query("app.bsky.graph.getList", "list", uri)
                    .await?;
                typed(answer.get("list")?, "app.bsky.graph.defs#listView")
            }
            _ => None,
        }
    }

    /// Asks the configured AppView `nsid?<param>=<value>` for the account.
    pub async fn appview_query(&self, nsid: &str, param: &str, value: &str) -> Option<Value> {
        self.appview_query_with(nsid, &[(param, value)]).await
    }

    /// Asks the configured AppView `nsid` with `params`, for the account; `None` if there is no
    /// AppView or it gave no usable answer (logged).
    pub async fn appview_query_with(&self, nsid: &str, params: &[(&str, &str)]) -> Option<Value> {
        let appview = self.state.config.appview.as_ref()?;
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let target = Target::configured(appview);
        match proxy::query_json(self.state, &target, Some(&self.did), nsid, &query).await {
            Ok(answer) => Some(answer),
            Err(e) => {
                tracing::debug!(nsid, error = ?e, "read-after-write: AppView query failed");
                None
            }
        }
    }
}

/// A record's or an embed's `$type`, or "".
pub(super) fn type_of(value: &Value) -> &str {
    value
        .get("$type")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// An object with `$type` set.
fn typed(view: &Value, kind: &str) -> Option<Value> {
    let mut view = view.as_object()?.clone();
    view.insert("$type".into(), json!(kind));
    Some(Value::Object(view))
}

fn set_or_remove(view: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    match value {
        Some(value) if !value.is_null() => {
            view.insert(key.to_owned(), value);
        }
        _ => {
            view.remove(key);
        }
    }
}

/// The CID of a blob reference: `{"$type": "blob", "ref": {"$link": cid}, ...}`, or the legacy
/// `{"cid": cid, "mimeType": ...}`.
fn blob_cid(blob: Option<&Value>) -> Option<String> {
    let blob = blob?;
    let cid = blob
        .get("ref")
        .and_then(|r| r.get("$link"))
        .or_else(|| blob.get("cid"))?;
    cid.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_references() {
        let blob = json!({"$type": "blob", "ref": {"$link": "bafkreiabc"}, "mimeType": "image/png", "size": 3});
        assert_eq!(blob_cid(Some(&blob)).as_deref(), Some("bafkreiabc"));
        let legacy = json!({"cid": "bafkreidef", "mimeType": "image/png"});
        assert_eq!(blob_cid(Some(&legacy)).as_deref(), Some("bafkreidef"));
        assert_eq!(blob_cid(Some(&json!("text"))), None);
        assert_eq!(blob_cid(None), None);
    }

    #[test]
    fn absent_fields_are_removed_not_nulled() {
        let mut view = Map::new();
        view.insert("displayName".into(), json!("Old"));
        set_or_remove(&mut view, "displayName", None);
        assert!(view.is_empty());
        set_or_remove(&mut view, "displayName", Some(json!("New")));
        assert_eq!(view["displayName"], "New");
        set_or_remove(&mut view, "displayName", Some(Value::Null));
        assert!(view.is_empty());
    }
}
