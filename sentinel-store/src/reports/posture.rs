//! The tenant's posture as its summaries (`mv_*` tables, refreshed per tenant) hold it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Page, PageRequest};
use crate::{Store, StoreError};

/// What the tenant holds, from `mv_msgraph_inventory_summary`. Live rows unless named `deleted_*`.
#[derive(Debug, Clone, Default, Serialize, sqlx::FromRow)]
pub struct InventorySummary {
    /// Users in the directory.
    pub users: i64,
    /// Of those, guests.
    pub guests: i64,
    /// Of those, accounts that are disabled.
    pub disabled_users: i64,
    /// Groups in the directory.
    pub groups: i64,
    /// Direct group memberships.
    pub memberships: i64,
    /// SharePoint sites.
    pub sites: i64,
    /// Libraries and OneDrives.
    pub drives: i64,
    /// Files and folders.
    pub items: i64,
    /// Files.
    pub files: i64,
    /// Folders.
    pub folders: i64,
    /// Bytes in files.
    pub bytes: i64,
    /// Users soft-deleted since they left the directory.
    pub deleted_users: i64,
    /// Groups soft-deleted.
    pub deleted_groups: i64,
    /// Sites soft-deleted.
    pub deleted_sites: i64,
    /// Drives soft-deleted.
    pub deleted_drives: i64,
    /// Items soft-deleted.
    pub deleted_items: i64,
}

/// How the tenant shares, from `mv_msgraph_sharing_posture_summary`: links counted once each, grants once per grantee and permission.
#[derive(Debug, Clone, Default, Serialize, sqlx::FromRow)]
pub struct SharingPosture {
    /// Links anyone can use, no sign-in needed.
    pub anonymous_links: i64,
    /// Links anyone in the organisation can use.
    pub organization_links: i64,
    /// Links for named people only.
    pub users_links: i64,
    /// Links that allow editing.
    pub edit_links: i64,
    /// Links that never expire.
    pub links_without_expiry: i64,
    /// Grants to guests and external addresses.
    pub external_grants: i64,
    /// Grants to the "Everyone" claim.
    pub everyone_grants: i64,
    /// Grants to the "Everyone except external users" claim.
    pub everyone_except_external_grants: i64,
    /// Items with permissions of their own (sharing broken from their parent).
    pub unique_permission_items: i64,
}

/// One site's exposure, from `mv_msgraph_site_posture`: figures over the live items of its libraries.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SitePosture {
    /// Composite site id.
    pub site_id: String,
    /// The site's title.
    pub display_name: Option<String>,
    /// Where it opens in SharePoint.
    pub web_url: Option<String>,
    /// The site is soft-deleted.
    pub deleted: bool,
    /// Its live libraries.
    pub drives: i64,
    /// Distinct anyone links on its items.
    pub anonymous_links: i64,
    /// Distinct organisation links.
    pub organization_links: i64,
    /// Distinct links for named people.
    pub users_links: i64,
    /// Grants to guests and external addresses.
    pub external_grants: i64,
    /// Grants to either Everyone claim.
    pub everyone_grants: i64,
    /// 3 per anyone link, 2 per Everyone or external grant, 1 per organisation link: the ranking of `/analytics`.
    pub exposure_score: i64,
    /// The most people who can open one item of its libraries (stored audiences, last scan).
    pub largest_audience: i64,
}

/// How `/analytics` ranks sites.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteOrder {
    /// Most exposed first ([`SitePosture::exposure_score`]).
    #[default]
    Exposure,
    /// Largest audience first.
    Audience,
}

words!(
    SiteOrder,
    "sort",
    Exposure = "exposure",
    Audience = "audience"
);

/// The cached posture: `None` parts were never computed (no sync has run yet).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PostureSnapshot {
    /// `None` until `mv_msgraph_inventory_summary` was first refreshed.
    pub inventory: Option<InventorySummary>,
    /// `None` until `mv_msgraph_sharing_posture_summary` was first refreshed.
    pub sharing: Option<SharingPosture>,
    /// When the oldest of the tenant's summaries shown was last refreshed.
    pub refreshed_at: Option<DateTime<Utc>>,
    /// How long ago the drives were last read (live, not from a view).
    pub freshness: DriveFreshness,
}

/// How stale the tenant's drives are: seconds since each readable live drive's last completed
/// delta round, as quantiles over the drives read at least once.
#[derive(Debug, Clone, Default, Serialize, sqlx::FromRow)]
pub struct DriveFreshness {
    /// Readable live drives (skipped ones are kept as last read and left out).
    pub drives: i64,
    /// Of those, the ones no round has completed for yet.
    pub never_read: i64,
    /// Half the drives read were read within this many seconds.
    pub median_secs: Option<f64>,
    /// 95% of the drives read were read within this many seconds.
    pub p95_secs: Option<f64>,
    /// The stalest drive read, in seconds.
    pub oldest_secs: Option<f64>,
}

