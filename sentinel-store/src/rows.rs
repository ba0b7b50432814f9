//! Rows as the store takes them. Callers (the pipeline) build them from Graph objects.

use chrono::{DateTime, Utc};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub id: String,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub mail: Option<String>,
    pub user_type: Option<String>,
    pub is_guest: bool,
    pub account_enabled: Option<bool>,
    pub department: Option<String>,
    pub has_license: Option<bool>,
    pub created_at: Option<DateTime<Utc>>,
    pub raw_json: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub id: String,
    pub display_name: Option<String>,
    pub mail: Option<String>,
    pub mail_nickname: Option<String>,
    pub is_unified: bool,
    pub security_enabled: Option<bool>,
    pub visibility: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub raw_json: Value,
}

/// A change to one direct membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberChange {
    pub group_id: String,
    pub member_id: String,
    /// `user`, `group` or `other`.
    pub member_type: String,
    pub removed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SiteRow {
    pub id: String,
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub web_url: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub raw_json: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DriveRow {
    pub id: String,
    pub site_id: Option<String>,
    pub owner_user_id: Option<String>,
    pub name: Option<String>,
    pub drive_type: Option<String>,
    pub web_url: Option<String>,
    pub quota_total: Option<i64>,
    pub quota_used: Option<i64>,
    pub created_at: Option<DateTime<Utc>>,
    pub raw_json: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DriveItemRow {
    pub id: String,
    pub parent_id: Option<String>,
    pub name: Option<String>,
    pub is_folder: bool,
    pub is_root: bool,
    pub size: Option<i64>,
    pub mime_type: Option<String>,
    pub quick_xor_hash: Option<String>,
    pub sha1_hash: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub modified_at: Option<DateTime<Utc>>,
    pub created_by_id: Option<String>,
    pub modified_by_id: Option<String>,
    pub shared_scope: Option<String>,
    /// Hierarchical mode: the item has permissions of its own.
    pub is_permission_root: bool,
    /// The change may have changed the item's permissions (its permissions are due a read).
    pub sharing_changed: bool,
    /// The item as Graph sent it, as JSON text: compact while a page waits to be written
    /// (a parsed tree takes several times the memory, and scans hold a few pages per drive).
    pub raw_json: String,
}

/// One permission of an item, with its grantees. Link URLs arrive hashed.
#[derive(Debug, Clone, PartialEq)]
pub struct PermissionRow {
    pub permission_id: String,
    pub roles: Vec<String>,
    pub link_type: Option<String>,
    pub link_scope: Option<String>,
    pub link_url_sha256: Option<String>,
    pub link_prevents_download: Option<bool>,
    pub has_password: Option<bool>,
    pub expires_at: Option<DateTime<Utc>>,
    pub invitation_email: Option<String>,
    pub inherited_from_id: Option<String>,
    pub raw_json: Value,
    pub grants: Vec<GrantRow>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    /// Unique within the permission: e.g. `user:{id}`, `link:{hash}`.
    pub grantee_key: String,
    /// `user`, `group`, `site_user`, `site_group`, `application`, `link`, `invitation`.
    pub grantee_type: String,
    pub grantee_id: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub login_name: Option<String>,
    pub is_external: bool,
    pub is_everyone: bool,
    pub is_everyone_except_external: bool,
}

/// The permissions read for one item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemPermissions {
    pub drive_id: String,
    pub item_id: String,
    pub permissions: Vec<PermissionRow>,
}

/// A live drive with its site, for selecting drives by pattern.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DriveRef {
    pub id: String,
    pub name: Option<String>,
    pub site_id: Option<String>,
    pub site_name: Option<String>,
    pub site_url: Option<String>,
    pub owner_user_id: Option<String>,
    /// Graph refused to read it or its site: the drive is kept as last read.
    pub skipped: bool,
}

/// An item whose permissions are due a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueItem {
    pub drive_id: String,
    pub item_id: String,
}

/// An item of the permission sweep, with when its permissions were last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweptItem {
    pub read_at: DateTime<Utc>,
    pub item: DueItem,
}

/// Keeps the last row for each key, in first-seen order (Graph: the last occurrence wins;
/// Postgres: one `ON CONFLICT` statement may not touch a row twice).
pub(crate) fn last_wins<T, K: std::hash::Hash + Eq>(rows: &[T], key: impl Fn(&T) -> K) -> Vec<&T> {
    let mut index = std::collections::HashMap::with_capacity(rows.len());
    let mut out: Vec<&T> = Vec::with_capacity(rows.len());
    for r in rows {
        match index.get(&key(r)) {
            Some(&i) => out[i] = r,
            None => {
                index.insert(key(r), out.len());
                out.push(r);
            }
        }
    }
    out
}

/// Splits rows into passes that each hold one row per key, in arrival order: applying the
/// passes in turn applies every row, the later over the earlier (for merges, where the last
/// occurrence must not simply replace the others). Usually there is one pass.
pub(crate) fn in_passes<T, K: std::hash::Hash + Eq>(
    rows: &[T],
    key: impl Fn(&T) -> K,
) -> Vec<Vec<&T>> {
    let mut seen = std::collections::HashMap::with_capacity(rows.len());
    let mut passes: Vec<Vec<&T>> = Vec::new();
    for r in rows {
        let n = seen.entry(key(r)).or_insert(0usize);
        if passes.len() <= *n {
            passes.push(Vec::new());
        }
        passes[*n].push(r);
        *n += 1;
    }
    passes
}

#[cfg(test)]
mod tests {
    use super::in_passes;

    #[test]
    fn passes_hold_each_key_once_in_arrival_order() {
        let rows = [("a", 1), ("b", 1), ("a", 2), ("a", 3), ("c", 1), ("b", 2)];
        let passes = in_passes(&rows, |r| r.0);
        let got: Vec<Vec<(&str, i32)>> = passes
            .iter()
            .map(|p| p.iter().map(|r| **r).collect())
            .collect();
        assert_eq!(
            got,
            vec![
                vec![("a", 1), ("b", 1), ("c", 1)],
                vec![("a", 2), ("b", 2)],
                vec![("a", 3)],
            ]
        );
        assert!(in_passes(&[] as &[(&str, i32)], |r| r.0).is_empty());
    }
}
