//! `pds export`: one account's data as files, for its owner's own backup or to move it by hand:
//! `repo.car` (the whole repo, as `com.atproto.sync.getRepo` gives it), `blobs/<cid>` (every blob
//! a record references, each checked against its CID), `blobs.json` (each blob's media type, so
//! that `pds recover` can upload it as it was), `preferences.json` (as
//! `app.bsky.actor.getPreferences` with the account password) and `account.json` (DID, handle,
//! e-mail, creation time).
//!
//! It reads the data directory directly and only reads, so it runs beside a running server
//! (SQLite readers never block its writer; a repo is exported from one snapshot).

use std::path::Path;

use pds_storage::Store;
use serde_json::json;
use sha2::Digest;
use tokio::io::AsyncReadExt;

use crate::config::Config;
use crate::state::DATABASE_FILE;

/// What was written.
#[derive(Debug)]
pub struct ExportSummary {
    pub did: String,
    pub repo_blocks: u64,
    pub blobs: usize,
    pub preferences: usize,
}

/// Exports the account `who` (a DID or handle) into the directory `out` (created if needed).
pub async fn export_account(
    config: &Config,
    who: &str,
    out: &Path,
) -> Result<ExportSummary, String> {
    let db_path = config.storage.data_directory.join(DATABASE_FILE);
    if !db_path.exists() {
        return Err(format!("no database at {}", db_path.display()));
    }
    let store =
        Store::open_reader(&db_path).map_err(|e| format!("opening {}: {e}", db_path.display()))?;
    let conn = store.connection();
    let account = if who.starts_with("did:") {
        crate::accounts::by_did(conn, who)
    } else {
        crate::accounts::by_handle(conn, &who.to_lowercase())
    }
    .map_err(|e| e.to_string())?
    .ok_or_else(|| format!("no account {who} on this server"))?;
    let did = account.did.clone();
    std::fs::create_dir_all(out.join("blobs"))
        .map_err(|e| format!("creating {}: {e}", out.display()))?;

    let car = std::fs::File::create(out.join("repo.car")).map_err(|e| e.to_string())?;
    let repo_blocks =
        pds_storage::sync_reads::write_repo_car(&store, &did, None, std::io::BufWriter::new(car))
            .map_err(|e| format!("exporting the repo: {e}"))?;

    let blob_store = crate::blobs::open_store_for_reading(config)
        .await
        .map_err(|e| e.to_string())?;
    let mut blobs = 0;
    let mut mime_types = serde_json::Map::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = crate::blobs::list_blobs(conn, &did, None, cursor.as_deref(), 500)
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last().cloned() else {
            break;
        };
        for text in &page {
            let cid =
                pds_ipld::parse_cid(text).map_err(|e| format!("stored blob CID {text}: {e}"))?;
            let Some(mut read) = blob_store
                .read(&did, &cid, 0, None)
                .await
                .map_err(|e| format!("reading blob {cid}: {e}"))?
            else {
                return Err(format!(
                    "blob {cid} is referenced but missing from the blob store"
                ));
            };
            // Streamed to the file and hashed on the way: a blob can be as large as the upload
            // limit, and the stored length is not trusted to size anything.
            let path = out.join("blobs").join(text);
            let mut file = std::fs::File::create(&path).map_err(|e| e.to_string())?;
            let mut hasher = sha2::Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = read
                    .reader
                    .read(&mut buf)
                    .await
                    .map_err(|e| format!("reading blob {cid}: {e}"))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                std::io::Write::write_all(&mut file, &buf[..n]).map_err(|e| e.to_string())?;
            }
            if crate::blobs::raw_cid(&hasher.finalize().into()) != cid {
                return Err(format!("blob {cid} on disk does not match its CID"));
            }
            let mime = crate::blobs::mime_type(conn, &did, text)
                .map_err(|e| format!("reading blob {cid}'s media type: {e}"))?
                .ok_or_else(|| format!("blob {cid} is listed but not stored"))?;
            mime_types.insert(text.clone(), mime.into());
            blobs += 1;
        }
        cursor = Some(last);
    }

    let preferences =
        crate::preferences::get(conn, &did, crate::auth::Scope::Full).map_err(|e| e.to_string())?;
    let write_json = |name: &str, value: &serde_json::Value| {
        let text = serde_json::to_string_pretty(value).expect("JSON values serialize");
        std::fs::write(out.join(name), text + "\n").map_err(|e| format!("writing {name}: {e}"))
    };
    write_json("blobs.json", &serde_json::Value::Object(mime_types))?;
    write_json("preferences.json", &json!({ "preferences": preferences }))?;
    write_json(
        "account.json",
        &json!({
            "did": did,
            "handle": account.handle,
            "email": account.email,
            "createdAt": account.created_at,
        }),
    )?;
    Ok(ExportSummary {
        did,
        repo_blocks,
        blobs,
        preferences: preferences.len(),
    })
}
