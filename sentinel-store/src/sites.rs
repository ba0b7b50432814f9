//! Sites: site collections (from sites delta rounds) and their subsites (from listings under
//! each parent), and the sites Graph refused to read.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use crate::directory::{soft_delete_ids, touch};
use crate::rows::{SiteRow, last_wins};
use crate::unnest::Unnest;
use crate::{Store, StoreError};

/// Soft-deletes every live subsite whose parent is deleted, down the tree: a subsite cannot
/// outlive its site collection.
const DELETE_ORPHANED_SUBSITES: &str = "\
    WITH RECURSIVE orphan(id) AS ( \
        SELECT s.id FROM msgraph_sites s JOIN msgraph_sites p \
            ON p.tenant_id = s.tenant_id AND p.id = s.parent_site_id \
        WHERE s.tenant_id = $1 AND s.deleted_at IS NULL AND p.deleted_at IS NOT NULL \
      UNION \
        SELECT c.id FROM msgraph_sites c JOIN orphan o ON c.parent_site_id = o.id \
        WHERE c.tenant_id = $1 \
    ) \
    UPDATE msgraph_sites SET deleted_at = now(), synced_at = now() \
    WHERE tenant_id = $1 AND deleted_at IS NULL AND id IN (SELECT id FROM orphan)";

pub(crate) async fn delete_orphaned_subsites(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &str,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(DELETE_ORPHANED_SUBSITES)
        .bind(tenant)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

/// Inserts or updates sites; `parent` is set for subsites (a site collection's stays NULL).
async fn upsert_sites(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &str,
    rows: &[SiteRow],
    parent: Option<&str>,
) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let rows = last_wins(rows, |r| r.id.clone());
    let mut u = Unnest::new("msgraph_sites", tenant, rows.len());
    u.column("id", rows.iter().map(|r| r.id.clone()))
        .column("name", rows.iter().map(|r| r.name.clone()))
        .column("display_name", rows.iter().map(|r| r.display_name.clone()))
        .column("web_url", rows.iter().map(|r| r.web_url.clone()))
        .column("created_at", rows.iter().map(|r| r.created_at))
        .json("raw_json", rows.iter().map(|r| r.raw_json.to_string()))
        .column(
            "parent_site_id",
            rows.iter().map(|_| parent.map(String::from)),
        )
        .computed("synced_at", "now()")
        .computed("deleted_at", "NULL::timestamptz");
    let set = u.excluded_except(&["id"]);
    u.upsert(tx, &["id"], &set).await
}

/// A site and every site under it, for statements that act on a whole tree.
const SITE_TREE: &str = "\
    WITH RECURSIVE tree(id) AS ( \
        SELECT unnest($2::text[]) \
      UNION \
        SELECT s.id FROM msgraph_sites s JOIN tree ON s.parent_site_id = tree.id WHERE s.tenant_id = $1 \
    )";

impl Store {
    /// Applies one page of a sites delta round (deleted sites carry `deleted`; their subsites
    /// go with them).
    ///
    /// One transaction, run again if Postgres fails it to break a deadlock.
    pub async fn apply_sites_page(
        &self,
        tenant: &str,
        rows: &[SiteRow],
        deleted: &[String],
        delta_link: Option<&str>,
    ) -> Result<u64, StoreError> {
        crate::retry_transient(|| async move {
            let mut tx = self.pool.begin().await?;
            let mut n = soft_delete_ids(&mut tx, "msgraph_sites", tenant, deleted).await?;
            if n > 0 {
                n += delete_orphaned_subsites(&mut tx, tenant).await?;
            }
            n += upsert_sites(&mut tx, tenant, rows, None).await?;
            if let Some(link) = delta_link {
                let partition = crate::directory::tenant_partition(tenant);
                crate::delta::save_link(&mut tx, "sites", &partition, link).await?;
            }
            touch(&mut tx, tenant, &["msgraph_sites"]).await?;
            tx.commit().await?;
            Ok(n)
        })
        .await
    }

