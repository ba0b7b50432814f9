//! Keeping the stored audiences and reach (`holder_audiences`, `person_reach` and its
//! libraries) current after each scan, recomputing only where the scan's changes can reach:
//! - a change in the directory (users, groups, their members or owners) can change any holder's
//!   audience ("Everyone except external users" counts every member): everything is recomputed;
//! - otherwise only the libraries where an item, a permission or a grant changed (or of a site
//!   that changed: its group makes the site groups' members), and then everyone's totals, which
//!   are sums of the stored libraries.
//!
//! Changes are found by the rows' own `synced_at` and `deleted_at` (a scan writes only what Graph
//! returned, and an incremental round returns what changed, with its parent folders), since the
//! start of the oldest transaction open when the last recomputation began: a write committed
//! after that recomputation read the tables belongs to a transaction open then, and is seen.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::audience::{HOLDER_AUDIENCES, holder_set_statements};
use super::largest::AUDIENCE_COLUMNS;
use crate::{Store, StoreError};

/// The name `mv_refresh_log` kept the last recomputation of every tenant under, before each
/// tenant had its own in `audience_refresh_log`: a database from then starts from it.
const SHARED_STAMP: &str = "holder_audiences";

/// What one recomputation of a tenant's stored audiences and reach did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AudienceRefresh {
    /// The tenant.
    pub tenant: String,
    /// Every library was recomputed (first time, or the directory changed).
    pub whole: bool,
    /// Libraries recomputed.
    pub libraries: u64,
    /// Holders (items with permissions of their own) whose audience was recomputed.
    pub holders: u64,
    /// Rows of items, permissions and grants written since the last recomputation (none
    /// counted for a whole one).
    pub rows_changed: u64,
}

/// The libraries of tenant `$1` with rows changed since `$2`, and how many rows.
const CHANGED_LIBRARIES: &str = "
SELECT drive_id, count(*) AS n FROM (
    SELECT drive_id FROM msgraph_drive_items
    WHERE tenant_id = $1 AND (synced_at >= $2 OR deleted_at >= $2)
    UNION ALL
    SELECT drive_id FROM msgraph_drive_item_permissions
    WHERE tenant_id = $1 AND (synced_at >= $2 OR deleted_at >= $2)
    UNION ALL
    SELECT drive_id FROM msgraph_drive_item_permission_grants
    WHERE tenant_id = $1 AND (synced_at >= $2 OR deleted_at >= $2)
    UNION ALL
    -- The libraries of a changed site's collection (its group resolves their site groups).
    SELECT d.id FROM msgraph_sites s
    JOIN msgraph_sites ds ON ds.tenant_id = $1 AND split_part(ds.id, ',', 2) = split_part(s.id, ',', 2)
    JOIN msgraph_drives d ON d.tenant_id = $1 AND d.site_id = ds.id
    WHERE s.tenant_id = $1 AND (s.synced_at >= $2 OR s.deleted_at >= $2)
) c GROUP BY drive_id";

/// Whether a directory row of tenant `$1` changed since `$2`.
const DIRECTORY_CHANGED: &str = "
SELECT EXISTS (SELECT 1 FROM msgraph_users WHERE tenant_id = $1 AND (synced_at >= $2 OR deleted_at >= $2))
    OR EXISTS (SELECT 1 FROM msgraph_groups WHERE tenant_id = $1 AND (synced_at >= $2 OR deleted_at >= $2))
    OR EXISTS (SELECT 1 FROM msgraph_group_members WHERE tenant_id = $1 AND (synced_at >= $2 OR deleted_at >= $2))
    OR EXISTS (SELECT 1 FROM msgraph_group_owners WHERE tenant_id = $1 AND (synced_at >= $2 OR deleted_at >= $2))";

impl Store {
    /// Recomputes the stored audiences and reach of every tenant where they were due (see
    /// [`Store::refresh_tenant_audiences_if_due`]); what it did, per tenant recomputed.
    pub async fn refresh_audiences_if_due(&self) -> Result<Vec<AudienceRefresh>, StoreError> {
        let mut done = Vec::new();
        for tenant in self.tenants_with_drives().await? {
            done.extend(self.refresh_tenant_audiences_if_due(&tenant).await?);
        }
        Ok(done)
    }

