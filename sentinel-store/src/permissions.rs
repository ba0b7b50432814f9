//! Item permissions and their grantees.

use chrono::{DateTime, Utc};

use crate::directory::touch;
use crate::rows::{DueItem, ItemPermissions, SweptItem};
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

impl Store {
    /// Replaces the permissions of each item with what was just read: upserts the permissions
    /// and grantees given, soft-deletes the ones no longer there, and stamps the items'
    /// `permissions_last_synced_at`, all in one transaction.
    pub async fn replace_item_permissions(
        &self,
        tenant: &str,
        items: &[ItemPermissions],
    ) -> Result<u64, StoreError> {
        if items.is_empty() {
            return Ok(0);
        }
        let mut p_drive = Vec::new();
        let mut p_item = Vec::new();
        let mut p_id = Vec::new();
        let mut p_roles = Vec::new();
        let mut p_ltype = Vec::new();
        let mut p_lscope = Vec::new();
        let mut p_lhash = Vec::new();
        let mut p_lpd = Vec::new();
        let mut p_pw = Vec::new();
        let mut p_exp: Vec<Option<DateTime<Utc>>> = Vec::new();
        let mut p_inv = Vec::new();
        let mut p_inh = Vec::new();
        let mut p_raw = Vec::new();
        let (mut g_drive, mut g_item, mut g_perm, mut g_key, mut g_type) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut g_id, mut g_name, mut g_email, mut g_login) = (vec![], vec![], vec![], vec![]);
        let (mut g_ext, mut g_every, mut g_eeeu) = (vec![], vec![], vec![]);
        let mut seen = std::collections::HashSet::new();
        for it in items {
            for p in &it.permissions {
                if !seen.insert((
                    it.drive_id.clone(),
                    it.item_id.clone(),
                    p.permission_id.clone(),
                )) {
                    continue;
                }
                p_drive.push(it.drive_id.clone());
                p_item.push(it.item_id.clone());
                p_id.push(p.permission_id.clone());
                // Postgres arrays of arrays must be rectangular: roles travel as a joined string.
                p_roles.push(p.roles.join(","));
                p_ltype.push(p.link_type.clone());
                p_lscope.push(p.link_scope.clone());
                p_lhash.push(p.link_url_sha256.clone());
                p_lpd.push(p.link_prevents_download);
                p_pw.push(p.has_password);
                p_exp.push(p.expires_at);
                p_inv.push(p.invitation_email.clone());
                p_inh.push(p.inherited_from_id.clone());
                p_raw.push(p.raw_json.to_string());
                let mut keys = std::collections::HashSet::new();
                for g in p
                    .grants
                    .iter()
                    .filter(|g| keys.insert(g.grantee_key.clone()))
                {
                    g_drive.push(it.drive_id.clone());
                    g_item.push(it.item_id.clone());
                    g_perm.push(p.permission_id.clone());
                    g_key.push(g.grantee_key.clone());
                    g_type.push(g.grantee_type.clone());
                    g_id.push(g.grantee_id.clone());
                    g_name.push(g.display_name.clone());
                    g_email.push(g.email.clone());
                    g_login.push(g.login_name.clone());
                    g_ext.push(g.is_external);
                    g_every.push(g.is_everyone);
                    g_eeeu.push(g.is_everyone_except_external);
                }
            }
        }
        let drives: Vec<String> = items.iter().map(|i| i.drive_id.clone()).collect();
        let item_ids: Vec<String> = items.iter().map(|i| i.item_id.clone()).collect();
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "INSERT INTO msgraph_drive_item_permissions (tenant_id, drive_id, item_id, permission_id, roles, link_type, \
               link_scope, link_url_sha256, link_prevents_download, has_password, expires_at, invitation_email, \
               inherited_from_id, raw_json, synced_at, deleted_at) \
             SELECT $1, p.d, p.i, p.id, string_to_array(NULLIF(p.roles, ''), ','), p.lt, p.ls, p.lh, p.lpd, p.pw, p.exp, \
               p.inv, p.inh, p.raw::jsonb, now(), NULL \
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bool[], \
                         $10::bool[], $11::timestamptz[], $12::text[], $13::text[], $14::text[]) \
                  AS p(d, i, id, roles, lt, ls, lh, lpd, pw, exp, inv, inh, raw) \
             ON CONFLICT (tenant_id, drive_id, item_id, permission_id) DO UPDATE SET roles = EXCLUDED.roles, \
               link_type = EXCLUDED.link_type, link_scope = EXCLUDED.link_scope, link_url_sha256 = EXCLUDED.link_url_sha256, \
               link_prevents_download = EXCLUDED.link_prevents_download, has_password = EXCLUDED.has_password, \
               expires_at = EXCLUDED.expires_at, invitation_email = EXCLUDED.invitation_email, \
               inherited_from_id = EXCLUDED.inherited_from_id, raw_json = EXCLUDED.raw_json, synced_at = now(), deleted_at = NULL",
        )
        .bind(tenant)
        .bind(p_drive)
        .bind(p_item)
        .bind(p_id)
        .bind(p_roles)
        .bind(p_ltype)
        .bind(p_lscope)
        .bind(p_lhash)
        .bind(p_lpd)
        .bind(p_pw)
        .bind(p_exp)
        .bind(p_inv)
        .bind(p_inh)
        .bind(p_raw)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "INSERT INTO msgraph_drive_item_permission_grants (tenant_id, drive_id, item_id, permission_id, grantee_key, \
               grantee_type, grantee_id, display_name, email, login_name, is_external, is_everyone, \
               is_everyone_except_external, synced_at, deleted_at) \
             SELECT $1, g.d, g.i, g.p, g.k, g.t, g.id, g.dn, g.em, g.ln, g.ext, g.ev, g.eeeu, now(), NULL \
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], \
                         $10::text[], $11::bool[], $12::bool[], $13::bool[]) \
                  AS g(d, i, p, k, t, id, dn, em, ln, ext, ev, eeeu) \
             ON CONFLICT (tenant_id, drive_id, item_id, permission_id, grantee_key) DO UPDATE SET \
               grantee_type = EXCLUDED.grantee_type, grantee_id = EXCLUDED.grantee_id, display_name = EXCLUDED.display_name, \
               email = EXCLUDED.email, login_name = EXCLUDED.login_name, is_external = EXCLUDED.is_external, \
               is_everyone = EXCLUDED.is_everyone, is_everyone_except_external = EXCLUDED.is_everyone_except_external, \
               synced_at = now(), deleted_at = NULL",
        )
        .bind(tenant)
        .bind(g_drive)
        .bind(g_item)
        .bind(g_perm)
        .bind(g_key)
        .bind(g_type)
        .bind(g_id)
        .bind(g_name)
        .bind(g_email)
        .bind(g_login)
        .bind(g_ext)
        .bind(g_every)
        .bind(g_eeeu)
        .execute(&mut *tx)
        .await?;
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
            "UPDATE msgraph_drive_items t SET permissions_last_synced_at = now() \
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
            &[
                "msgraph_drive_item_permissions",
                "msgraph_drive_item_permission_grants",
                "msgraph_drive_items",
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Items whose permissions are due a read: never read, or changed since the last read.
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
        let rows: Vec<(String, String)> = sqlx::query_as(
            concat!(
                "SELECT drive_id, id FROM msgraph_drive_items \
                 WHERE tenant_id = $1 AND deleted_at IS NULL \
                   AND (permissions_last_synced_at IS NULL OR permissions_last_synced_at < sharing_changed_at) \
                   AND (NOT $2 OR COALESCE(permission_root_id, id) = id) \
                   AND (drive_id, id) > ($3, $4)",
                not_in_skipped_drive!(),
                " ORDER BY drive_id, id LIMIT $5"
            ),
        )
        .bind(tenant)
        .bind(roots_only)
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
        Ok(sqlx::query_scalar(
            concat!(
                "SELECT count(*) FROM msgraph_drive_items \
                 WHERE tenant_id = $1 AND deleted_at IS NULL \
                   AND (permissions_last_synced_at IS NULL OR permissions_last_synced_at < sharing_changed_at) \
                   AND (NOT $2 OR COALESCE(permission_root_id, id) = id)",
                not_in_skipped_drive!()
            ),
        )
        .bind(tenant)
        .bind(roots_only)
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
                "SELECT permissions_last_synced_at, drive_id, id FROM msgraph_drive_items \
                 WHERE tenant_id = $1 AND deleted_at IS NULL AND permissions_last_synced_at < $3 \
                   AND (NOT $2 OR COALESCE(permission_root_id, id) = id) \
                   AND ($4::timestamptz IS NULL OR (permissions_last_synced_at, drive_id, id) > ($4, $5, $6))",
                not_in_skipped_drive!(),
                " ORDER BY permissions_last_synced_at, drive_id, id LIMIT $7"
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
        Ok(sqlx::query_scalar(concat!(
            "SELECT count(*) FROM msgraph_drive_items \
                 WHERE tenant_id = $1 AND deleted_at IS NULL AND permissions_last_synced_at < $3 \
                   AND (NOT $2 OR COALESCE(permission_root_id, id) = id)",
            not_in_skipped_drive!()
        ))
        .bind(tenant)
        .bind(roots_only)
        .bind(read_before)
        .fetch_one(&self.pool)
        .await?)
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
