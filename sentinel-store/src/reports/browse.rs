//! Drill-down: site -> drives -> folders and files -> one item with its cached permissions
//! and who each permission reaches.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, Row};

use super::{Page, PageRequest};
use crate::{Store, StoreError};

/// A site as its drill-down page heads it (`msgraph_sites`).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SiteSummary {
    /// Composite site id.
    pub site_id: String,
    /// The site's title.
    pub display_name: Option<String>,
    /// Where it opens in SharePoint.
    pub web_url: Option<String>,
    /// Set when a scan found the site gone; the row is kept for history.
    pub deleted_at: Option<DateTime<Utc>>,
    /// When a scan last wrote the row.
    pub synced_at: DateTime<Utc>,
    /// Why scans skip the site (Graph refused to read it), and since when.
    pub skipped_reason: Option<String>,
    /// When scans started skipping it.
    pub skipped_since: Option<DateTime<Utc>>,
}

/// How a site's libraries are listed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LibraryOrder {
    /// By name.
    #[default]
    Name,
    /// Largest audience first (the most people who can open one of its items).
    Audience,
}

words!(LibraryOrder, "sort", Name = "name", Audience = "audience");

/// A library or OneDrive with its figures (`mv_drive_summary` joined to `msgraph_drives`).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DriveSummary {
    /// Drive id.
    pub drive_id: String,
    /// Its site, for a site library.
    pub site_id: Option<String>,
    /// Its owner, for a OneDrive.
    pub owner_user_id: Option<String>,
    /// Library name.
    pub name: Option<String>,
    /// `documentLibrary`, `business` or `personal`.
    pub drive_type: Option<String>,
    /// Where it opens in SharePoint.
    pub web_url: Option<String>,
    /// Set when a scan found the drive gone.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Live items, as of the last view refresh (like the figures below).
    pub items: i64,
    /// Distinct sharing links on the drive's items.
    pub links: i64,
    /// Items whose permissions differ from their parent's.
    pub unique_permission_items: i64,
    /// The most people who can open one of its items (stored audiences, as of the last scan).
    pub largest_audience: i64,
    /// Its items that anyone with a link can open.
    pub items_open_to_anyone: i64,
    /// Seconds since a delta round of it last completed (`None`: never read whole).
    pub checked_secs_ago: Option<f64>,
}

/// An item as the drill-down lists it, with what reaches it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ItemSummary {
    /// The item's drive.
    pub drive_id: String,
    /// Item id within the drive.
    pub item_id: String,
    /// Its folder (`None` for the root).
    pub parent_id: Option<String>,
    /// File or folder name.
    pub name: Option<String>,
    /// Path from the drive's root, maintained by the store from `parent_id`.
    pub path: Option<String>,
    /// A folder.
    pub is_folder: bool,
    /// The drive's root folder.
    pub is_root: bool,
    /// Bytes.
    pub size: Option<i64>,
    /// When it last changed.
    pub modified_at: Option<DateTime<Utc>>,
    /// The `shared` facet's scope (`anonymous`, `organization`, `users`), as Graph reported it.
    pub shared_scope: Option<String>,
    /// It is a permission root of its own: its permissions differ from its parent's.
    pub has_unique_permissions: bool,
    /// Permissions that apply to the item (its own, or its hierarchy root's).
    pub permissions: i64,
    /// Of those, sharing links, and the broadest link scope among them.
    pub links: i64,
    /// `anonymous` before `organization` before `users`.
    pub broadest_link_scope: Option<String>,
    /// Set when a scan found the item gone.
    pub deleted_at: Option<DateTime<Utc>>,
    /// When its permissions were last read; `None` while they never were.
    pub permissions_synced_at: Option<DateTime<Utc>>,
}

