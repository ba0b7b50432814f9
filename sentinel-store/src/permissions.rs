//! Item permissions and their grantees.

use chrono::{DateTime, Utc};

use crate::directory::touch;
use crate::rows::{DueItem, ItemPermissions, SweptItem};
use crate::unnest::Unnest;
use crate::{Store, StoreError};

/// Leaves out items of drives Graph refused to read, or whose site it refused (locked): their
/// reads would only fail, and the drives are kept as last read until readable again.
macro_rules! not_in_skipped_drive {
    () => {
        " AND drive_id NOT IN (SELECT d.id FROM msgraph_drives d LEFT JOIN msgraph_sites s \
           ON s.tenant_id = d.tenant_id AND s.id = d.site_id \
           WHERE d.tenant_id = $1 AND (s.skipped_reason IS NOT NULL OR d.skipped_reason IS NOT NULL))"
    };
}

/// The items due a permission read: live, never read or changed since the last read (a
/// root's recheck put off to a later time is due from then), in a drive that is read; `$1` is
/// the tenant. Hierarchical mode passes its roots-only condition in the text rather than as a
/// parameter, so the planner can use the index of due roots: the items below a root are never
/// read, and the index of all due items holds every one of them.
macro_rules! due_for_permissions {
    ($roots:literal) => {
        concat!(
            " FROM msgraph_drive_items \
             WHERE tenant_id = $1 AND deleted_at IS NULL \
               AND (permissions_last_synced_at IS NULL OR permissions_last_synced_at < sharing_changed_at) \
               AND sharing_changed_at <= now()",
            $roots,
            not_in_skipped_drive!()
        )
    };
    (roots) => {
        due_for_permissions!(" AND COALESCE(permission_root_id, id) = id")
    };
    (all) => {
        due_for_permissions!("")
    };
}

/// The items of the permission sweep: live, read before `$3`, roots only when `$2`, in a drive
/// that is read ([`Store::items_due_for_sweep`] and its count share it).
macro_rules! due_for_sweep {
    () => {
        concat!(
            "FROM msgraph_drive_items \
             WHERE tenant_id = $1 AND deleted_at IS NULL AND permissions_last_synced_at < $3 \
               AND (NOT $2 OR COALESCE(permission_root_id, id) = id)",
            not_in_skipped_drive!()
        )
    };
}

/// Exposure age: a permission or grant still there keeps the time a scan first saw it; one that
/// had gone (`deleted_at`) and is back is a new exposure, first seen now.
const KEEP_FIRST_SEEN: (&str, &str) = (
    "first_seen_at",
    "CASE WHEN t.deleted_at IS NULL THEN t.first_seen_at ELSE EXCLUDED.first_seen_at END",
);

