//! Exposure age and what changed: links and broad grants first seen, or removed, since a time.
//!
//! Graph gives no creation date for a sharing link or a grant; `first_seen_at` is when a scan
//! first saw it (kept while it exists) and `deleted_at` when a scan found it gone. One exposure
//! is counted as the posture views count it: a link once per (drive, permission), a grant once per
//! (drive, permission, grantee), however many items inherit it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Page, PageRequest};
use crate::{Store, StoreError};

/// What kind of exposure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExposureKind {
    /// A link anyone can use, no sign-in needed.
    AnyoneLink,
    /// A link anyone in the organisation can use.
    OrganizationLink,
    /// A grant to a guest or an external address.
    ExternalGrant,
    /// A grant to the "Everyone" claim (guests included).
    Everyone,
    /// A grant to "Everyone except external users".
    EveryoneExceptExternal,
    /// An item that stopped inheriting: it holds permissions of its own (opened), or
    /// inherits again (removed).
    UniquePermissions,
}

/// Whether an exposure opened or went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExposureChange {
    /// First seen by a scan, and still there.
    Opened,
    /// Gone at a scan (every item that had it has lost it).
    Removed,
}

words!(
    ExposureKind,
    "kind",
    AnyoneLink = "anyone_link",
    OrganizationLink = "organization_link",
    ExternalGrant = "external_grant",
    Everyone = "everyone",
    EveryoneExceptExternal = "everyone_except_external",
    UniquePermissions = "unique_permissions",
);
words!(
    ExposureChange,
    "change",
    Opened = "opened",
    Removed = "removed",
);

/// Which changes to list.
#[derive(Debug, Clone)]
pub struct ChangesQuery {
    /// Changes at or after this time.
    pub since: DateTime<Utc>,
    /// One kind only.
    pub kind: Option<ExposureKind>,
    /// Opened or removed only.
    pub change: Option<ExposureChange>,
}

/// One exposure that opened or went away.
#[derive(Debug, Clone, Serialize)]
pub struct ExposureEvent {
    /// Opened or removed.
    pub change: ExposureChange,
    /// Which kind of exposure.
    pub kind: ExposureKind,
    /// When: first seen for an opened one, removed for a removed one.
    pub at: DateTime<Utc>,
    /// When a scan first saw it.
    pub first_seen_at: DateTime<Utc>,
    /// When a scan found it gone; `None` while it is open.
    pub removed_at: Option<DateTime<Utc>>,
    /// Whole days it has been (or was) open, as far as the scans saw.
    pub open_days: i64,
    /// The library it is in.
    pub drive_id: String,
    /// The permission (links and grants of one permission share it); none for an item's
    /// unique permissions.
    pub permission_id: Option<String>,
    /// The item it is set on (the top-most one when items inherit it).
    pub item_id: String,
    /// That item's name.
    pub item_name: Option<String>,
    /// That item's path.
    pub item_path: Option<String>,
    /// Items it applies to (while open).
    pub items: i64,
    /// The site of the library, for SharePoint libraries.
    pub site_id: Option<String>,
    /// That site's name.
    pub site_name: Option<String>,
    /// What it allows: `read`, `write`, ...
    pub roles: Option<String>,
    /// For a link: `view`, `edit`, ...
    pub link_type: Option<String>,
    /// For a grant: whom it reaches.
    pub grantee: Option<String>,
    /// For a grant: the grantee's address.
    pub grantee_email: Option<String>,
}

#[derive(sqlx::FromRow)]
struct EventRow {
    change: String,
    kind: String,
    at: DateTime<Utc>,
    first_seen_at: DateTime<Utc>,
    removed_at: Option<DateTime<Utc>>,
    open_days: i64,
    drive_id: String,
    permission_id: Option<String>,
    item_id: String,
    item_name: Option<String>,
    item_path: Option<String>,
    items: i64,
    site_id: Option<String>,
    site_name: Option<String>,
    roles: Option<String>,
    link_type: Option<String>,
    grantee: Option<String>,
    grantee_email: Option<String>,
    total: i64,
}

