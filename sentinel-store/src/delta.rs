//! Delta state: one link per (resource, partition), saved only with the last page of a
//! complete round (in that page's transaction).

use chrono::{DateTime, Utc};
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

    /// Saves a round's deltaLink on its own, after work that follows the round's last page
    /// (a crash before it restarts the round from the previous link).
    pub async fn save_delta_link(
        &self,
        resource: &str,
        partition: &str,
        link: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        save_link(&mut tx, resource, partition, link).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets the links of `resource` in `partitions` (their next rounds start from scratch).
    pub async fn forget_delta_links(
        &self,
        resource: &str,
        partitions: &[String],
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM msgraph_delta_state WHERE resource_type = $1 AND partition_key = ANY($2)",
        )
        .bind(resource)
        .bind(partitions)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// When a checkpoint (a pass that has no deltaLink, such as a full drive listing) was
    /// last saved for a resource partition.
    pub async fn checkpoint(
        &self,
        resource: &str,
        partition: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT last_synced_at FROM msgraph_delta_state WHERE resource_type = $1 AND partition_key = $2",
        )
        .bind(resource)
        .bind(partition)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Saves a checkpoint taken at `at` (a time from [`Store::now`]).
    pub async fn save_checkpoint(
        &self,
        resource: &str,
        partition: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO msgraph_delta_state (resource_type, partition_key, delta_link, last_synced_at) VALUES ($1, $2, '', $3) \
             ON CONFLICT (resource_type, partition_key) DO UPDATE SET last_synced_at = EXCLUDED.last_synced_at",
        )
        .bind(resource)
        .bind(partition)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