impl Store {
    /// The tenant's cached posture: inventory and sharing, and how old they are.
    pub async fn posture(&self, tenant: &str) -> Result<PostureSnapshot, StoreError> {
        let inventory = sqlx::query_as::<_, InventorySummary>(
            "SELECT users, guests, disabled_users, groups, memberships, sites, drives, items, files, folders, \
                    bytes::bigint AS bytes, deleted_users, deleted_groups, deleted_sites, deleted_drives, deleted_items \
             FROM mv_msgraph_inventory_summary WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_optional(&self.pool)
        .await?;
        let sharing = sqlx::query_as::<_, SharingPosture>(
            "SELECT anonymous_links, organization_links, users_links, edit_links, links_without_expiry, external_grants, \
                    everyone_grants, everyone_except_external_grants, unique_permission_items \
             FROM mv_msgraph_sharing_posture_summary WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_optional(&self.pool)
        .await?;
        let refreshed_at = sqlx::query_scalar(
            "SELECT min(last_refreshed_at) FROM view_refresh_log WHERE tenant_id = $1 \
               AND mv_name IN ('mv_msgraph_inventory_summary', 'mv_msgraph_sharing_posture_summary', 'mv_msgraph_site_posture')",
        )
        .bind(tenant)
        .fetch_one(&self.pool)
        .await?;
        Ok(PostureSnapshot {
            inventory,
            sharing,
            refreshed_at,
            freshness: self.drive_freshness(tenant).await?,
        })
    }

    /// How long ago the tenant's readable drives were last read (see [`DriveFreshness`]).
    pub async fn drive_freshness(&self, tenant: &str) -> Result<DriveFreshness, StoreError> {
        Ok(sqlx::query_as(
            "WITH ages AS ( \
               SELECT extract(epoch FROM now() - d.checked_at)::float8 AS secs \
               FROM msgraph_drives d LEFT JOIN msgraph_sites s ON s.tenant_id = d.tenant_id AND s.id = d.site_id \
               WHERE d.tenant_id = $1 AND d.deleted_at IS NULL \
                 AND d.skipped_reason IS NULL AND s.skipped_reason IS NULL) \
             SELECT count(*) AS drives, count(*) FILTER (WHERE secs IS NULL) AS never_read, \
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY secs) AS median_secs, \
                    percentile_cont(0.95) WITHIN GROUP (ORDER BY secs) AS p95_secs, \
                    max(secs) AS oldest_secs \
             FROM ages",
        )
        .bind(tenant)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Sites, most exposed (or largest audience) first, then by name. Every site, not a top N.
    pub async fn sites_by_exposure(
        &self,
        tenant: &str,
        req: &PageRequest,
        order: SiteOrder,
    ) -> Result<Page<SitePosture>, StoreError> {
        let rows = sqlx::query_as::<_, SitePosture>(
            "SELECT p.site_id, p.display_name, p.web_url, p.deleted, p.drives::bigint AS drives, \
                    p.anonymous_links::bigint AS anonymous_links, p.organization_links::bigint AS organization_links, \
                    p.users_links::bigint AS users_links, p.external_grants::bigint AS external_grants, \
                    p.everyone_grants::bigint AS everyone_grants, p.exposure_score::bigint AS exposure_score, \
                    coalesce(a.largest, 0) AS largest_audience \
             FROM mv_msgraph_site_posture p \
             LEFT JOIN LATERAL (SELECT max(h.readers) AS largest FROM msgraph_drives d \
                                JOIN holder_audiences h ON h.tenant_id = d.tenant_id AND h.drive_id = d.id \
                                WHERE d.tenant_id = p.tenant_id AND d.site_id = p.site_id AND d.deleted_at IS NULL) a ON true \
             WHERE p.tenant_id = $1 AND ($2 OR NOT p.deleted) AND coalesce(p.display_name, '') ILIKE $3 \
             ORDER BY CASE WHEN $6 THEN coalesce(a.largest, 0) END DESC NULLS LAST, \
                      p.exposure_score DESC, p.display_name, p.site_id LIMIT $4 OFFSET $5",
        )
        .bind(tenant)
        .bind(req.include_deleted)
        .bind(req.pattern())
        .bind(req.limit())
        .bind(req.offset())
        .bind(order == SiteOrder::Audience)
        .fetch_all(&self.pool)
        .await?;
        let total = sqlx::query_scalar(
            "SELECT count(*) FROM mv_msgraph_site_posture \
             WHERE tenant_id = $1 AND ($2 OR NOT deleted) AND coalesce(display_name, '') ILIKE $3",
        )
        .bind(tenant)
        .bind(req.include_deleted)
        .bind(req.pattern())
        .fetch_one(&self.pool)
        .await?;
        Ok(Page::new(rows, total, req))
    }
}
