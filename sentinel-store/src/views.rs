//! The dashboard's summaries (`mv_*` tables, `003_materialized_views.sql`): refreshed one
//! tenant at a time, and only those whose source tables changed for that tenant.

use chrono::{DateTime, Utc};

use crate::{Store, StoreError};

/// Lets one session at a time analyze the content tables (beside `MIGRATE_LOCK` in `schema.rs`).
const ANALYZE_LOCK: i64 = 0x5e47_1e10_0000_0002;
/// The advisory-lock namespace of one tenant's summary refresh: two at once would both insert
/// the rows the other deleted.
const SUMMARY_LOCK_NAMESPACE: i32 = 0x5e47_0019;

/// Each summary table and the query of one tenant's rows (`$1`), in refresh order. The names
/// are this list's, never a caller's, so they are safe to put in SQL text.
const SUMMARIES: [(&str, &str); 5] = [
    (
        "mv_drive_summary",
        "SELECT * FROM v_drive_summary WHERE tenant_id = $1",
    ),
    (
        "mv_group_transitive_users",
        "SELECT * FROM group_transitive_users_of($1)",
    ),
    (
        "mv_msgraph_inventory_summary",
        "SELECT * FROM v_msgraph_inventory_summary WHERE tenant_id = $1",
    ),
    (
        "mv_msgraph_sharing_posture_summary",
        "SELECT * FROM v_msgraph_sharing_posture_summary WHERE tenant_id = $1",
    ),
    (
        "mv_msgraph_site_posture",
        "SELECT * FROM v_msgraph_site_posture WHERE tenant_id = $1",
    ),
];

/// What one refresh did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MvRefresh {
    /// Summaries refreshed, by name.
    pub refreshed: Vec<String>,
    /// Summaries left alone: none of their source tables changed for the tenant since their
    /// last refresh.
    pub skipped: Vec<String>,
}

impl Store {
    /// Refreshes the tenant's summaries one of whose source tables changed for the tenant since
    /// the summary was last refreshed for it (or that were never refreshed for it). Another
    /// tenant's writes make none of them due, so a scan's end does not grow with the tenants.
    pub async fn refresh_tenant_views(&self, tenant: &str) -> Result<MvRefresh, StoreError> {
        // A worker starting up applies the schema in one transaction that holds its locks to
        // the end; a refresh beside it can deadlock with it. Refreshes take the migration lock
        // shared (any number at once), so each waits for the other.
        let mut guard = self.pool.acquire().await?;
        sqlx::query("SELECT pg_advisory_lock_shared($1)")
            .bind(crate::schema::MIGRATE_LOCK)
            .execute(&mut *guard)
            .await?;
        let refreshed = self.refresh_due_views(tenant).await;
        let unlocked = sqlx::query("SELECT pg_advisory_unlock_shared($1)")
            .bind(crate::schema::MIGRATE_LOCK)
            .execute(&mut *guard)
            .await;
        if unlocked.is_err() {
            // Never hand a connection that may still hold the lock back to the pool.
            let _ = guard.close().await;
        }
        unlocked?;
        refreshed
    }

    async fn refresh_due_views(&self, tenant: &str) -> Result<MvRefresh, StoreError> {
        let names: Vec<&str> = SUMMARIES.iter().map(|(name, _)| *name).collect();
        let rows: Vec<(String, bool)> = sqlx::query_as(
            "SELECT d.mv_name, bool_or(r.last_refreshed_at IS NULL OR COALESCE(u.last_updated_at >= r.last_refreshed_at, false)) \
             FROM mv_dependencies d \
             LEFT JOIN view_refresh_log r ON r.tenant_id = $1 AND r.mv_name = d.mv_name \
             LEFT JOIN tenant_update_log u ON u.tenant_id = $1 AND u.table_name = d.table_name \
             WHERE d.mv_name = ANY($2) \
             GROUP BY d.mv_name ORDER BY d.mv_name",
        )
        .bind(tenant)
        .bind(&names)
        .fetch_all(&self.pool)
        .await?;
        let mut out = MvRefresh::default();
        for (mv, due) in rows {
            if !due {
                out.skipped.push(mv);
                continue;
            }
            self.refresh_view(tenant, &mv).await?;
            out.refreshed.push(mv);
        }
        Ok(out)
    }