    /// Stores the complete list of a site's direct subsites: those listed are written (with
    /// `parent` as their parent), those no longer listed are soft-deleted with everything
    /// under them.
    pub async fn apply_subsites(
        &self,
        tenant: &str,
        parent: &str,
        rows: &[SiteRow],
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let listed: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut n = sqlx::query(
            "UPDATE msgraph_sites SET deleted_at = now(), synced_at = now() \
             WHERE tenant_id = $1 AND parent_site_id = $2 AND NOT (id = ANY($3)) AND deleted_at IS NULL",
        )
        .bind(tenant)
        .bind(parent)
        .bind(&listed)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n > 0 {
            n += delete_orphaned_subsites(&mut tx, tenant).await?;
        }
        n += upsert_sites(&mut tx, tenant, rows, Some(parent)).await?;
        touch(&mut tx, tenant, &["msgraph_sites"]).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Live site collections (subsites are reached through them); with `since`, only those a
    /// sites round wrote since then (new or changed).
    pub async fn live_site_ids(
        &self,
        tenant: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM msgraph_sites WHERE tenant_id = $1 AND deleted_at IS NULL \
             AND parent_site_id IS NULL AND ($2::timestamptz IS NULL OR synced_at >= $2) ORDER BY id",
        )
        .bind(tenant)
        .bind(since)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records that Graph refused to read a site (`reason`: status and code); the first time
    /// is kept. The site's subsites are skipped with it (a lock holds for the whole site
    /// collection). Scans skip their libraries and keep them as last read.
    pub async fn skip_site(
        &self,
        tenant: &str,
        site_id: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "{SITE_TREE} UPDATE msgraph_sites SET skipped_reason = $3, \
               skipped_since = COALESCE(skipped_since, now()) \
             WHERE tenant_id = $1 AND deleted_at IS NULL AND id IN (SELECT id FROM tree)"
        );
        sqlx::query(&sql)
            .bind(tenant)
            .bind([site_id])
            .bind(reason)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Live sites that scans skip (tried again on every run: a lock is lifted any time).
    pub async fn skipped_site_ids(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM msgraph_sites WHERE tenant_id = $1 AND deleted_at IS NULL \
             AND skipped_reason IS NOT NULL ORDER BY id",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Sites read again after being skipped: scanned as any other from now on.
    pub async fn clear_site_skips(
        &self,
        tenant: &str,
        site_ids: &[String],
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE msgraph_sites SET skipped_reason = NULL, skipped_since = NULL \
             WHERE tenant_id = $1 AND id = ANY($2) AND skipped_reason IS NOT NULL",
        )
        .bind(tenant)
        .bind(site_ids)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Live Microsoft 365 groups whose team site to look up: never looked up, or found without
    /// one more than a day ago (a group's site is made when first visited, and never changes).
    pub async fn groups_to_link_to_sites(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT g.id FROM msgraph_groups g WHERE g.tenant_id = $1 AND g.deleted_at IS NULL \
             AND g.is_unified AND (g.site_checked_at IS NULL OR (g.site_checked_at < now() - interval '1 day' \
             AND NOT EXISTS (SELECT 1 FROM msgraph_sites s WHERE s.tenant_id = g.tenant_id AND s.group_id = g.id))) \
             ORDER BY g.id",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records each group's team site (`None`: it has none). A group whose site is not stored
    /// (yet) stays to be looked up again; returns the sites linked.
    pub async fn link_group_sites(
        &self,
        tenant: &str,
        links: &[(String, Option<String>)],
    ) -> Result<u64, StoreError> {
        let groups: Vec<&str> = links.iter().map(|(g, _)| g.as_str()).collect();
        let sites: Vec<Option<&str>> = links.iter().map(|(_, s)| s.as_deref()).collect();
        let linked: Vec<String> = sqlx::query_scalar(
            "WITH l AS (SELECT * FROM UNNEST($2::text[], $3::text[]) AS l(group_id, site_id)), \
             linked AS (UPDATE msgraph_sites s SET group_id = l.group_id FROM l \
                        WHERE s.tenant_id = $1 AND s.id = l.site_id RETURNING s.group_id), \
             checked AS (UPDATE msgraph_groups g SET site_checked_at = now() FROM l \
                         WHERE g.tenant_id = $1 AND g.id = l.group_id \
                         AND (l.site_id IS NULL OR l.group_id IN (SELECT group_id FROM linked))) \
             SELECT group_id FROM linked",
        )
        .bind(tenant)
        .bind(groups)
        .bind(sites)
        .fetch_all(&self.pool)
        .await?;
        Ok(linked.len() as u64)
    }
}