/// One permission that applies to an item, with its grantees.
#[derive(Debug, Clone, Serialize)]
pub struct ItemPermission {
    /// Permission id (`msgraph_drive_item_permissions`).
    pub permission_id: String,
    /// What it allows: `read`, `write`, `owner`, ...
    pub roles: Vec<String>,
    /// For a sharing link: `view`, `edit`, ...
    pub link_type: Option<String>,
    /// For a sharing link: `anonymous`, `organization` or `users`.
    pub link_scope: Option<String>,
    /// When it stops working; `None` when it never does.
    pub expires_at: Option<DateTime<Utc>>,
    /// For a link: whether it needs a password.
    pub has_password: Option<bool>,
    /// For an invitation: the address it was sent to.
    pub invitation_email: Option<String>,
    /// The item the permission is set on, when it is not the item itself (inherited).
    pub inherited_from_item_id: Option<String>,
    /// That item's path.
    pub inherited_from_path: Option<String>,
    /// When a scan first saw it (exposure age: Graph gives no creation date).
    pub first_seen_at: DateTime<Utc>,
    /// Whole days since then: how long it has been open, as far as the scans saw.
    pub open_days: i64,
    /// Whom it grants to.
    pub grants: Vec<Grant>,
}

/// One principal a permission reaches (`msgraph_drive_item_permission_grants`).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Grant {
    /// The permission it belongs to.
    pub permission_id: String,
    /// `user`, `group`, `site_user`, `site_group`, `application`, `link` or `invitation`.
    pub grantee_type: String,
    /// Directory object id, when the grantee has one.
    pub grantee_id: Option<String>,
    /// How the grantee is shown.
    pub display_name: Option<String>,
    /// The grantee's address, when known.
    pub email: Option<String>,
    /// Outside the organisation: a guest, an external address or an anonymous link.
    pub is_external: bool,
    /// The "Everyone" claim: every user, guests included.
    pub is_everyone: bool,
    /// The "Everyone except external users" claim: every internal user.
    pub is_everyone_except_external: bool,
    /// For a group grantee: how many users it reaches, nested groups included.
    pub reaches_users: Option<i64>,
    /// When a scan first saw this grantee on the permission.
    pub first_seen_at: DateTime<Utc>,
}

#[derive(Debug, sqlx::FromRow)]
struct PermissionRow {
    permission_id: String,
    roles: Vec<String>,
    link_type: Option<String>,
    link_scope: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    has_password: Option<bool>,
    invitation_email: Option<String>,
    source_item_id: String,
    source_path: Option<String>,
    first_seen_at: DateTime<Utc>,
    open_days: i64,
}

const ITEM_COLUMNS: &str = "i.drive_id, i.id AS item_id, i.parent_id, i.name, i.path, i.is_folder, i.is_root, i.size, \
    i.modified_at, i.shared_scope, (i.is_permission_root AND i.permission_root_id = i.id AND NOT i.is_root) AS has_unique_permissions, \
    coalesce(p.permissions, 0) AS permissions, coalesce(p.links, 0) AS links, p.broadest_link_scope, i.deleted_at, \
    i.permissions_last_synced_at AS permissions_synced_at";

/// The columns of `msgraph_drive_items` that [`ITEM_COLUMNS`] and its lateral join read.
const ITEM_FIELDS: &str = "i.tenant_id, i.drive_id, i.id, i.parent_id, i.name, i.path, i.is_folder, i.is_root, i.size, \
    i.modified_at, i.shared_scope, i.is_permission_root, i.permission_root_id, i.deleted_at, i.permissions_last_synced_at";

/// Per item: the permissions that apply (own or root's), counted.
const ITEM_PERMISSIONS_LATERAL: &str = "LEFT JOIN LATERAL ( \
    SELECT count(*) AS permissions, count(*) FILTER (WHERE q.link_scope IS NOT NULL) AS links, \
           (array_agg(q.link_scope ORDER BY CASE q.link_scope WHEN 'anonymous' THEN 0 WHEN 'organization' THEN 1 ELSE 2 END) \
              FILTER (WHERE q.link_scope IS NOT NULL))[1] AS broadest_link_scope \
    FROM msgraph_drive_item_permissions q \
    WHERE q.tenant_id = i.tenant_id AND q.drive_id = i.drive_id AND q.item_id = coalesce(i.permission_root_id, i.id) \
      AND q.deleted_at IS NULL) p ON true";