impl Store {
    /// Replaces the permissions of each item with what was just read: upserts the permissions
    /// and grantees given, soft-deletes the ones no longer there, and stamps the items'
    /// `permissions_last_synced_at`, all in one transaction.
    ///
    /// One transaction, run again if Postgres fails it to break a deadlock.
    pub async fn replace_item_permissions(
        &self,
        tenant: &str,
        items: &[ItemPermissions],
    ) -> Result<u64, StoreError> {
        if items.is_empty() {
            return Ok(0);
        }
        // One row per (item, permission) and per (item, permission, grantee): Graph may repeat.
        let mut seen = std::collections::HashSet::new();
        let mut perms = Vec::new();
        let mut grants = Vec::new();
        for it in items {
            for p in &it.permissions {
                if !seen.insert((&it.drive_id, &it.item_id, &p.permission_id)) {
                    continue;
                }
                perms.push((it, p));
                let mut keys = std::collections::HashSet::new();
                for g in p.grants.iter().filter(|g| keys.insert(&g.grantee_key)) {
                    grants.push((it, p, g));
                }
            }
        }
        let (perms, grants) = (&perms, &grants);
        crate::retry_transient(|| async move {
            let ps = || perms.iter().map(|(it, p)| (*it, *p));
            let mut u = Unnest::new("msgraph_drive_item_permissions", tenant, perms.len());
            u.column("drive_id", ps().map(|(it, _)| it.drive_id.clone()))
                .column("item_id", ps().map(|(it, _)| it.item_id.clone()))
                .column("permission_id", ps().map(|(_, p)| p.permission_id.clone()))
                // Postgres arrays of arrays must be rectangular: roles travel as a joined string.
                .input("roles_joined", ps().map(|(_, p)| p.roles.join(",")))
                .computed("roles", "string_to_array(NULLIF(u.roles_joined, ''), ',')")
                .column("link_type", ps().map(|(_, p)| p.link_type.clone()))
                .column("link_scope", ps().map(|(_, p)| p.link_scope.clone()))
                .column(
                    "link_url_sha256",
                    ps().map(|(_, p)| p.link_url_sha256.clone()),
                )
                .column(
                    "link_prevents_download",
                    ps().map(|(_, p)| p.link_prevents_download),
                )
                .column("has_password", ps().map(|(_, p)| p.has_password))
                .column("expires_at", ps().map(|(_, p)| p.expires_at))
                .column(
                    "invitation_email",
                    ps().map(|(_, p)| p.invitation_email.clone()),
                )
                .column(
                    "inherited_from_id",
                    ps().map(|(_, p)| p.inherited_from_id.clone()),
                )
                .json("raw_json", ps().map(|(_, p)| p.raw_json.to_string()))
                .computed("synced_at", "now()")
                .computed("first_seen_at", "now()")
                .computed("deleted_at", "NULL::timestamptz");
            let gs = || {
                grants
                    .iter()
                    .map(|(it, p, g)| (&it.drive_id, &it.item_id, &p.permission_id, *g))
            };
            let mut g = Unnest::new("msgraph_drive_item_permission_grants", tenant, grants.len());
            g.column("drive_id", gs().map(|(d, _, _, _)| d.clone()))
                .column("item_id", gs().map(|(_, i, _, _)| i.clone()))
                .column("permission_id", gs().map(|(_, _, p, _)| p.clone()))
                .column("grantee_key", gs().map(|(.., g)| g.grantee_key.clone()))
                .column("grantee_type", gs().map(|(.., g)| g.grantee_type.clone()))
                .column("grantee_id", gs().map(|(.., g)| g.grantee_id.clone()))
                .column("display_name", gs().map(|(.., g)| g.display_name.clone()))
                .column("email", gs().map(|(.., g)| g.email.clone()))
                .column("login_name", gs().map(|(.., g)| g.login_name.clone()))
                .column("is_external", gs().map(|(.., g)| g.is_external))
                .column("is_everyone", gs().map(|(.., g)| g.is_everyone))
                .column(
                    "is_everyone_except_external",
                    gs().map(|(.., g)| g.is_everyone_except_external),
                )
                .computed("synced_at", "now()")
                .computed("first_seen_at", "now()")
                .computed("deleted_at", "NULL::timestamptz");
            let drives: Vec<String> = items.iter().map(|i| i.drive_id.clone()).collect();
            let item_ids: Vec<String> = items.iter().map(|i| i.item_id.clone()).collect();
            let mut tx = self.pool.begin().await?;
            let perm_key = ["drive_id", "item_id", "permission_id"];
            let set = u.update_set(&perm_key, &[KEEP_FIRST_SEEN]);
            let n = u.upsert(&mut tx, &perm_key, &set).await?;
            let grant_key = ["drive_id", "item_id", "permission_id", "grantee_key"];
            let set = g.update_set(&grant_key, &[KEEP_FIRST_SEEN]);
            g.upsert(&mut tx, &grant_key, &set).await?;
            // Whatever these items had before and no longer have is gone (now() is this transaction's time).
            // `= ANY` on the key columns keeps these on the primary-key index even with the stale
            // statistics of a table that was empty when the run started.
            for table in [
                "msgraph_drive_item_permissions",
                "msgraph_drive_item_permission_grants",
            ] {
                let sql = format!(
                    "UPDATE {table} t SET deleted_at = now() \
                 WHERE t.tenant_id = $1 AND t.drive_id = ANY($2) AND t.item_id = ANY($3) \
                   AND (t.drive_id, t.item_id) IN (SELECT * FROM UNNEST($2::text[], $3::text[])) \
                   AND t.synced_at < now() AND t.deleted_at IS NULL"
                );
                sqlx::query(&sql)
                    .bind(tenant)
                    .bind(&drives)
                    .bind(&item_ids)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "UPDATE msgraph_drive_items t SET permissions_last_synced_at = now(), \
               sharing_changed_at = LEAST(t.sharing_changed_at, now()) \
             WHERE t.tenant_id = $1 AND t.drive_id = ANY($2) AND t.id = ANY($3) \
               AND (t.drive_id, t.id) IN (SELECT * FROM UNNEST($2::text[], $3::text[]))",
            )
            .bind(tenant)
            .bind(&drives)
            .bind(&item_ids)
            .execute(&mut *tx)
            .await?;
            touch(
                &mut tx,
                tenant,
                &[
                    "msgraph_drive_item_permissions",
                    "msgraph_drive_item_permission_grants",
                    "msgraph_drive_items",
                ],
            )
            .await?;
            tx.commit().await?;
            Ok(n)
        })
        .await
    }