    /// Recomputes one tenant's stored audiences and reach when any stored table changed since
    /// they were last computed, where the changes reach; `None` when nothing was due. A scan
    /// calls it for its own tenant: it changed no other tenant's rows, and each tenant's scan
    /// recomputes its own, so the work of a scan's end does not grow with the tenants.
    pub async fn refresh_tenant_audiences_if_due(
        &self,
        tenant: &str,
    ) -> Result<Option<AudienceRefresh>, StoreError> {
        let last: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT coalesce(
                 (SELECT last_refreshed_at FROM audience_refresh_log WHERE tenant_id = $1),
                 (SELECT last_refreshed_at FROM mv_refresh_log WHERE mv_name = $2))",
        )
        .bind(tenant)
        .bind(SHARED_STAMP)
        .fetch_one(&self.pool)
        .await?;
        if let Some(last) = last {
            let due: bool = sqlx::query_scalar(
                "SELECT coalesce((SELECT max(last_updated_at) FROM tenant_update_log WHERE tenant_id = $2) >= $1, false)",
            )
            .bind(last)
            .bind(tenant)
            .fetch_one(&self.pool)
            .await?;
            if !due {
                return Ok(None);
            }
        }
        let started = self.oldest_open_transaction_start().await?;
        let done = match last {
            Some(since) => self.recompute_changed_since(tenant, since).await?,
            None => self.refresh_audiences(tenant).await?,
        };
        sqlx::query(
            "INSERT INTO audience_refresh_log (tenant_id, last_refreshed_at) VALUES ($1, $2) \
             ON CONFLICT (tenant_id) DO UPDATE SET last_refreshed_at = EXCLUDED.last_refreshed_at",
        )
        .bind(tenant)
        .bind(started)
        .execute(&self.pool)
        .await?;
        Ok(Some(done))
    }

    /// Recomputes what changed in tenant `tenant` since `since`: everything when its directory
    /// changed, else the libraries with changed rows. Correct for any `since` at or before the
    /// last recomputation began (a later one misses what changed in between):
    /// [`Store::refresh_tenant_audiences_if_due`] keeps that time; benches and tests pass their
    /// own.
    pub async fn recompute_changed_since(
        &self,
        tenant: &str,
        since: DateTime<Utc>,
    ) -> Result<AudienceRefresh, StoreError> {
        let directory: bool = sqlx::query_scalar(DIRECTORY_CHANGED)
            .bind(tenant)
            .bind(since)
            .fetch_one(&self.pool)
            .await?;
        if directory {
            return self.refresh_audiences(tenant).await;
        }
        let changed: Vec<(String, i64)> = sqlx::query_as(CHANGED_LIBRARIES)
            .bind(tenant)
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        let libraries: Vec<String> = changed.iter().map(|(d, _)| d.clone()).collect();
        let mut done = self.recompute(tenant, Some(&libraries)).await?;
        done.rows_changed = changed.iter().map(|(_, n)| *n as u64).sum();
        Ok(done)
    }

    /// Recomputes one tenant's stored audiences and every person's reach, whole, from one
    /// computation of the holder sets, in one transaction (readers see the previous set until
    /// it commits).
    pub async fn refresh_audiences(&self, tenant: &str) -> Result<AudienceRefresh, StoreError> {
        self.recompute(tenant, None).await
    }

    /// Recomputes the holders of `libraries` (all when `None`), then everyone's totals.
    async fn recompute(
        &self,
        tenant: &str,
        libraries: Option<&[String]>,
    ) -> Result<AudienceRefresh, StoreError> {
        let mut done = AudienceRefresh {
            tenant: tenant.to_string(),
            whole: libraries.is_none(),
            libraries: 0,
            holders: 0,
            rows_changed: 0,
        };
        if libraries.is_some_and(<[String]>::is_empty) {
            return Ok(done);
        }
        let mut tx = self.whole_set_transaction().await?;
        for statement in holder_set_statements(libraries.is_some()) {
            sqlx::query(&statement)
                .bind(tenant)
                .bind(libraries)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "DELETE FROM holder_audiences WHERE tenant_id = $1 AND ($2::text[] IS NULL OR drive_id = ANY($2))",
        )
        .bind(tenant)
        .bind(libraries)
        .execute(&mut *tx)
        .await?;
        done.holders = sqlx::query(&format!(
            "INSERT INTO holder_audiences (tenant_id, drive_id, holder_id, items, {AUDIENCE_COLUMNS})
SELECT $1, a.* FROM ({HOLDER_AUDIENCES}) a"
        ))
        .bind(tenant)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        Self::store_reach(&mut tx, tenant, libraries).await?;
        done.libraries = match libraries {
            Some(l) => l.len() as u64,
            None => sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM msgraph_drives WHERE tenant_id = $1 AND deleted_at IS NULL",
            )
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await? as u64,
        };
        tx.commit().await?;
        tracing::info!(?done, "stored audiences and reach recomputed");
        Ok(done)
    }

    /// Every tenant with a library.
    pub(crate) async fn tenants_with_drives(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT tenant_id FROM msgraph_drives")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
