//! Users, groups and memberships.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use crate::rows::{GroupRow, MemberChange, Relation, UserRow, in_passes, last_wins};
use crate::unnest::Unnest;
use crate::{Store, StoreError};

/// Records that `tables` changed for `tenant`, in the caller's transaction. Rows are locked in
/// name order: one transaction touching several tables beside another of the same tenant would
/// otherwise deadlock on them. Writers of different tenants touch different rows.
pub(crate) async fn touch(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &str,
    tables: &[&str],
) -> Result<(), StoreError> {
    let names: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
    sqlx::query(
        "INSERT INTO tenant_update_log (tenant_id, table_name, last_updated_at) \
         SELECT $1, t, now() FROM UNNEST($2::text[]) AS t ORDER BY t \
         ON CONFLICT (tenant_id, table_name) DO UPDATE SET last_updated_at = EXCLUDED.last_updated_at",
    )
    .bind(tenant)
    .bind(names)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Soft-deletes rows of `table` with the given ids (a fixed list of tables, never user input).
pub(crate) async fn soft_delete_ids(
    tx: &mut Transaction<'_, Postgres>,
    table: &'static str,
    tenant: &str,
    ids: &[String],
) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "UPDATE {table} SET deleted_at = now(), synced_at = now() WHERE tenant_id = $1 AND id = ANY($2) AND deleted_at IS NULL"
    );
    let n = sqlx::query(&sql)
        .bind(tenant)
        .bind(ids)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(n)
}

/// The `ON CONFLICT ... DO UPDATE SET` list of a directory table fed by delta rounds.
///
/// Graph returns an updated user or group "by their id with at least the properties that have
/// been updated" (learn.microsoft.com/graph/delta-query-overview), and a group split over pages
/// comes back as `{"id", "members@delta"}`: an absent property is not a null. So a column takes
/// the incoming value only when the incoming object carries the property it comes from, and
/// `raw_json` is the stored object with the incoming properties laid over it.
fn merge_set(u: &Unnest, columns: &[(&str, &str)]) -> String {
    let merged: Vec<(&str, String)> = columns
        .iter()
        .map(|(column, property)| {
            (
                *column,
                format!(
                    "CASE WHEN EXCLUDED.raw_json ? '{property}' THEN EXCLUDED.{column} ELSE t.{column} END"
                ),
            )
        })
        .chain([("raw_json", "t.raw_json || EXCLUDED.raw_json".to_string())])
        .collect();
    let overrides: Vec<(&str, &str)> = merged.iter().map(|(c, e)| (*c, e.as_str())).collect();
    u.update_set(&["id"], &overrides)
}

/// Columns of `msgraph_users` and the Graph property each is read from.
const USER_COLUMNS: &[(&str, &str)] = &[
    ("display_name", "displayName"),
    ("user_principal_name", "userPrincipalName"),
    ("mail", "mail"),
    ("user_type", "userType"),
    ("is_guest", "userType"),
    ("account_enabled", "accountEnabled"),
    ("department", "department"),
    ("has_license", "assignedLicenses"),
    ("created_at", "createdDateTime"),
];

/// Columns of `msgraph_groups` and the Graph property each is read from.
const GROUP_COLUMNS: &[(&str, &str)] = &[
    ("display_name", "displayName"),
    ("mail", "mail"),
    ("mail_nickname", "mailNickname"),
    ("is_unified", "groupTypes"),
    ("security_enabled", "securityEnabled"),
    ("visibility", "visibility"),
    ("created_at", "createdDateTime"),
];

/// Inserts or updates users (undeleting any that come back), merging partial objects.
async fn upsert_users(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &str,
    rows: &[UserRow],
) -> Result<u64, StoreError> {
    let mut n = 0;
    // One statement may not touch a row twice: the same user twice in a page is merged in turn.
    for rows in in_passes(rows, |r| r.id.clone()) {
        let mut u = Unnest::new("msgraph_users", tenant, rows.len());
        u.column("id", rows.iter().map(|r| r.id.clone()))
            .column("display_name", rows.iter().map(|r| r.display_name.clone()))
            .column(
                "user_principal_name",
                rows.iter().map(|r| r.user_principal_name.clone()),
            )
            .column("mail", rows.iter().map(|r| r.mail.clone()))
            .column("user_type", rows.iter().map(|r| r.user_type.clone()))
            .column("is_guest", rows.iter().map(|r| r.is_guest))
            .column("account_enabled", rows.iter().map(|r| r.account_enabled))
            .column("department", rows.iter().map(|r| r.department.clone()))
            .column("has_license", rows.iter().map(|r| r.has_license))
            .column("created_at", rows.iter().map(|r| r.created_at))
            .json("raw_json", rows.iter().map(|r| r.raw_json.to_string()))
            .computed("synced_at", "now()")
            .computed("deleted_at", "NULL::timestamptz");
        let set = merge_set(&u, USER_COLUMNS);
        n += u.upsert(tx, &["id"], &set).await?;
    }
    Ok(n)
}