impl Store {
    /// One site, deleted or not; `None` when it was never stored.
    pub async fn site(
        &self,
        tenant: &str,
        site_id: &str,
    ) -> Result<Option<SiteSummary>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id AS site_id, display_name, web_url, deleted_at, synced_at, skipped_reason, skipped_since \
             FROM msgraph_sites WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(site_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Drives with their figures as of the last view refresh (`mv_drive_summary`).
    const DRIVE_SELECT: &str = "SELECT d.id AS drive_id, d.site_id, d.owner_user_id, d.name, d.drive_type, d.web_url, d.deleted_at, \
           coalesce(s.items, 0) AS items, coalesce(s.links, 0) AS links, \
           coalesce(s.unique_permission_items, 0) AS unique_permission_items, \
           coalesce(a.largest_audience, 0) AS largest_audience, coalesce(a.anyone, 0) AS items_open_to_anyone, \
           extract(epoch FROM now() - d.checked_at)::float8 AS checked_secs_ago \
         FROM msgraph_drives d LEFT JOIN mv_drive_summary s ON s.tenant_id = d.tenant_id AND s.drive_id = d.id \
         LEFT JOIN LATERAL (SELECT max(h.readers) AS largest_audience, \
                                   sum(h.items) FILTER (WHERE h.anyone_can_read)::bigint AS anyone \
                            FROM holder_audiences h WHERE h.tenant_id = d.tenant_id AND h.drive_id = d.id) a ON true";

    /// The libraries of a site, with their item and link counts, by name or largest audience
    /// first.
    pub async fn site_drives(
        &self,
        tenant: &str,
        site_id: &str,
        include_deleted: bool,
        order: LibraryOrder,
    ) -> Result<Vec<DriveSummary>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "{} WHERE d.tenant_id = $1 AND d.site_id = $2 AND ($3 OR d.deleted_at IS NULL) \
             ORDER BY CASE WHEN $4 THEN coalesce(a.largest_audience, 0) END DESC NULLS LAST, d.name, d.id",
            Self::DRIVE_SELECT
        ))
        .bind(tenant)
        .bind(site_id)
        .bind(include_deleted)
        .bind(order == LibraryOrder::Audience)
        .fetch_all(&self.pool)
        .await?)
    }

    /// One drive with its figures; `None` when it was never stored.
    pub async fn drive(
        &self,
        tenant: &str,
        drive_id: &str,
    ) -> Result<Option<DriveSummary>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "{} WHERE d.tenant_id = $1 AND d.id = $2",
            Self::DRIVE_SELECT
        ))
        .bind(tenant)
        .bind(drive_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// One item (`None` for the drive's root).
    pub async fn item(
        &self,
        tenant: &str,
        drive_id: &str,
        item_id: Option<&str>,
    ) -> Result<Option<ItemSummary>, StoreError> {
        // Two statements rather than `id = $3 OR ($3 IS NULL AND is_root)`: a plan made for
        // either case reads the root through its own index instead of scanning the drive.
        let which = if item_id.is_some() {
            "i.id = $3"
        } else {
            "i.is_root"
        };
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM msgraph_drive_items i {ITEM_PERMISSIONS_LATERAL} \
             WHERE i.tenant_id = $1 AND i.drive_id = $2 AND {which} \
             ORDER BY i.deleted_at NULLS FIRST LIMIT 1"
        );
        let mut query = sqlx::query_as(&sql).bind(tenant).bind(drive_id);
        if let Some(id) = item_id {
            query = query.bind(id);
        }
        Ok(query.fetch_optional(&self.pool).await?)
    }

    /// The item's ancestors, root first (for breadcrumbs).
    pub async fn item_ancestors(
        &self,
        tenant: &str,
        drive_id: &str,
        item_id: &str,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        Ok(sqlx::query_as(
            "WITH RECURSIVE up (id, parent_id, name, depth) AS ( \
               SELECT id, parent_id, name, 0 FROM msgraph_drive_items WHERE tenant_id = $1 AND drive_id = $2 AND id = $3 \
               UNION ALL \
               SELECT i.id, i.parent_id, i.name, up.depth + 1 FROM up \
               JOIN msgraph_drive_items i ON i.tenant_id = $1 AND i.drive_id = $2 AND i.id = up.parent_id \
               WHERE up.depth < 200) \
             SELECT id, name FROM up WHERE depth > 0 ORDER BY depth DESC",
        )
        .bind(tenant)
        .bind(drive_id)
        .bind(item_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Children of a folder (`None`: of the drive's root), folders first.
    pub async fn folder_children(
        &self,
        tenant: &str,
        drive_id: &str,
        parent_id: Option<&str>,
        req: &PageRequest,
    ) -> Result<Page<ItemSummary>, StoreError> {
        let parent = match parent_id {
            Some(p) => Some(p.to_string()),
            None => self.item(tenant, drive_id, None).await?.map(|r| r.item_id),
        };
        let cond = "i.tenant_id = $1 AND i.drive_id = $2 AND i.parent_id = $3 AND ($4 OR i.deleted_at IS NULL) \
                    AND coalesce(i.name, '') ILIKE $5";
        // The page and the count run at once, on two connections.
        // The page is cut before the permission counts are joined: a folder of thousands of
        // items would otherwise count every child's permissions to show twenty.
        let rows_sql = format!(
            "SELECT {ITEM_COLUMNS} FROM ( \
               SELECT {ITEM_FIELDS} FROM msgraph_drive_items i WHERE {cond} \
               ORDER BY i.is_folder DESC, i.name, i.id LIMIT $6 OFFSET $7) i \
             {ITEM_PERMISSIONS_LATERAL} ORDER BY i.is_folder DESC, i.name, i.id"
        );
        let total_sql = format!("SELECT count(*) FROM msgraph_drive_items i WHERE {cond}");
        let rows = sqlx::query_as(&rows_sql)
            .bind(tenant)
            .bind(drive_id)
            .bind(&parent)
            .bind(req.include_deleted)
            .bind(req.pattern())
            .bind(req.limit())
            .bind(req.offset())
            .fetch_all(&self.pool);
        let total = sqlx::query_scalar(&total_sql)
            .bind(tenant)
            .bind(drive_id)
            .bind(&parent)
            .bind(req.include_deleted)
            .bind(req.pattern())
            .fetch_one(&self.pool);
        let (rows, total) = futures::try_join!(rows, total)?;
        Ok(Page::new(rows, total, req))
    }

    /// Items of a drive that carry permissions of their own with a sharing link or an
    /// external, guest or "Everyone" grant: where to look first.
    ///
    /// "Of their own": OneDrive for Business and SharePoint do not return `inheritedFrom`
    /// (permission resource, Remarks), so in exhaustive mode, where every item's permissions
    /// are stored, a permission its parent holds too (same id) is taken as inherited.
    pub async fn shared_items(
        &self,
        tenant: &str,
        drive_id: &str,
        req: &PageRequest,
    ) -> Result<Page<ItemSummary>, StoreError> {
        let cond = "i.tenant_id = $1 AND i.drive_id = $2 AND ($3 OR i.deleted_at IS NULL) AND coalesce(i.name, '') ILIKE $4 \
            AND EXISTS (SELECT 1 FROM msgraph_drive_item_permissions q \
                LEFT JOIN msgraph_drive_item_permission_grants g ON g.tenant_id = q.tenant_id AND g.drive_id = q.drive_id \
                     AND g.item_id = q.item_id AND g.permission_id = q.permission_id AND g.deleted_at IS NULL \
                WHERE q.tenant_id = i.tenant_id AND q.drive_id = i.drive_id AND q.item_id = i.id AND q.deleted_at IS NULL \
                  AND NOT i.is_root AND q.inherited_from_id IS NULL \
                  AND (q.link_scope IS NOT NULL OR g.is_external OR g.is_everyone OR g.is_everyone_except_external) \
                  AND NOT EXISTS (SELECT 1 FROM msgraph_drive_item_permissions pp \
                    WHERE pp.tenant_id = q.tenant_id AND pp.drive_id = q.drive_id AND pp.item_id = i.parent_id \
                      AND pp.permission_id = q.permission_id AND pp.deleted_at IS NULL))";
        // The filter is the costly part: it runs once, and the page and the count share it.
        let rows = sqlx::query(&format!(
            "WITH shared AS MATERIALIZED (SELECT i.id, i.path FROM msgraph_drive_items i WHERE {cond}), \
                  page AS (SELECT id FROM shared ORDER BY path, id LIMIT $5 OFFSET $6) \
             SELECT {ITEM_COLUMNS}, (SELECT count(*) FROM shared) AS total \
             FROM page JOIN msgraph_drive_items i ON i.tenant_id = $1 AND i.drive_id = $2 AND i.id = page.id \
             {ITEM_PERMISSIONS_LATERAL} ORDER BY i.path, i.id"
        ))
        .bind(tenant)
        .bind(drive_id)
        .bind(req.include_deleted)
        .bind(req.pattern())
        .bind(req.limit())
        .bind(req.offset())
        .fetch_all(&self.pool)
        .await?;
        let total = match rows.first() {
            Some(row) => row.try_get("total")?,
            None if req.offset() == 0 => 0,
            // A page past the end carries no count.
            None => {
                sqlx::query_scalar(&format!(
                    "SELECT count(*) FROM msgraph_drive_items i WHERE {cond}"
                ))
                .bind(tenant)
                .bind(drive_id)
                .bind(req.include_deleted)
                .bind(req.pattern())
                .fetch_one(&self.pool)
                .await?
            }
        };
        let rows = rows
            .iter()
            .map(ItemSummary::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::new(rows, total, req))
    }

    /// The cached permissions that apply to an item, each with its grantees.
    pub async fn item_permissions_cached(
        &self,
        tenant: &str,
        drive_id: &str,
        item_id: &str,
    ) -> Result<Vec<ItemPermission>, StoreError> {
        let perms: Vec<PermissionRow> = sqlx::query_as(
            "SELECT p.permission_id, p.roles, p.link_type, p.link_scope, p.expires_at, p.has_password, p.invitation_email, \
                    p.item_id AS source_item_id, src.path AS source_path, p.first_seen_at, \
                    floor(extract(epoch FROM now() - p.first_seen_at) / 86400)::bigint AS open_days \
             FROM msgraph_drive_items i \
             JOIN msgraph_drive_item_permissions p ON p.tenant_id = i.tenant_id AND p.drive_id = i.drive_id \
                  AND p.item_id = coalesce(i.permission_root_id, i.id) AND p.deleted_at IS NULL \
             LEFT JOIN msgraph_drive_items src ON src.tenant_id = p.tenant_id AND src.drive_id = p.drive_id AND src.id = p.item_id \
             WHERE i.tenant_id = $1 AND i.drive_id = $2 AND i.id = $3 \
             ORDER BY CASE p.link_scope WHEN 'anonymous' THEN 0 WHEN 'organization' THEN 1 WHEN 'users' THEN 2 ELSE 3 END, p.permission_id",
        )
        .bind(tenant)
        .bind(drive_id)
        .bind(item_id)
        .fetch_all(&self.pool)
        .await?;
        let source = perms.first().map(|p| p.source_item_id.clone());
        let grants: Vec<Grant> = sqlx::query_as(
            "SELECT g.permission_id, g.grantee_type, g.grantee_id, g.display_name, g.email, g.is_external, g.is_everyone, \
                    g.is_everyone_except_external, g.first_seen_at, \
                    CASE WHEN g.grantee_type = 'group' THEN (SELECT count(*) FROM mv_group_transitive_users t \
                         WHERE t.tenant_id = g.tenant_id AND t.group_id = g.grantee_id) END AS reaches_users \
             FROM msgraph_drive_item_permission_grants g \
             WHERE g.tenant_id = $1 AND g.drive_id = $2 AND g.item_id = $3 AND g.deleted_at IS NULL \
             ORDER BY g.permission_id, g.grantee_type, g.display_name",
        )
        .bind(tenant)
        .bind(drive_id)
        .bind(&source)
        .fetch_all(&self.pool)
        .await?;
        Ok(perms
            .into_iter()
            .map(|p| {
                let inherited = p.source_item_id != item_id;
                ItemPermission {
                    grants: grants
                        .iter()
                        .filter(|g| g.permission_id == p.permission_id)
                        .cloned()
                        .collect(),
                    permission_id: p.permission_id,
                    roles: p.roles,
                    link_type: p.link_type,
                    link_scope: p.link_scope,
                    expires_at: p.expires_at,
                    has_password: p.has_password,
                    invitation_email: p.invitation_email,
                    inherited_from_item_id: inherited.then(|| p.source_item_id.clone()),
                    inherited_from_path: if inherited { p.source_path } else { None },
                    first_seen_at: p.first_seen_at,
                    open_days: p.open_days,
                }
            })
            .collect())
    }
}
