//! Materialized views: refreshed CONCURRENTLY, and only those whose source tables changed.

use chrono::{DateTime, Utc};

use crate::{Store, StoreError};

/// Lets one session at a time analyze the content tables (beside `MIGRATE_LOCK` in `schema.rs`).
const ANALYZE_LOCK: i64 = 0x5e47_1e10_0000_0002;

/// What one refresh did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MvRefresh {
    /// Views refreshed, by name.
    pub refreshed: Vec<String>,
    /// Views left alone: none of their source tables changed since their last refresh.
    pub skipped: Vec<String>,
}

impl Store {
    /// Refreshes every MV one of whose source tables changed since the MV was last refreshed
    /// (or that was never refreshed), recording when.
    pub async fn refresh_impacted_views(&self) -> Result<MvRefresh, StoreError> {
        // A worker starting up applies the schema in one transaction that holds its locks to
        // the end; a refresh beside it can deadlock with it. Refreshes take the migration lock
        // shared (any number at once), so each waits for the other.
        let mut guard = self.pool.acquire().await?;
        sqlx::query("SELECT pg_advisory_lock_shared($1)")
            .bind(crate::schema::MIGRATE_LOCK)
            .execute(&mut *guard)
            .await?;
        let refreshed = self.refresh_due_views().await;
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

    async fn refresh_due_views(&self) -> Result<MvRefresh, StoreError> {
        let rows: Vec<(String, bool)> = sqlx::query_as(
            "SELECT d.mv_name, bool_or(r.last_refreshed_at IS NULL OR COALESCE(u.last_updated_at >= r.last_refreshed_at, false)) \
             FROM mv_dependencies d \
             LEFT JOIN mv_refresh_log r ON r.mv_name = d.mv_name \
             LEFT JOIN table_update_log u ON u.table_name = d.table_name \
             GROUP BY d.mv_name ORDER BY d.mv_name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = MvRefresh::default();
        for (mv, due) in rows {
            if !due {
                out.skipped.push(mv);
                continue;
            }
            self.refresh_view(&mv).await?;
            out.refreshed.push(mv);
        }
        Ok(out)
    }

    /// Refreshes one registered MV.
    pub async fn refresh_view(&self, mv: &str) -> Result<(), StoreError> {
        let known: Option<String> =
            sqlx::query_scalar("SELECT DISTINCT mv_name FROM mv_dependencies WHERE mv_name = $1")
                .bind(mv)
                .fetch_optional(&self.pool)
                .await?;
        let Some(mv) = known else {
            return Err(StoreError::Invalid(format!(
                "unknown materialized view '{mv}'"
            )));
        };
        let started: DateTime<Utc> = self.now().await?;
        // CONCURRENTLY needs a populated view; the first refresh of a fresh one is plain.
        let populated: bool =
            sqlx::query_scalar("SELECT ispopulated FROM pg_matviews WHERE matviewname = $1")
                .bind(&mv)
                .fetch_one(&self.pool)
                .await?;
        // The name comes from a table: quoted as an identifier, it can only ever name a view.
        let name = quote_ident(&mv);
        let sql = if populated {
            format!("REFRESH MATERIALIZED VIEW CONCURRENTLY {name}")
        } else {
            format!("REFRESH MATERIALIZED VIEW {name}")
        };
        sqlx::raw_sql(&sql).execute(&self.pool).await?;
        // Stamp with the time the refresh started: changes made during it are picked up next time.
        sqlx::query(
            "INSERT INTO mv_refresh_log (mv_name, last_refreshed_at) VALUES ($1, $2) \
             ON CONFLICT (mv_name) DO UPDATE SET last_refreshed_at = EXCLUDED.last_refreshed_at",
        )
        .bind(&mv)
        .bind(started)
        .execute(&self.pool)
        .await?;
        Ok(())
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

    /// When each MV was last refreshed.
    pub async fn view_refresh_times(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        Ok(
            sqlx::query_as(
                "SELECT mv_name, last_refreshed_at FROM mv_refresh_log ORDER BY mv_name",
            )
            .fetch_all(&self.pool)
            .await?,
        )
    }
}

/// The tables [`Store::analyze_stale_tables`] keeps analyzed.
const STATISTICS_TABLES: [&str; 12] = [
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

/// `name` as a quoted SQL identifier (`"` doubled inside).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
