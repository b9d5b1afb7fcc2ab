//! How each AppView answer takes the account's newer records: new posts into feeds and threads,
//! a newer profile into the views of the account.

use serde_json::{Value, json};

use super::Method;
use super::records::{LocalRecord, LocalRecords};
use super::viewer::{LocalViewer, type_of};

/// The `$type` of a thread node that holds a post.
pub const THREAD_VIEW_POST: &str = "app.bsky.feed.defs#threadViewPost";

/// The query parameters of the request.
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// `original` (the AppView's answer to `method`) with `local` merged in.
pub async fn apply(
    method: Method,
    viewer: &LocalViewer<'_>,
    mut original: Value,
    local: &LocalRecords,
    query: &Query,
) -> Value {
    match method {
        Method::Profile => {
            if let Some(profile) = &local.profile
                && original.get("did").and_then(Value::as_str) == Some(viewer.did())
            {
                viewer.update_profile_detailed(&mut original, &profile.value);
            }
        }
        Method::Profiles => {
            if let Some(profile) = &local.profile
                && let Some(profiles) = original.get_mut("profiles").and_then(Value::as_array_mut)
            {
                for view in profiles {
                    if view.get("did").and_then(Value::as_str) == Some(viewer.did()) {
                        viewer.update_profile_detailed(view, &profile.value);
                    }
                }
            }
        }
        Method::Timeline => {
            // A later page (with a cursor) lies before anything just written.
            if query.get("cursor").is_none()
                && let Some(feed) = original.get_mut("feed")
            {
                let posts: Vec<&LocalRecord> = local.posts.iter().collect();
                insert_posts_in_feed(viewer, feed, &posts).await;
            }
        }
        Method::AuthorFeed => {
            let own = query
                .get("actor")
                .is_some_and(|actor| viewer.is_actor(actor));
            if own && let Some(feed) = original.get_mut("feed") {
                if let Some(profile) = &local.profile {
                    update_authors_in_feed(viewer, feed, &profile.value);
                }
                if query.get("cursor").is_none() {
                    let filter = query.get("filter").unwrap_or("posts_with_replies");
                    let posts: Vec<&LocalRecord> = local
                        .posts
                        .iter()
                        .filter(|post| in_author_feed(filter, viewer.did(), &post.value))
                        .collect();
                    insert_posts_in_feed(viewer, feed, &posts).await;
                }
            }
        }
        Method::ActorLikes => {
            if let Some(profile) = &local.profile
                && let Some(feed) = original.get_mut("feed")
            {
                update_authors_in_feed(viewer, feed, &profile.value);
            }
        }
        Method::PostThread => {
            if let Some(thread) = original.get_mut("thread")
                && type_of(thread) == THREAD_VIEW_POST
            {
                add_posts_to_thread(viewer, thread, &local.posts).await;
            }
        }
    }
    original
}