    /// Recomputes one summary's rows of one tenant, whether due or not.
    pub async fn refresh_view(&self, tenant: &str, mv: &str) -> Result<(), StoreError> {
        let Some((name, source)) = SUMMARIES.iter().find(|(name, _)| *name == mv) else {
            return Err(StoreError::Invalid(format!("unknown summary '{mv}'")));
        };
        let started = self.oldest_open_transaction_start().await?;
        crate::retry_transient(|| async move {
            let mut tx = self.pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind(SUMMARY_LOCK_NAMESPACE)
                .bind(tenant)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&format!("DELETE FROM {name} WHERE tenant_id = $1"))
                .bind(tenant)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&format!("INSERT INTO {name} {source}"))
                .bind(tenant)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO view_refresh_log (tenant_id, mv_name, last_refreshed_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id, mv_name) DO UPDATE SET last_refreshed_at = EXCLUDED.last_refreshed_at",
            )
            .bind(tenant)
            .bind(*name)
            .bind(started)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Every registered tenant, and every tenant a table was written for since the update log
    /// was kept per tenant.
    pub async fn tenants_with_data(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT tenant_id FROM tenant_update_log UNION SELECT tenant_id FROM tenants ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// When a recomputation starting now is stamped: now, or the start of the oldest other
    /// transaction still open, whichever is earlier. A write committed after the recomputation
    /// read the tables belongs to a transaction open then, and its tables' update stamps (its
    /// transaction's `now()`) are at or after this one, so it makes the next one due.
    pub(crate) async fn oldest_open_transaction_start(&self) -> Result<DateTime<Utc>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT least(now(), (SELECT min(xact_start) FROM pg_stat_activity \
                                  WHERE datname = current_database() AND pid <> pg_backend_pid()))",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Refreshes the planner's statistics of the content tables that changed by more than a
    /// tenth since their last analysis (or were never analyzed). A first sync grows them from
    /// empty, and plans made with an empty table's statistics turn per-item updates into
    /// scans; an incremental run changes a few rows of a million, and analyzing the items
    /// table for them took over a second of every run on the large tenant.
    pub async fn analyze_stale_content(&self) -> Result<Vec<String>, StoreError> {
        self.analyze_stale(&CONTENT_TABLES).await
    }

    /// Refreshes the statistics of the content tables that have changed by twice the rows
    /// they held when last analyzed: a first scan grows them a thousandfold in minutes, faster
    /// than autovacuum re-analyzes them (a new item counts twice: inserted, then given its
    /// path). One session analyzes at a time; the others go on with the statistics they have.
    pub async fn analyze_content_if_grown(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        if grown_content_tables(&mut conn).await?.is_empty() {
            return Ok(());
        }
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(ANALYZE_LOCK)
            .fetch_one(&mut *conn)
            .await?;
        if !locked {
            return Ok(());
        }
        // Asked again under the lock: another session may have analyzed in between.
        let analyzed = analyze_grown(&mut conn).await;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(ANALYZE_LOCK)
            .execute(&mut *conn)
            .await?;
        analyzed
    }

    /// Refreshes the statistics of the directory tables and the stored audiences where they
    /// changed by more than a tenth (autovacuum's rule, which the store does not count on: a
    /// server may run without it, and before any statistics the planner takes a table of
    /// thousands of sites for one row and loops over it). Returns the tables analyzed.
    pub async fn analyze_stale_tables(&self) -> Result<Vec<String>, StoreError> {
        self.analyze_stale(&STATISTICS_TABLES).await
    }

    /// Analyzes those of `tables` that changed by more than a tenth (and 50 rows) since their
    /// last analysis, or that hold rows and were never analyzed.
    async fn analyze_stale(&self, tables: &[&str]) -> Result<Vec<String>, StoreError> {
        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT s.relname::text FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
             WHERE s.relid = ANY($1::text[]::regclass[]) \
               AND (s.last_analyze IS NULL AND s.last_autoanalyze IS NULL AND s.n_live_tup > 0 \
                    OR s.n_mod_since_analyze > 0.1 * greatest(c.reltuples, 0) + 50) \
             ORDER BY 1",
        )
        .bind(tables)
        .fetch_all(&self.pool)
        .await?;
        for table in &stale {
            sqlx::query(&format!("ANALYZE {table}"))
                .execute(&self.pool)
                .await?;
        }
        Ok(stale)
    }
}

/// The tables [`Store::analyze_stale_tables`] keeps analyzed.
const STATISTICS_TABLES: [&str; 14] = [
    "msgraph_users",
    "msgraph_groups",
    "msgraph_group_members",
    "msgraph_group_owners",
    "msgraph_sites",
    "msgraph_drives",
    "holder_audiences",
    "person_reach",
    "broad_drive_reach",
    "person_drive_reach",
    "broad_site_reach",
    "policy_violations",
    "mv_group_transitive_users",
    "mv_drive_summary",
];

const CONTENT_TABLES: [&str; 3] = [
    "msgraph_drive_items",
    "msgraph_drive_item_permissions",
    "msgraph_drive_item_permission_grants",
];

/// The content tables changed by more than twice their rows since their last analysis.
async fn grown_content_tables(
    conn: &mut sqlx::PgConnection,
) -> Result<Vec<&'static str>, StoreError> {
    let grown: Vec<String> = sqlx::query_scalar(
        "SELECT s.relname::text FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
         WHERE s.relid = ANY($1::text[]::regclass[]) \
           AND s.n_mod_since_analyze > 2 * greatest(c.reltuples, 0) + 10000",
    )
    .bind(CONTENT_TABLES)
    .fetch_all(&mut *conn)
    .await?;
    Ok(CONTENT_TABLES
        .into_iter()
        .filter(|t| grown.iter().any(|g| g == t))
        .collect())
}

async fn analyze_grown(conn: &mut sqlx::PgConnection) -> Result<(), StoreError> {
    for table in grown_content_tables(conn).await? {
        sqlx::query(&format!("ANALYZE {table}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
