//! The tenant's posture as the materialized views hold it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Page, PageRequest};
use crate::{Store, StoreError};

#[derive(Debug, Clone, Default, Serialize, sqlx::FromRow)]
pub struct InventorySummary {
    pub users: i64,
    pub guests: i64,
    pub disabled_users: i64,
    pub groups: i64,
    pub memberships: i64,
    pub sites: i64,
    pub drives: i64,
    pub items: i64,
    pub files: i64,
    pub folders: i64,
    pub bytes: i64,
    pub deleted_users: i64,
    pub deleted_groups: i64,
    pub deleted_sites: i64,
    pub deleted_drives: i64,
    pub deleted_items: i64,
}

#[derive(Debug, Clone, Default, Serialize, sqlx::FromRow)]
pub struct SharingPosture {
    pub anonymous_links: i64,
    pub organization_links: i64,
    pub users_links: i64,
    pub edit_links: i64,
    pub links_without_expiry: i64,
    pub external_grants: i64,
    pub everyone_grants: i64,
    pub everyone_except_external_grants: i64,
    pub unique_permission_items: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SitePosture {
    pub site_id: String,
    pub display_name: Option<String>,
    pub web_url: Option<String>,
    pub deleted: bool,
    pub drives: i64,
    pub anonymous_links: i64,
    pub organization_links: i64,
    pub users_links: i64,
    pub external_grants: i64,
    pub everyone_grants: i64,
    pub exposure_score: i64,
}

/// The cached posture: `None` parts were never computed (no sync has run yet).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PostureSnapshot {
    pub inventory: Option<InventorySummary>,
    pub sharing: Option<SharingPosture>,
    /// When the oldest of the views shown was last refreshed.
    pub refreshed_at: Option<DateTime<Utc>>,
}

impl Store {
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
            "SELECT min(last_refreshed_at) FROM mv_refresh_log \
             WHERE mv_name IN ('mv_msgraph_inventory_summary', 'mv_msgraph_sharing_posture_summary', 'mv_msgraph_site_posture')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(PostureSnapshot {
            inventory,
            sharing,
            refreshed_at,
        })
    }

    /// Sites, most exposed first (then by name). Every site, not a top N.
    pub async fn sites_by_exposure(
        &self,
        tenant: &str,
        req: &PageRequest,
    ) -> Result<Page<SitePosture>, StoreError> {
        let rows = sqlx::query_as::<_, SitePosture>(
            "SELECT site_id, display_name, web_url, deleted, drives::bigint AS drives, anonymous_links::bigint AS anonymous_links, \
                    organization_links::bigint AS organization_links, users_links::bigint AS users_links, \
                    external_grants::bigint AS external_grants, everyone_grants::bigint AS everyone_grants, \
                    exposure_score::bigint AS exposure_score \
             FROM mv_msgraph_site_posture \
             WHERE tenant_id = $1 AND ($2 OR NOT deleted) AND coalesce(display_name, '') ILIKE $3 \
             ORDER BY exposure_score DESC, display_name, site_id LIMIT $4 OFFSET $5",
        )
        .bind(tenant)
        .bind(req.include_deleted)
        .bind(req.pattern())
        .bind(req.limit())
        .bind(req.offset())
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