/// The account's posts, newest first, put into `feed` (newest first too) where their time
/// falls; those older than the feed's last item belong to a later page and are left out.
async fn insert_posts_in_feed(viewer: &LocalViewer<'_>, feed: &mut Value, posts: &[&LocalRecord]) {
    let Some(items) = feed.as_array_mut() else {
        return;
    };
    let last_time = items
        .last()
        .and_then(|item| item.pointer("/post/indexedAt"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    for post in posts.iter().rev() {
        let shown = items
            .iter()
            .any(|item| item.pointer("/post/uri").and_then(Value::as_str) == Some(&post.uri));
        if post.indexed_at <= last_time || shown {
            continue;
        }
        let view = json!({"post": viewer.post_view(post).await});
        let at = items.iter().position(|item| {
            item.pointer("/post/indexedAt")
                .and_then(Value::as_str)
                .is_some_and(|time| time < post.indexed_at.as_str())
        });
        match at {
            Some(at) => items.insert(at, view),
            None => items.push(view),
        }
    }
}

/// The account's posts in `feed` with the account's newer profile.
fn update_authors_in_feed(viewer: &LocalViewer<'_>, feed: &mut Value, profile: &Value) {
    let Some(items) = feed.as_array_mut() else {
        return;
    };
    for item in items {
        if let Some(author) = item.pointer_mut("/post/author")
            && author.get("did").and_then(Value::as_str) == Some(viewer.did())
        {
            viewer.update_profile_basic(author, profile);
        }
    }
}

/// Whether a post of `did` belongs in its author feed under `filter` (the lexicon's values).
fn in_author_feed(filter: &str, did: &str, post: &Value) -> bool {
    let parent = post.pointer("/reply/parent/uri").and_then(Value::as_str);
    let embed = post.get("embed");
    let media = embed.map(|e| match type_of(e) {
        "app.bsky.embed.recordWithMedia" => e.get("media").map_or("", type_of),
        other => other,
    });
    match filter {
        "posts_no_replies" => parent.is_none(),
        "posts_and_author_threads" => {
            parent.is_none_or(|uri| uri.starts_with(&format!("at://{did}/")))
        }
        "posts_with_media" => matches!(
            media,
            Some("app.bsky.embed.images" | "app.bsky.embed.video")
        ),
        "posts_with_video" => media == Some("app.bsky.embed.video"),
        _ => true,
    }
}

/// The account's replies within `thread` (a thread view node) put under their parents.
pub async fn add_posts_to_thread(
    viewer: &LocalViewer<'_>,
    thread: &mut Value,
    posts: &[LocalRecord],
) {
    let thread_uri = thread
        .pointer("/post/uri")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let thread_root = thread
        .pointer("/post/record/reply/root/uri")
        .and_then(Value::as_str)
        .map(str::to_owned);
    for post in posts {
        let root = post
            .value
            .pointer("/reply/root/uri")
            .and_then(Value::as_str);
        let in_thread =
            root.is_some() && (root == thread_uri.as_deref() || root == thread_root.as_deref());
        let Some(parent) = post
            .value
            .pointer("/reply/parent/uri")
            .and_then(Value::as_str)
        else {
            continue;
        };
        if !in_thread
            || find_node(thread, &post.uri).is_some()
            || find_node(thread, parent).is_none()
        {
            continue;
        }
        let view = thread_post(viewer.post_view(post).await);
        if let Some(node) = find_node(thread, parent) {
            match node.get_mut("replies").and_then(Value::as_array_mut) {
                Some(replies) => replies.insert(0, view),
                None => node["replies"] = json!([view]),
            }
        }
    }
}

/// A thread node holding `post_view`.
pub fn thread_post(post_view: Value) -> Value {
    json!({"$type": THREAD_VIEW_POST, "post": post_view})
}

/// The node of `thread` (or of its replies, at any depth) holding the post `uri`.
fn find_node<'v>(thread: &'v mut Value, uri: &str) -> Option<&'v mut Value> {
    if type_of(thread) != THREAD_VIEW_POST {
        return None;
    }
    if thread.pointer("/post/uri").and_then(Value::as_str) == Some(uri) {
        return Some(thread);
    }
    thread
        .get_mut("replies")?
        .as_array_mut()?
        .iter_mut()
        .find_map(|reply| find_node(reply, uri))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DID: &str = "did:plc:alice";

    #[test]
    fn author_feed_filters() {
        let plain = json!({"text": "hi"});
        let reply_to_self =
            json!({"reply": {"parent": {"uri": format!("at://{DID}/app.bsky.feed.post/1")}}});
        let reply_to_other =
            json!({"reply": {"parent": {"uri": "at://did:plc:bob/app.bsky.feed.post/1"}}});
        let images = json!({"embed": {"$type": "app.bsky.embed.images", "images": []}});
        let quoted_video = json!({"embed": {"$type": "app.bsky.embed.recordWithMedia", "media": {"$type": "app.bsky.embed.video"}}});
        assert!(in_author_feed("posts_with_replies", DID, &reply_to_other));
        assert!(!in_author_feed("posts_no_replies", DID, &reply_to_other));
        assert!(in_author_feed("posts_no_replies", DID, &plain));
        assert!(in_author_feed(
            "posts_and_author_threads",
            DID,
            &reply_to_self
        ));
        assert!(!in_author_feed(
            "posts_and_author_threads",
            DID,
            &reply_to_other
        ));
        assert!(in_author_feed("posts_with_media", DID, &images));
        assert!(in_author_feed("posts_with_media", DID, &quoted_video));
        assert!(!in_author_feed("posts_with_media", DID, &plain));
        assert!(in_author_feed("posts_with_video", DID, &quoted_video));
        assert!(!in_author_feed("posts_with_video", DID, &images));
    }

    #[test]
    fn thread_nodes_are_found_at_any_depth() {
        let mut thread = json!({
            "$type": THREAD_VIEW_POST,
            "post": {"uri": "at://a/p/1"},
            "replies": [
                {"$type": "app.bsky.feed.defs#notFoundPost", "uri": "at://a/p/9"},
                {"$type": THREAD_VIEW_POST, "post": {"uri": "at://a/p/2"}, "replies": [
                    {"$type": THREAD_VIEW_POST, "post": {"uri": "at://a/p/3"}}
                ]}
            ]
        });
        assert!(find_node(&mut thread, "at://a/p/3").is_some());
        assert!(find_node(&mut thread, "at://a/p/1").is_some());
        assert!(find_node(&mut thread, "at://a/p/9").is_none());
    }
}