/// Exposures (links, then grants) any of whose rows opened or closed since `$2`, each folded
/// into one: open while any item still has it, first seen at its earliest live row, removed at
/// its last removal. The candidates come from the `first_seen` and `removed` indexes, so the
/// cost follows the changes, not the tenant.
const EXPOSURES: &str = "
WITH link_keys AS (
    SELECT DISTINCT drive_id, permission_id FROM msgraph_drive_item_permissions
    WHERE tenant_id = $1 AND link_scope IN ('anonymous', 'organization')
      AND (first_seen_at >= $2 OR deleted_at >= $2)
), grant_keys AS (
    SELECT DISTINCT drive_id, permission_id, grantee_key FROM msgraph_drive_item_permission_grants
    WHERE tenant_id = $1 AND grantee_type <> 'link'
      AND (is_external OR is_everyone OR is_everyone_except_external)
      AND (first_seen_at >= $2 OR deleted_at >= $2)
), unique_keys AS (
    SELECT DISTINCT drive_id, item_id FROM msgraph_drive_item_permissions
    WHERE tenant_id = $1 AND inherited_from_id IS NULL
      AND (first_seen_at >= $2 OR deleted_at >= $2)
), exposures AS (
    SELECT p.drive_id, p.permission_id,
           CASE min(p.link_scope) WHEN 'anonymous' THEN 'anyone_link' ELSE 'organization_link' END AS kind,
           min(p.first_seen_at) FILTER (WHERE p.deleted_at IS NULL) AS live_first_seen,
           min(p.first_seen_at) AS any_first_seen,
           max(p.deleted_at) AS removed_at,
           count(DISTINCT p.item_id) FILTER (WHERE p.deleted_at IS NULL) AS items,
           (array_agg(p.item_id ORDER BY p.deleted_at IS NOT NULL, length(coalesce(i.path, '')), p.item_id))[1] AS item_id,
           min(array_to_string(p.roles, ', ')) AS roles, min(p.link_type) AS link_type,
           NULL::text AS grantee, NULL::text AS grantee_email
    FROM link_keys k
    JOIN msgraph_drive_item_permissions p ON p.tenant_id = $1 AND p.drive_id = k.drive_id AND p.permission_id = k.permission_id
    LEFT JOIN msgraph_drive_items i ON i.tenant_id = p.tenant_id AND i.drive_id = p.drive_id AND i.id = p.item_id
    GROUP BY p.drive_id, p.permission_id
    UNION ALL
    SELECT g.drive_id, g.permission_id,
           CASE WHEN bool_or(g.is_everyone) THEN 'everyone'
                WHEN bool_or(g.is_everyone_except_external) THEN 'everyone_except_external'
                ELSE 'external_grant' END,
           min(g.first_seen_at) FILTER (WHERE g.deleted_at IS NULL),
           min(g.first_seen_at),
           max(g.deleted_at),
           count(DISTINCT g.item_id) FILTER (WHERE g.deleted_at IS NULL),
           (array_agg(g.item_id ORDER BY g.deleted_at IS NOT NULL, length(coalesce(i.path, '')), g.item_id))[1],
           min(array_to_string(p.roles, ', ')), min(p.link_type),
           min(coalesce(g.display_name, g.email, g.login_name, g.grantee_id)), min(g.email)
    FROM grant_keys k
    JOIN msgraph_drive_item_permission_grants g ON g.tenant_id = $1 AND g.drive_id = k.drive_id
         AND g.permission_id = k.permission_id AND g.grantee_key = k.grantee_key
    LEFT JOIN msgraph_drive_item_permissions p ON p.tenant_id = g.tenant_id AND p.drive_id = g.drive_id
         AND p.item_id = g.item_id AND p.permission_id = g.permission_id
    LEFT JOIN msgraph_drive_items i ON i.tenant_id = g.tenant_id AND i.drive_id = g.drive_id AND i.id = g.item_id
    GROUP BY g.drive_id, g.permission_id, g.grantee_key
    UNION ALL
    -- An item holds permissions of its own (not inherited) since the earliest of them a scan
    -- saw; it inherits again once every one of them is gone. The library's root always holds
    -- its own: it is not a break.
    SELECT p.drive_id, NULL, 'unique_permissions',
           min(p.first_seen_at) FILTER (WHERE p.deleted_at IS NULL),
           min(p.first_seen_at),
           max(p.deleted_at),
           (SELECT count(*) FROM msgraph_drive_items c WHERE c.tenant_id = $1 AND c.drive_id = p.drive_id
                AND coalesce(c.permission_root_id, c.id) = p.item_id AND c.deleted_at IS NULL),
           p.item_id, NULL, NULL, NULL, NULL
    FROM unique_keys k
    JOIN msgraph_drive_item_permissions p ON p.tenant_id = $1 AND p.drive_id = k.drive_id
         AND p.item_id = k.item_id AND p.inherited_from_id IS NULL
    JOIN msgraph_drive_items i ON i.tenant_id = p.tenant_id AND i.drive_id = p.drive_id AND i.id = p.item_id
         AND NOT i.is_root
    GROUP BY p.drive_id, p.item_id
), events AS (
    SELECT e.*,
           CASE WHEN e.live_first_seen IS NOT NULL THEN 'opened' ELSE 'removed' END AS change,
           coalesce(e.live_first_seen, e.any_first_seen) AS first_seen_at,
           CASE WHEN e.live_first_seen IS NULL THEN e.removed_at END AS gone_at
    FROM exposures e
)
SELECT ev.change, ev.kind, coalesce(ev.gone_at, ev.first_seen_at) AS at, ev.first_seen_at,
       ev.gone_at AS removed_at,
       floor(extract(epoch FROM coalesce(ev.gone_at, now()) - ev.first_seen_at) / 86400)::bigint AS open_days,
       ev.drive_id, ev.permission_id, ev.item_id, i.name AS item_name, i.path AS item_path, ev.items,
       d.site_id, s.display_name AS site_name, ev.roles, ev.link_type, ev.grantee, ev.grantee_email,
       count(*) OVER () AS total
