#![warn(missing_docs)]
//! Postgres store for Princeton Sentinel.
//!
//! Typed tables for Microsoft Graph objects (each row keeps its latest `raw_json`), upserts by
//! Graph id in bulk (`UNNEST` arrays, never row by row), soft deletes, delta state saved only
//! with the last page of a complete round, full-round reconciliation, a per-table update log
//! written in the same transaction as each change, impacted-only materialized view refresh,
//! and audit events.
//!
//! This crate knows nothing of HTTP or of Graph's wire format: callers hand it rows.

mod alerts;
mod audit;
mod content;
mod delta;
mod directory;
mod error;
mod live_spend;
mod locks;
mod permissions;
mod policies;
mod reports;
mod retry;
mod rows;
mod schema;
mod sites;
mod tenants;
mod unnest;
mod views;

pub use alerts::{AlertBatch, AlertViolation, Webhook, WebhookFormat};
pub use audit::{AuditEvent, AuditRecord};
pub use delta::drive_partition;
pub use directory::TenantTable;
pub use error::StoreError;
pub use live_spend::{LiveShare, LiveSpend};
pub use locks::SessionLock;
pub use policies::*;
pub use reports::*;
pub use retry::{TRANSIENT_RETRIES, retry_transient};
pub use rows::*;
pub use tenants::{BadTenantId, TenantRecord, Viewer, band_budget, checked_tenant_id};
pub use views::MvRefresh;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};

/// Handle to the database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects to `database_url` (`postgres://user@host:port/db`).
    pub async fn connect(database_url: &str, max_connections: u32) -> Result<Store, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(30))
            .connect(database_url)
            .await?;
        Ok(Store { pool })
    }

    /// [`Store::connect`] with a limit on every statement: one that runs longer is cancelled
    /// and fails with an error for which [`StoreError::is_timeout`] holds. For readers (the
    /// web), so that a few slow pages cannot hold every connection.
    pub async fn connect_with_timeout(
        database_url: &str,
        max_connections: u32,
        statement_timeout: std::time::Duration,
    ) -> Result<Store, StoreError> {
        let options: sqlx::postgres::PgConnectOptions = database_url.parse()?;
        let options = options.options([(
            "statement_timeout",
            format!("{}ms", statement_timeout.as_millis().max(1)),
        )]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(Store { pool })
    }

    /// A store over an existing pool (tests, and callers that manage their own).
    pub fn from_pool(pool: PgPool) -> Store {
        Store { pool }
    }

    /// The pool, for crates that own tables of their own (`sentinel-sched`) and for tests.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The database's clock: rounds are timed with it so reconciliation never depends on
    /// the worker's clock.
    pub async fn now(&self) -> Result<DateTime<Utc>, StoreError> {
        Ok(sqlx::query_scalar("SELECT now()")
            .fetch_one(&self.pool)
            .await?)
    }
}

/// Checks a `DATABASE_URL` value; the error says what to fix (and never echoes a password).
pub fn check_database_url(value: Option<&str>) -> Result<String, String> {
    match value.map(str::trim) {
        Some(v) if v.starts_with("postgres://") || v.starts_with("postgresql://") => {
            Ok(v.to_string())
        }
        Some(v) if !v.is_empty() => Err(format!(
            "DATABASE_URL must be a postgres:// URL, got '{}'",
            redact_url(v)
        )),
        _ => {
            Err("DATABASE_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/sentinel)".into())
        }
    }
}

/// A URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}
