//! Rows as the store takes them. Callers (the pipeline) build them from Graph objects.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// A user of the tenant's directory, for `msgraph_users`.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    /// Directory object id: the key of `msgraph_users` within a tenant.
    pub id: String,
    /// Shown wherever the user is named (`msgraph_users.display_name`).
    pub display_name: Option<String>,
    /// Sign-in name; what admins search people by.
    pub user_principal_name: Option<String>,
    /// Primary SMTP address, if the account has a mailbox.
    pub mail: Option<String>,
    /// `Member` or `Guest`, as the directory says.
    pub user_type: Option<String>,
    /// Whether `user_type` is `Guest` (case-insensitive): drives the guest counts of every report.
    pub is_guest: bool,
    /// `false` for a disabled account; `None` when the directory did not say.
    pub account_enabled: Option<bool>,
    /// Free text from the directory, for grouping people.
    pub department: Option<String>,
    /// Whether any licence is assigned; `None` when licences were not read.
    pub has_license: Option<bool>,
    /// When the account was created in the directory.
    pub created_at: Option<DateTime<Utc>>,
    /// The object as read, merged into the stored one (an absent property keeps its stored value).
    pub raw_json: Value,
}

/// A group of the tenant's directory, for `msgraph_groups`.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    /// Directory object id: the key of `msgraph_groups` within a tenant.
    pub id: String,
    /// Shown wherever the group is named.
    pub display_name: Option<String>,
    /// The group's address, for mail-enabled and Microsoft 365 groups.
    pub mail: Option<String>,
    /// The alias part of the address; Microsoft 365 groups name their site after it.
    pub mail_nickname: Option<String>,
    /// A Microsoft 365 group (`Unified` in its group types), which may own a site.
    pub is_unified: bool,
    /// Whether the group can be granted access (a security group).
    pub security_enabled: Option<bool>,
    /// `Public`, `Private` or `HiddenMembership` for Microsoft 365 groups.
    pub visibility: Option<String>,
    /// When the group was created in the directory.
    pub created_at: Option<DateTime<Utc>>,
    /// The object as read, without its membership slice; merged into the stored one.
    pub raw_json: Value,
}

/// Which of a group's directory-object lists a change is to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relation {
    /// Its direct members (`members@delta`, `msgraph_group_members`).
    Member,
    /// Its owners (`owners@delta`, `msgraph_group_owners`).
    Owner,
}

impl Relation {
    /// The table the relation is kept in.
    pub fn table(self) -> &'static str {
        match self {
            Relation::Member => "msgraph_group_members",
            Relation::Owner => "msgraph_group_owners",
        }
    }
}

/// A change to one direct membership or ownership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberChange {
    /// Members or owners.
    pub relation: Relation,
    /// The group whose direct members change.
    pub group_id: String,
    /// The member's directory object id (a user, a group or another object).
    pub member_id: String,
    /// `user`, `group` or `other`.
    pub member_type: String,
    /// The member left the group (its row in `msgraph_group_members` is soft-deleted).
    pub removed: bool,
}

/// A SharePoint site, for `msgraph_sites`.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteRow {
    /// Composite site id (`host,site-collection-id,web-id`): the key of `msgraph_sites`.
    pub id: String,
    /// The site's URL name.
    pub name: Option<String>,
    /// The title shown to users.
    pub display_name: Option<String>,
    /// Where the site opens in a browser.
    pub web_url: Option<String>,
    /// When the site was created.
    pub created_at: Option<DateTime<Utc>>,
    /// The object as read, merged into the stored one.
    pub raw_json: Value,
}

/// A document library or OneDrive, for `msgraph_drives`.
#[derive(Debug, Clone, PartialEq)]
pub struct DriveRow {
    /// Drive id: the key of `msgraph_drives` within a tenant.
    pub id: String,
    /// The site whose library this is (`None` for a OneDrive).
    pub site_id: Option<String>,
    /// The user whose OneDrive this is (`None` for a site library).
    pub owner_user_id: Option<String>,
    /// The library's name (e.g. `Documents`).
    pub name: Option<String>,
    /// `documentLibrary`, `business` (a OneDrive) or `personal`.
    pub drive_type: Option<String>,
    /// Where the library opens in a browser.
    pub web_url: Option<String>,
    /// Bytes the drive may hold.
    pub quota_total: Option<i64>,
    /// Bytes the drive holds.
    pub quota_used: Option<i64>,
    /// When the drive was created.
    pub created_at: Option<DateTime<Utc>>,
    /// The object as read, merged into the stored one.
    pub raw_json: Value,
}