    /// Items whose permissions are due a read: never read, or changed since the last read (a
    /// root's recheck put off to a later time is due from then).
    /// `roots_only` (hierarchical mode): only the roots of permission hierarchies.
    /// Pages by key: pass the last item of the previous page as `after`.
    pub async fn items_due_for_permissions(
        &self,
        tenant: &str,
        roots_only: bool,
        after: Option<&DueItem>,
        limit: i64,
    ) -> Result<Vec<DueItem>, StoreError> {
        let (after_drive, after_item) = after
            .map(|a| (a.drive_id.as_str(), a.item_id.as_str()))
            .unwrap_or(("", ""));
        let sql = if roots_only {
            concat!(
                "SELECT drive_id, id",
                due_for_permissions!(roots),
                " AND (drive_id, id) > ($2, $3) ORDER BY drive_id, id LIMIT $4"
            )
        } else {
            concat!(
                "SELECT drive_id, id",
                due_for_permissions!(all),
                " AND (drive_id, id) > ($2, $3) ORDER BY drive_id, id LIMIT $4"
            )
        };
        let rows: Vec<(String, String)> = sqlx::query_as(sql)
            .bind(tenant)
            .bind(after_drive)
            .bind(after_item)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(drive_id, item_id)| DueItem { drive_id, item_id })
            .collect())
    }

    /// How many items are due a permission read (for progress and ETA).
    pub async fn count_items_due_for_permissions(
        &self,
        tenant: &str,
        roots_only: bool,
    ) -> Result<i64, StoreError> {
        let sql = if roots_only {
            concat!("SELECT count(*)", due_for_permissions!(roots))
        } else {
            concat!("SELECT count(*)", due_for_permissions!(all))
        };
        Ok(sqlx::query_scalar(sql)
            .bind(tenant)
            .fetch_one(&self.pool)
            .await?)
    }

    /// The permission sweep: live items whose permissions were last read before `read_before`,
    /// the longest ago first. Delta says nothing of a sharing-only change without
    /// `Prefer: deltashowsharingchanges` (which needs Sites.FullControl.All): re-reading by age
    /// is then the only way to see it. Pages by key: pass the last item of the previous page
    /// with the time its permissions were read as `after`. Items read meanwhile leave the sweep.
    pub async fn items_due_for_sweep(
        &self,
        tenant: &str,
        roots_only: bool,
        read_before: DateTime<Utc>,
        after: Option<&SweptItem>,
        limit: i64,
    ) -> Result<Vec<SweptItem>, StoreError> {
        let (after_read, after_drive, after_item) = after
            .map(|a| {
                (
                    Some(a.read_at),
                    a.item.drive_id.as_str(),
                    a.item.item_id.as_str(),
                )
            })
            .unwrap_or((None, "", ""));
        let rows: Vec<(DateTime<Utc>, String, String)> = sqlx::query_as(
            concat!(
                "SELECT permissions_last_synced_at, drive_id, id ",
                due_for_sweep!(),
                " AND ($4::timestamptz IS NULL OR (permissions_last_synced_at, drive_id, id) > ($4, $5, $6)) \
                 ORDER BY permissions_last_synced_at, drive_id, id LIMIT $7"
            ),
        )
        .bind(tenant)
        .bind(roots_only)
        .bind(read_before)
        .bind(after_read)
        .bind(after_drive)
        .bind(after_item)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(read_at, drive_id, item_id)| SweptItem {
                read_at,
                item: DueItem { drive_id, item_id },
            })
            .collect())
    }

    /// How many items the sweep would read (see [`Store::items_due_for_sweep`]).
    pub async fn count_items_due_for_sweep(
        &self,
        tenant: &str,
        roots_only: bool,
        read_before: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar(concat!("SELECT count(*) ", due_for_sweep!()))
                .bind(tenant)
                .bind(roots_only)
                .bind(read_before)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Soft-deletes items found gone while reading their permissions (404).
    pub async fn delete_items(
        &self,
        tenant: &str,
        drive_id: &str,
        ids: &[String],
    ) -> Result<u64, StoreError> {
        self.apply_drive_items(tenant, drive_id, &[], ids, None)
            .await
    }
}