FROM events ev
LEFT JOIN msgraph_drive_items i ON i.tenant_id = $1 AND i.drive_id = ev.drive_id AND i.id = ev.item_id
LEFT JOIN msgraph_drives d ON d.tenant_id = $1 AND d.id = ev.drive_id
LEFT JOIN msgraph_sites s ON s.tenant_id = $1 AND s.id = d.site_id
WHERE coalesce(ev.gone_at, ev.first_seen_at) >= $2
  AND ($3::text IS NULL OR ev.kind = $3)
  AND ($4::text IS NULL OR ev.change = $4)
ORDER BY at DESC, ev.drive_id, ev.item_id, ev.kind
LIMIT $5 OFFSET $6";

impl Store {
    /// Exposure that opened or went away since `query.since`, newest first.
    pub async fn exposure_changes(
        &self,
        tenant: &str,
        query: &ChangesQuery,
        req: &PageRequest,
    ) -> Result<Page<ExposureEvent>, StoreError> {
        let (kind, change) = (
            query.kind.map(ExposureKind::as_str),
            query.change.map(ExposureChange::as_str),
        );
        let (rows, total) = super::windowed(
            req,
            |r: &EventRow| r.total,
            |limit, offset| async move {
                Ok(sqlx::query_as(EXPOSURES)
                    .bind(tenant)
                    .bind(query.since)
                    .bind(kind)
                    .bind(change)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await?)
            },
        )
        .await?;
        let events = rows
            .into_iter()
            .map(|r| {
                Ok(ExposureEvent {
                    change: r.change.parse().map_err(StoreError::Invalid)?,
                    kind: r.kind.parse().map_err(StoreError::Invalid)?,
                    at: r.at,
                    first_seen_at: r.first_seen_at,
                    removed_at: r.removed_at,
                    open_days: r.open_days,
                    drive_id: r.drive_id,
                    permission_id: r.permission_id,
                    item_id: r.item_id,
                    item_name: r.item_name,
                    item_path: r.item_path,
                    items: r.items,
                    site_id: r.site_id,
                    site_name: r.site_name,
                    roles: r.roles,
                    link_type: r.link_type,
                    grantee: r.grantee,
                    grantee_email: r.grantee_email,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Page::new(events, total, req))
    }

    /// When the tenant's first permission scan saw its first permission: exposure that existed
    /// before any scan counts as first seen then. `None` before any permission is stored.
    pub async fn first_permission_seen_at(
        &self,
        tenant: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT min(first_seen_at) FROM msgraph_drive_item_permissions WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_one(&self.pool)
        .await?)
    }
}