/// A file or folder, for `msgraph_drive_items`.
#[derive(Debug, Clone, PartialEq)]
pub struct DriveItemRow {
    /// Item id, unique within its drive: with the drive id, the key of `msgraph_drive_items`.
    pub id: String,
    /// The folder holding the item (`None` for the root); the tree walk and paths follow it.
    pub parent_id: Option<String>,
    /// File or folder name.
    pub name: Option<String>,
    /// A folder (it has children and no content).
    pub is_folder: bool,
    /// The drive's root folder.
    pub is_root: bool,
    /// Bytes (for a folder, of everything below it).
    pub size: Option<i64>,
    /// Content type of a file.
    pub mime_type: Option<String>,
    /// OneDrive's content hash, for finding copies.
    pub quick_xor_hash: Option<String>,
    /// SHA-1 of the content, where the service computes it.
    pub sha1_hash: Option<String>,
    /// When the item was created.
    pub created_at: Option<DateTime<Utc>>,
    /// When the item last changed.
    pub modified_at: Option<DateTime<Utc>>,
    /// The user who created it, when a user did.
    pub created_by_id: Option<String>,
    /// The user who last changed it, when a user did.
    pub modified_by_id: Option<String>,
    /// How widely the item is shared, as the `shared` facet says (`anonymous`, `organization`, `users`).
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
    /// Permission id, unique within its item.
    pub permission_id: String,
    /// What it allows: `read`, `write`, `owner`, ...
    pub roles: Vec<String>,
    /// For a sharing link: `view`, `edit`, `embed`, ...
    pub link_type: Option<String>,
    /// For a sharing link: who can use it (`anonymous`, `organization`, `users`).
    pub link_scope: Option<String>,
    /// SHA-256 of the link's URL: tells links apart without keeping the secret.
    pub link_url_sha256: Option<String>,
    /// For a link: whether it opens view-only without download.
    pub link_prevents_download: Option<bool>,
    /// For a link: whether it needs a password.
    pub has_password: Option<bool>,
    /// When it stops working; `None` when it never does.
    pub expires_at: Option<DateTime<Utc>>,
    /// For an invitation: the address it was sent to.
    pub invitation_email: Option<String>,
    /// The ancestor item it comes from (`None` when set on this item).
    pub inherited_from_id: Option<String>,
    /// The permission as read, with link secrets removed.
    pub raw_json: Value,
    /// Whom it grants to: one row per principal, in `msgraph_drive_item_permission_grants`.
    pub grants: Vec<GrantRow>,
}

/// One principal a permission grants to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    /// Unique within the permission: e.g. `user:{id}`, `link:{hash}`.
    pub grantee_key: String,
    /// `user`, `group`, `site_user`, `site_group`, `application`, `link`, `invitation`.
    pub grantee_type: String,
    /// Directory object id of the user, group or application, when the grantee has one.
    pub grantee_id: Option<String>,
    /// How the grantee is shown.
    pub display_name: Option<String>,
    /// The grantee's address, when known.
    pub email: Option<String>,
    /// SharePoint claim (`i:0#.f|membership|...`), for site users and site groups.
    pub login_name: Option<String>,
    /// A guest, an external address or an anonymous link: someone outside the organisation.
    pub is_external: bool,
    /// The "Everyone" claim: every user, guests included.
    pub is_everyone: bool,
    /// The "Everyone except external users" claim: every internal user.
    pub is_everyone_except_external: bool,
}

/// The permissions read for one item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemPermissions {
    /// The item's drive.
    pub drive_id: String,
    /// The item.
    pub item_id: String,
    /// Every permission the item has now: the stored set is replaced by it.
    pub permissions: Vec<PermissionRow>,
}

/// A live drive with its site, for selecting drives by pattern.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DriveRef {
    /// Drive id.
    pub id: String,
    /// Library name.
    pub name: Option<String>,
    /// Its site, for a site library.
    pub site_id: Option<String>,
    /// Its site's title.
    pub site_name: Option<String>,
    /// Its site's address.
    pub site_url: Option<String>,
    /// Its owner, for a OneDrive.
    pub owner_user_id: Option<String>,
    /// Graph refused to read it or its site: the drive is kept as last read.
    pub skipped: bool,
    /// When a delta round of it last completed.
    pub checked_at: Option<DateTime<Utc>>,
    /// When a completed round last found it changed (its first read counts as a change).
    pub changed_at: Option<DateTime<Utc>>,
}

/// A permission root a delta round returned that may or may not have changed: the drive's root
/// comes back as the parent of every change, and a file comes back with every edit, while
/// Graph annotates neither a folder's sharing change nor access removed from a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootRecheck<'a> {
    /// The item.
    pub item_id: &'a str,
    /// Its permissions are due a read, but not sooner than this after their last read.
    pub not_before: chrono::Duration,
}

/// An item whose permissions are due a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueItem {
    /// The item's drive.
    pub drive_id: String,
    /// The item.
    pub item_id: String,
}

/// An item of the permission sweep, with when its permissions were last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweptItem {
    /// When its permissions were last read (the sweep's paging key).
    pub read_at: DateTime<Utc>,
    /// The item.
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
