//! The schema: `db/init/*.sql` is the one source of truth. Postgres' initdb applies it in the
//! compose stack; the worker applies the same files at start-up. Every statement is idempotent.
//! A summary table whose definition changes carries a comment naming its version:
//! `CREATE ... IF NOT EXISTS` would keep an earlier version's, so the file drops one whose
//! comment differs (an earlier version's materialized view included) before making it.
//!
//! Idempotent is not free: `ALTER TABLE` and `CREATE INDEX IF NOT EXISTS` lock their table even
//! when there is nothing to do, and a second process starting beside a scan deadlocked with the
//! scan's writes. So the files' fingerprint is recorded, and a start-up that finds its own
//! fingerprint applies nothing and takes no table lock.

use crate::{Store, StoreError};

/// The schema files, in the order they apply.
pub const SCHEMA_FILES: [(&str, &str); 9] = [
    ("001_schema.sql", include_str!("../schema/001_schema.sql")),
    ("002_jobs.sql", include_str!("../schema/002_jobs.sql")),
    (
        "003_materialized_views.sql",
        include_str!("../schema/003_materialized_views.sql"),
    ),
    ("004_audit.sql", include_str!("../schema/004_audit.sql")),
    (
        "005_policies.sql",
        include_str!("../schema/005_policies.sql"),
    ),
    ("006_reach.sql", include_str!("../schema/006_reach.sql")),
    ("007_tenants.sql", include_str!("../schema/007_tenants.sql")),
    (
        "008_drive_checks.sql",
        include_str!("../schema/008_drive_checks.sql"),
    ),
    (
        "009_live_spend.sql",
        include_str!("../schema/009_live_spend.sql"),
    ),
];

/// Serialises concurrent start-ups of several workers.
pub(crate) const MIGRATE_LOCK: i64 = 0x5e47_1e10_0000_0001;

impl Store {
    /// Makes the database ready; applying it again is a no-op. An upgrade's DDL that deadlocks
    /// with a writer (Postgres fails one side) runs again.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        crate::retry_transient(|| self.migrate_once()).await
    }

    async fn migrate_once(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATE_LOCK)
            .execute(&mut *tx)
            .await?;
        // Quiet the "already exists, skipping" notices of a re-run.
        sqlx::query("SET LOCAL client_min_messages = warning")
            .execute(&mut *tx)
            .await?;
        let files: String = SCHEMA_FILES.iter().map(|(_, sql)| *sql).collect();
        let fingerprint: String = sqlx::query_scalar("SELECT md5($1)")
            .bind(&files)
            .fetch_one(&mut *tx)
            .await?;
        // A fresh database has no `schema_applied` yet: ask before reading it.
        let table: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('schema_applied')::text")
                .fetch_one(&mut *tx)
                .await?;
        let current = match table {
            None => false,
            Some(_) => {
                sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM schema_applied WHERE fingerprint = $1)",
                )
                .bind(&fingerprint)
                .fetch_one(&mut *tx)
                .await?
            }
        };
        if current {
            tx.commit().await?;
            return Ok(());
        }
        for (file, sql) in SCHEMA_FILES {
            sqlx::raw_sql(sql)
                .execute(&mut *tx)
                .await
                .map_err(|source| StoreError::Schema { file, source })?;
        }
        sqlx::query("DELETE FROM schema_applied")
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO schema_applied (fingerprint) VALUES ($1)")
            .bind(&fingerprint)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