/// Inserts or updates groups, merging partial objects (see [`merge_set`]).
async fn upsert_groups(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &str,
    rows: &[GroupRow],
) -> Result<u64, StoreError> {
    let mut n = 0;
    for rows in in_passes(rows, |r| r.id.clone()) {
        let mut u = Unnest::new("msgraph_groups", tenant, rows.len());
        u.column("id", rows.iter().map(|r| r.id.clone()))
            .column("display_name", rows.iter().map(|r| r.display_name.clone()))
            .column("mail", rows.iter().map(|r| r.mail.clone()))
            .column(
                "mail_nickname",
                rows.iter().map(|r| r.mail_nickname.clone()),
            )
            .column("is_unified", rows.iter().map(|r| r.is_unified))
            .column("security_enabled", rows.iter().map(|r| r.security_enabled))
            .column("visibility", rows.iter().map(|r| r.visibility.clone()))
            .column("created_at", rows.iter().map(|r| r.created_at))
            .json("raw_json", rows.iter().map(|r| r.raw_json.to_string()))
            .computed("synced_at", "now()")
            .computed("deleted_at", "NULL::timestamptz");
        let set = merge_set(&u, GROUP_COLUMNS);
        n += u.upsert(tx, &["id"], &set).await?;
    }
    Ok(n)
}

/// Applies membership and ownership additions and removals (`members@delta`, `owners@delta`),
/// last change per pair wins.
async fn apply_member_changes(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &str,
    changes: &[MemberChange],
) -> Result<u64, StoreError> {
    let mut n = 0;
    for relation in [Relation::Member, Relation::Owner] {
        let of: Vec<MemberChange> = changes
            .iter()
            .filter(|c| c.relation == relation)
            .cloned()
            .collect();
        n += apply_relation_changes(tx, tenant, relation, &of).await?;
    }
    Ok(n)
}

async fn apply_relation_changes(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &str,
    relation: Relation,
    changes: &[MemberChange],
) -> Result<u64, StoreError> {
    if changes.is_empty() {
        return Ok(0);
    }
    let changes = last_wins(changes, |c| (c.group_id.clone(), c.member_id.clone()));
    let mut u = Unnest::new(relation.table(), tenant, changes.len());
    u.column("group_id", changes.iter().map(|c| c.group_id.clone()))
        .column("member_id", changes.iter().map(|c| c.member_id.clone()))
        .column("member_type", changes.iter().map(|c| c.member_type.clone()))
        .input("removed", changes.iter().map(|c| c.removed))
        .computed("synced_at", "now()")
        .computed("deleted_at", "CASE WHEN u.removed THEN now() END");
    let key = ["group_id", "member_id"];
    let set = u.excluded_except(&key);
    u.upsert(tx, &key, &set).await
}

/// A group with its members and owners, written by groups rounds.
const GROUP_TABLES: &[&str] = &[
    "msgraph_groups",
    "msgraph_group_members",
    "msgraph_group_owners",
];

/// A tenant-wide table fed by full delta rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TenantTable {
    /// `msgraph_users`.
    Users,
    /// `msgraph_groups` (and, with it, `msgraph_group_members` and `msgraph_group_owners`).
    Groups,
    /// `msgraph_sites`.
    Sites,
}

impl TenantTable {
    /// The delta state's resource name (`msgraph_delta_state.resource_type`).
    pub fn resource(self) -> &'static str {
        match self {
            TenantTable::Users => "users",
            TenantTable::Groups => "groups",
            TenantTable::Sites => "sites",
        }
    }
}

/// Partition key of a tenant-wide resource (users, groups, sites).
pub fn tenant_partition(tenant: &str) -> String {
    tenant.to_string()
}

