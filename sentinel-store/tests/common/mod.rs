//! What the store's tests share: a migrated store over the test's database, and item rows.
#![allow(dead_code)]

use sentinel_store::*;
use serde_json::json;
use sqlx::PgPool;

pub async fn ready(pool: PgPool) -> Store {
    let store = Store::from_pool(pool);
    store.migrate().await.expect("migrate");
    store
}

/// A drive item as a scan writes it: a root when `parent` is `None`.
pub fn item(id: &str, parent: Option<&str>, name: &str, folder: bool) -> DriveItemRow {
    DriveItemRow {
        id: id.into(),
        parent_id: parent.map(String::from),
        name: Some(name.into()),
        is_folder: folder,
        is_root: parent.is_none(),
        size: Some(1),
        mime_type: None,
        quick_xor_hash: None,
        sha1_hash: None,
        created_at: None,
        modified_at: None,
        created_by_id: None,
        modified_by_id: None,
        shared_scope: None,
        is_permission_root: parent.is_none(),
        sharing_changed: true,
        raw_json: json!({"id": id}).to_string(),
    }
}

/// A document library as a scan writes it.
pub fn library(id: &str) -> DriveRow {
    DriveRow {
        id: id.into(),
        site_id: None,
        owner_user_id: None,
        name: Some("Documents".into()),
        drive_type: Some("documentLibrary".into()),
        web_url: None,
        quota_total: None,
        quota_used: None,
        created_at: None,
        raw_json: json!({"id": id}),
    }
}
