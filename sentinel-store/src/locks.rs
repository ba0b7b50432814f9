//! Locks that hold across processes (any number of workers and `sync`s on one database):
//! session-level advisory locks, each on a connection of its own, released when the guard is
//! dropped (its connection closes with it, also when the process dies).

use sqlx::Connection;

use crate::{Store, StoreError};

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct SessionLock {
    _conn: sqlx::PgConnection,
}

/// The advisory-lock namespace of tenant scans (the scheduler's job locks use another).
const SCAN_LOCK_NAMESPACE: i32 = 0x5e47_0017;
/// The namespace of one tenant's refresh of its summaries, audiences and violations.
const REFRESH_LOCK_NAMESPACE: i32 = 0x5e47_0018;

impl Store {
    async fn lock_connection(&self) -> Result<sqlx::PgConnection, StoreError> {
        Ok(sqlx::PgConnection::connect_with(&self.pool.connect_options()).await?)
    }

    /// The tenant's scan lock, or `None` while another process holds it. Scans of one tenant
    /// run one at a time, so together they never pace above the tenant's budget (each scan
    /// paces itself at the budget); scans of different tenants do not wait for each other.
    pub async fn try_lock_tenant_scans(
        &self,
        tenant_id: &str,
    ) -> Result<Option<SessionLock>, StoreError> {
        let mut conn = self.lock_connection().await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(SCAN_LOCK_NAMESPACE)
            .bind(tenant_id)
            .fetch_one(&mut conn)
            .await?;
        Ok(got.then_some(SessionLock { _conn: conn }))
    }

    /// Waits for, then holds, the tenant's refresh lock: one refresh of a tenant's summaries,
    /// audiences and violations at a time across processes. Two at once (two scans of the
    /// tenant ending together) would write the same rows; the second, run after the first,
    /// finds only what changed since. Refreshes of different tenants write different rows
    /// and do not wait for each other.
    pub async fn lock_refreshes(&self, tenant_id: &str) -> Result<SessionLock, StoreError> {
        let mut conn = self.lock_connection().await?;
        sqlx::query("SELECT pg_advisory_lock($1, hashtext($2))")
            .bind(REFRESH_LOCK_NAMESPACE)
            .bind(tenant_id)
            .execute(&mut conn)
            .await?;
        Ok(SessionLock { _conn: conn })
    }
}