impl Store {
    /// Applies one page of a users delta round: upserts, removals (`@removed`, either reason:
    /// both leave the live set) and, on the last page of a complete round, its deltaLink.
    ///
    /// One transaction, run again if Postgres fails it to break a deadlock.
    pub async fn apply_users_page(
        &self,
        tenant: &str,
        upserts: &[UserRow],
        removed: &[String],
        delta_link: Option<&str>,
    ) -> Result<u64, StoreError> {
        crate::retry_transient(|| async move {
            let mut tx = self.pool.begin().await?;
            let mut n = upsert_users(&mut tx, tenant, upserts).await?;
            n += soft_delete_ids(&mut tx, "msgraph_users", tenant, removed).await?;
            if let Some(link) = delta_link {
                crate::delta::save_link(&mut tx, "users", &tenant_partition(tenant), link).await?;
            }
            touch(&mut tx, tenant, &["msgraph_users"]).await?;
            tx.commit().await?;
            Ok(n)
        })
        .await
    }

    /// Applies one page of a groups delta round: groups, removed groups (with their
    /// memberships), membership changes and, on the last page, the deltaLink.
    ///
    /// One transaction, run again if Postgres fails it to break a deadlock.
    pub async fn apply_groups_page(
        &self,
        tenant: &str,
        upserts: &[GroupRow],
        removed: &[String],
        members: &[MemberChange],
        delta_link: Option<&str>,
    ) -> Result<u64, StoreError> {
        crate::retry_transient(|| async move {
        let mut tx = self.pool.begin().await?;
        let mut n = upsert_groups(&mut tx, tenant, upserts).await?;
        n += soft_delete_ids(&mut tx, "msgraph_groups", tenant, removed).await?;
        if !removed.is_empty() {
            for relation in [Relation::Member, Relation::Owner] {
                let sql = format!(
                    "UPDATE {} SET deleted_at = now() WHERE tenant_id = $1 AND group_id = ANY($2) AND deleted_at IS NULL",
                    relation.table()
                );
                sqlx::query(&sql)
                    .bind(tenant)
                    .bind(removed)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        n += apply_member_changes(&mut tx, tenant, members).await?;
        if let Some(link) = delta_link {
            crate::delta::save_link(&mut tx, "groups", &tenant_partition(tenant), link).await?;
        }
        touch(&mut tx, tenant, GROUP_TABLES).await?;
        tx.commit().await?;
        Ok(n)
        })
        .await
    }

    /// After a full directory round: soft-deletes rows of `table` not seen since `round_started`
    /// (groups with their memberships; site collections with the subsites left without one).
    pub async fn reconcile_tenant_table(
        &self,
        tenant: &str,
        table: TenantTable,
        round_started: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let tables: &[&'static str] = match table {
            TenantTable::Users => &["msgraph_users"],
            TenantTable::Groups => GROUP_TABLES,
            TenantTable::Sites => &["msgraph_sites"],
        };
        // Subsites are not in sites rounds: their parents' listings keep them.
        let not_subsite = if table == TenantTable::Sites {
            " AND parent_site_id IS NULL"
        } else {
            ""
        };
        let mut tx = self.pool.begin().await?;
        let mut n = 0;
        for table in tables {
            let sql = format!(
                "UPDATE {table} SET deleted_at = now() WHERE tenant_id = $1 AND synced_at < $2 AND deleted_at IS NULL{not_subsite}"
            );
            n += sqlx::query(&sql)
                .bind(tenant)
                .bind(round_started)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        if table == TenantTable::Sites {
            n += crate::sites::delete_orphaned_subsites(&mut tx, tenant).await?;
        }
        touch(&mut tx, tenant, tables).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Ids of the tenant's live guest users (to flag external grantees).
    pub async fn guest_user_ids(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM msgraph_users WHERE tenant_id = $1 AND is_guest AND deleted_at IS NULL",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Ids of the tenant's live users.
    /// Live users; with `since`, only those a users round wrote since then (new or changed).
    pub async fn live_user_ids(
        &self,
        tenant: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM msgraph_users WHERE tenant_id = $1 AND deleted_at IS NULL \
             AND ($2::timestamptz IS NULL OR synced_at >= $2) ORDER BY id",
        )
        .bind(tenant)
        .bind(since)
        .fetch_all(&self.pool)
        .await?)
    }
}
