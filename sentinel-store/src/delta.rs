//! Delta state: one link per (resource, partition), saved only with the last page of a
//! complete round (in that page's transaction).

use sqlx::{Postgres, Transaction};

use crate::{Store, StoreError};

/// Partition key of a drive's item delta.
pub fn drive_partition(tenant: &str, drive_id: &str) -> String {
    format!("{tenant}:{drive_id}")
}

pub(crate) async fn save_link(
    tx: &mut Transaction<'_, Postgres>,
    resource: &str,
    partition: &str,
    link: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO msgraph_delta_state (resource_type, partition_key, delta_link, last_synced_at) VALUES ($1, $2, $3, now()) \
         ON CONFLICT (resource_type, partition_key) DO UPDATE SET delta_link = EXCLUDED.delta_link, last_synced_at = now()",
    )
    .bind(resource)
    .bind(partition)
    .bind(link)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// The stored deltaLink of a resource partition, if a round ever completed.
    pub async fn delta_link(
        &self,
        resource: &str,
        partition: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT delta_link FROM msgraph_delta_state WHERE resource_type = $1 AND partition_key = $2")
            .bind(resource)
            .bind(partition)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Forgets a stored link (the next round starts from scratch).
    pub async fn forget_delta_link(
        &self,
        resource: &str,
        partition: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM msgraph_delta_state WHERE resource_type = $1 AND partition_key = $2",
        )
        .bind(resource)
        .bind(partition)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
