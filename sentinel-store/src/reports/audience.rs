//! Effective access of one item: the distinct people who can read it and who can write it, through
//! every grant that applies (its own or its permission root's), groups expanded transitively.
//!
//! The rules, as `docs/effective-access.md` states them: people are live, enabled accounts; a
//! group reaches its members through nested groups (`mv_group_transitive_users`); "Everyone except
//! external users" and organisation links reach every enabled member, "Everyone" every enabled
//! account with guests; a pending invitation reaches an external address; an anyone link reaches
//! anyone (a flag: no count bounds it); the Owners and Members site groups of a group-connected
//! site collection reach the Microsoft 365 group's owners and members; any other SharePoint site
//! group cannot be expanded through Graph, so an item holding one has a lower bound only.
//! Reading takes any role; writing `write` or `owner`. An upload-only (`createOnly`) link lets
//! its holders add files and open none: writers, not readers.

use serde::Serialize;

use crate::{Store, StoreError};

/// What a permission lets its holders do: `rd` read, `w` write. An upload-only (`createOnly`)
/// link opens nothing whatever its roles say, and lets its holders add files
/// (driveitem-createlink, "Link types").
pub(super) const PERMISSION_FLAGS: &str = "coalesce(p.link_type, '') <> 'createOnly' AS rd,
           ('write' = ANY(p.roles) OR 'owner' = ANY(p.roles)
            OR p.link_type IS NOT DISTINCT FROM 'createOnly') AS w";

/// The libraries (of drive `filter`, or all) of group-connected site collections, with their live
/// Microsoft 365 group (`connected`). A subsite keeps its collection's GUID in its id
/// (`host,collection,web`), and with it the collection's site groups.
pub(crate) fn connected_drives(filter: &str) -> String {
    format!(
        "connected AS (
    SELECT d.id AS drive_id, gs.group_id
    FROM msgraph_drives d
    JOIN msgraph_sites ds ON ds.tenant_id = d.tenant_id AND ds.id = d.site_id
    JOIN msgraph_sites gs ON gs.tenant_id = d.tenant_id AND gs.group_id IS NOT NULL
         AND split_part(gs.id, ',', 2) = split_part(ds.id, ',', 2)
    JOIN msgraph_groups grp ON grp.tenant_id = d.tenant_id AND grp.id = gs.group_id
         AND grp.deleted_at IS NULL
    WHERE d.tenant_id = $1 AND d.deleted_at IS NULL{filter}
)"
    )
}

/// A person: a live, enabled account (`u`, a row of `msgraph_users`).
const LIVE_PERSON: &str = "u.deleted_at IS NULL AND u.account_enabled IS NOT FALSE";

/// Which directory group a grant reaches through: a group grant its group's members; on a
/// group-connected site, the Owners site group the group's owners and the Members site group its
/// members (graph-behaviour.md, "group-connected team site"; SharePoint names them "<site>
/// Owners" and "<site> Members"). Any other site group resolves to neither: a lower bound.
const GRANT_GROUPS: &str = "CASE WHEN g.grantee_type = 'group' THEN g.grantee_id
                WHEN g.grantee_type = 'site_group' AND g.display_name LIKE '% Members' THEN sg.group_id
           END AS members_of,
           CASE WHEN g.grantee_type = 'site_group' AND g.display_name LIKE '% Owners' THEN sg.group_id
           END AS owners_of";

/// Who the broad grants (organisation links, the Everyone claims) of one item reach.
#[derive(Debug, Clone, Copy)]
enum Broad {
    /// Everyone they reach: for the counts.
    Everyone,
    /// The first `$4` by name of everyone each one reaches: enough for the first `$4` of the
    /// audience in the order [`Store::item_audience_members`] lists it. Everyone a broad grant
    /// reaches and no other grant has the same rights, so past those first by name, none
    /// of them can come before the people listed.
    FirstByName,
}

/// The permissions that apply to item `$3` of drive `$2`, their grants, and every person they
/// reach with whether one of the grants lets them read and one write (`audience`).
fn audience_cte(broad: Broad) -> String {
    let broad_people = match broad {
        Broad::Everyone => format!(
            "JOIN msgraph_users u ON u.tenant_id = $1 AND {LIVE_PERSON} AND (b.with_guests OR NOT u.is_guest)"
        ),
        Broad::FirstByName => format!(
            "CROSS JOIN LATERAL (
        SELECT u.id, u.is_guest FROM msgraph_users u
        WHERE u.tenant_id = $1 AND {LIVE_PERSON} AND (b.with_guests OR NOT u.is_guest)
        ORDER BY u.display_name, u.id LIMIT $4
    ) u"
        ),
    };
    format!(
        "
WITH {connected}, target AS (
    SELECT i.tenant_id, i.drive_id, coalesce(i.permission_root_id, i.id) AS holder
    FROM msgraph_drive_items i
    WHERE i.tenant_id = $1 AND i.drive_id = $2 AND i.id = $3 AND i.deleted_at IS NULL
), perms AS (
    SELECT p.tenant_id, p.drive_id, p.item_id, p.permission_id, p.link_scope,
           {PERMISSION_FLAGS}
    FROM target t
    JOIN msgraph_drive_item_permissions p ON p.tenant_id = t.tenant_id AND p.drive_id = t.drive_id
         AND p.item_id = t.holder AND p.deleted_at IS NULL
), grants AS (
    SELECT g.grantee_type, g.grantee_id, g.email, g.is_everyone, g.is_everyone_except_external, p.rd, p.w,
           {GRANT_GROUPS}
    FROM perms p
    JOIN msgraph_drive_item_permission_grants g ON g.tenant_id = p.tenant_id AND g.drive_id = p.drive_id
         AND g.item_id = p.item_id AND g.permission_id = p.permission_id AND g.deleted_at IS NULL
    LEFT JOIN connected sg ON sg.drive_id = g.drive_id
), broad AS (
    SELECT false AS with_guests, rd, w FROM perms WHERE link_scope = 'organization'
    UNION ALL SELECT false, rd, w FROM grants WHERE is_everyone_except_external
    UNION ALL SELECT true, rd, w FROM grants WHERE is_everyone
), reach AS (
    SELECT u.id AS user_id, u.is_guest, g.rd, g.w FROM grants g
    JOIN msgraph_users u ON u.tenant_id = $1 AND u.id = g.grantee_id AND {LIVE_PERSON}
    WHERE g.grantee_type = 'user'
    UNION ALL
    SELECT u.id, u.is_guest, g.rd, g.w FROM grants g
    JOIN mv_group_transitive_users tu ON tu.tenant_id = $1 AND tu.group_id = g.members_of
    JOIN msgraph_users u ON u.tenant_id = $1 AND u.id = tu.user_id AND {LIVE_PERSON}
    UNION ALL
    SELECT u.id, u.is_guest, g.rd, g.w FROM grants g
    JOIN msgraph_group_owners o ON o.tenant_id = $1 AND o.group_id = g.owners_of AND o.deleted_at IS NULL
    JOIN msgraph_users u ON u.tenant_id = $1 AND u.id = o.member_id AND {LIVE_PERSON}
    UNION ALL
    SELECT u.id, u.is_guest, b.rd, b.w FROM broad b
    {broad_people}
), audience AS (
    -- No join here: every branch above reads the person's row by its key. Joined to a CTE of
    -- people instead, the planner (which guesses one row per CTE) re-ran every branch once per
    -- person: 36 s for an Everyone-except-external item on the medium profile.
    SELECT user_id, bool_or(rd) AS can_read, bool_or(w) AS can_write, bool_and(is_guest) AS is_guest
    FROM reach GROUP BY user_id
)",
        connected = connected_drives(" AND d.id = $2").replacen("connected AS", "connected AS MATERIALIZED", 1)
    )
}

/// Who can open one item, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ItemAudience {
    /// Distinct people (enabled directory accounts) who can read.
    pub readers: i64,
    /// Of those, who can write.
    pub writers: i64,
    /// Readers who are members of the organisation.
    pub internal_readers: i64,
    /// Readers who are guests.
    pub guest_readers: i64,
    /// Invited addresses, not yet redeemed, that can read.
    pub external_readers: i64,
    /// Of those, that can write.
    pub external_writers: i64,
    /// An anyone link applies: anyone with the link can read, beyond any count.
    pub anyone_can_read: bool,
    /// An anyone link that allows editing applies.
    pub anyone_can_write: bool,
    /// A SharePoint site group applies, whose members Graph cannot list: the counts are a
    /// lower bound.
    pub lower_bound: bool,
}

/// Every permission holder of tenant `$1` (an item with permissions of its own: a hierarchy root,
/// or every item in exhaustive mode) as sets, without expanding the broad claims, each statement
/// filling a temporary table of the transaction (dropped at its commit) that the stored
/// audiences and the stored reach both read:
/// - `hs_people`: every person (live, enabled account), and whether a guest;
/// - `hs_grants`: every live grant, with what its permission allows and the directory group it
///   reaches through;
/// - `hs_holders`: each holder with live items (`n` of them, in library `drive_id` of site
///   `site_id`), how broad its readers and writers are (`read_class`, `write_class`: 2 every
///   person, 1 every member, 0 only those reached explicitly; `any_class` the larger), its
///   anyone flags and lower bound;
/// - `hs_explicit`: each person a holder reaches explicitly (user grants, groups expanded, site
///   groups resolved) and what they may do.
///
/// Each is analyzed once filled: the planner then knows their sizes (guessed, CTEs like these
/// got nested loops quadratic in items: 98 s against 7 s of view refreshes on the medium profile).
///
/// With `scoped`, only the holders of the libraries of `$2` (a `text[]`) are in them (everyone
/// is still in `hs_people`).
pub(super) fn holder_set_statements(scoped: bool) -> [String; 9] {
    let only = |column: &str| {
        if scoped {
            format!(" AND {column} = ANY($2)")
        } else {
            String::new()
        }
    };
    let (perm, grant, item) = (only("p.drive_id"), only("g.drive_id"), only("drive_id"));
    [
        format!(
            "CREATE TEMP TABLE hs_people ON COMMIT DROP AS
SELECT u.id, u.is_guest FROM msgraph_users u WHERE u.tenant_id = $1 AND {LIVE_PERSON}"
        ),
        format!(
            "CREATE TEMP TABLE hs_grants ON COMMIT DROP AS
WITH {connected}, perms AS (
    SELECT p.drive_id, p.item_id AS holder, p.permission_id, {PERMISSION_FLAGS}
    FROM msgraph_drive_item_permissions p WHERE p.tenant_id = $1 AND p.deleted_at IS NULL{perm}
)
SELECT g.drive_id, g.item_id AS holder, g.grantee_type, g.grantee_id, g.email,
       g.is_everyone, g.is_everyone_except_external, p.rd, p.w,
       {GRANT_GROUPS}
FROM msgraph_drive_item_permission_grants g
JOIN perms p ON p.drive_id = g.drive_id AND p.holder = g.item_id AND p.permission_id = g.permission_id
LEFT JOIN connected sg ON sg.drive_id = g.drive_id
WHERE g.tenant_id = $1 AND g.deleted_at IS NULL{grant}",
            connected = connected_drives(&only("d.id"))
        ),
        format!(
            "CREATE TEMP TABLE hs_holders ON COMMIT DROP AS
WITH perms AS (
    SELECT p.drive_id, p.item_id AS holder, p.link_scope, {PERMISSION_FLAGS}
    FROM msgraph_drive_item_permissions p WHERE p.tenant_id = $1 AND p.deleted_at IS NULL{perm}
), classes AS (
    SELECT drive_id, holder,
           max(CASE WHEN NOT rd THEN 0 WHEN everyone THEN 2 WHEN members THEN 1 ELSE 0 END) AS read_class,
           max(CASE WHEN NOT w THEN 0 WHEN everyone THEN 2 WHEN members THEN 1 ELSE 0 END) AS write_class,
           bool_or(anyone AND rd) AS anyone_can_read, bool_or(anyone AND w) AS anyone_can_write,
           bool_or(site_group) AS lower_bound
    FROM (
        -- A permission without a link (a grant whose grantee is not stored yet, say) is neither.
        SELECT drive_id, holder, rd, w, false AS everyone,
               coalesce(link_scope = 'organization', false) AS members,
               coalesce(link_scope = 'anonymous', false) AS anyone, false AS site_group
        FROM perms
        UNION ALL
        SELECT drive_id, holder, rd, w, is_everyone, is_everyone_except_external, false,
               grantee_type = 'site_group' AND members_of IS NULL AND owners_of IS NULL
        FROM hs_grants
    ) c
    GROUP BY drive_id, holder
), counts AS (
    SELECT drive_id, coalesce(permission_root_id, id) AS holder, count(*) AS n
    FROM msgraph_drive_items WHERE tenant_id = $1 AND deleted_at IS NULL{item} GROUP BY 1, 2
)
SELECT c.*, greatest(c.read_class, c.write_class) AS any_class, n.n, d.site_id
FROM classes c
JOIN counts n ON n.drive_id = c.drive_id AND n.holder = c.holder
JOIN msgraph_drives d ON d.tenant_id = $1 AND d.id = c.drive_id"
        ),
        "CREATE TEMP TABLE hs_explicit ON COMMIT DROP AS
SELECT r.drive_id, r.holder, r.user_id, bool_or(r.rd) AS can_read, bool_or(r.w) AS can_write,
       min(u.is_guest::int) = 1 AS is_guest
FROM (
    SELECT drive_id, holder, grantee_id AS user_id, rd, w FROM hs_grants
    WHERE grantee_type = 'user' AND grantee_id IS NOT NULL
    UNION ALL
    SELECT g.drive_id, g.holder, tu.user_id, g.rd, g.w FROM hs_grants g
    JOIN mv_group_transitive_users tu ON tu.tenant_id = $1 AND tu.group_id = g.members_of
    UNION ALL
    SELECT g.drive_id, g.holder, o.member_id, g.rd, g.w FROM hs_grants g
    JOIN msgraph_group_owners o ON o.tenant_id = $1 AND o.group_id = g.owners_of AND o.deleted_at IS NULL
) r JOIN hs_people u ON u.id = r.user_id
GROUP BY r.drive_id, r.holder, r.user_id"
            .to_string(),
        "CREATE INDEX ON hs_holders (drive_id, holder)".to_string(),
        "ANALYZE hs_people".to_string(),
        "ANALYZE hs_grants".to_string(),
        "ANALYZE hs_holders".to_string(),
        "ANALYZE hs_explicit".to_string(),
    ]
}

/// The audience of every holder of [`holder_set_statements`], by set arithmetic: everyone = all
/// people; members-wide (organisation links, "Everyone except external users") = every member
/// plus the guests reached explicitly; otherwise the people reached explicitly.
pub(super) const HOLDER_AUDIENCES: &str = "
WITH totals AS (
    SELECT count(*) AS all_n, count(*) FILTER (WHERE NOT is_guest) AS internal_n,
           count(*) FILTER (WHERE is_guest) AS guest_n FROM hs_people
), explicit_counts AS (
    SELECT drive_id, holder, count(*) FILTER (WHERE can_read) AS n, count(*) FILTER (WHERE can_write) AS w_n,
           count(*) FILTER (WHERE is_guest AND can_read) AS guests,
           count(*) FILTER (WHERE is_guest AND can_write) AS w_guests
    FROM hs_explicit GROUP BY drive_id, holder
), externals AS (
    SELECT drive_id, holder, count(DISTINCT lower(email)) FILTER (WHERE rd) AS n,
           count(DISTINCT lower(email)) FILTER (WHERE w) AS w_n
    FROM hs_grants WHERE grantee_type = 'invitation' GROUP BY drive_id, holder
)
SELECT c.drive_id, c.holder, c.n,
       CASE c.read_class WHEN 2 THEN t.all_n WHEN 1 THEN t.internal_n + coalesce(e.guests, 0)
            ELSE coalesce(e.n, 0) END AS readers,
       CASE c.write_class WHEN 2 THEN t.all_n WHEN 1 THEN t.internal_n + coalesce(e.w_guests, 0)
            ELSE coalesce(e.w_n, 0) END AS writers,
       CASE c.read_class WHEN 2 THEN t.guest_n ELSE coalesce(e.guests, 0) END AS guest_readers,
       coalesce(x.n, 0) AS external_readers, coalesce(x.w_n, 0) AS external_writers,
       c.anyone_can_read, c.anyone_can_write, c.lower_bound
FROM hs_holders c CROSS JOIN totals t
LEFT JOIN explicit_counts e ON e.drive_id = c.drive_id AND e.holder = c.holder
LEFT JOIN externals x ON x.drive_id = c.drive_id AND x.holder = c.holder";

/// The audience of every live item, through its permission holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemAudienceRow {
    /// The library.
    pub drive_id: String,
    /// The item.
    pub item_id: String,
    /// Who can open it.
    pub audience: ItemAudience,
}

/// One person who can open an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AudienceMember {
    /// Directory id.
    pub user_id: String,
    /// How the person is shown.
    pub display_name: Option<String>,
    /// Their sign-in name.
    pub user_principal_name: Option<String>,
    /// A guest of the organisation.
    pub is_guest: bool,
    /// One of the grants that reach them lets them open it (else they can only upload, through
    /// upload-only links).
    pub can_read: bool,
    /// One of the grants that reach them allows writing.
    pub can_write: bool,
}

impl Store {
    /// A transaction for the queries over every holder of a tenant ([`holder_sets`]). The CTEs'
    /// row estimates are far too small (grouped, joined aggregates), so the planner picks nested
    /// loops over them: quadratic in items (98 s against 7 s of view refreshes on the medium
    /// profile). Every join there is over whole sets: hash joins are right.
    pub(super) async fn whole_set_transaction(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL enable_nestloop = off")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Who can open an item, counted, as the last refresh stored it for its permission holder
    /// (stored tables change only during scans, and each scan's `refresh_mv` recomputes them),
    /// or computed now when its holder has none stored yet; all zero for an item that is not
    /// stored (or deleted).
    pub async fn item_audience(
        &self,
        tenant: &str,
        drive_id: &str,
        item_id: &str,
    ) -> Result<ItemAudience, StoreError> {
        match self.stored_item_audience(tenant, drive_id, item_id).await? {
            Some(a) => Ok(a),
            None => self.item_audience_live(tenant, drive_id, item_id).await,
        }
    }

    /// Who can open an item, counted from the permissions and groups stored now.
    pub async fn item_audience_live(
        &self,
        tenant: &str,
        drive_id: &str,
        item_id: &str,
    ) -> Result<ItemAudience, StoreError> {
        let sql = format!(
            "{}
SELECT (SELECT count(*) FROM audience WHERE can_read) AS readers,
       (SELECT count(*) FROM audience WHERE can_write) AS writers,
       (SELECT count(*) FROM audience WHERE can_read AND NOT is_guest) AS internal_readers,
       (SELECT count(*) FROM audience WHERE can_read AND is_guest) AS guest_readers,
       (SELECT count(DISTINCT lower(email)) FROM grants WHERE grantee_type = 'invitation' AND rd) AS external_readers,
       (SELECT count(DISTINCT lower(email)) FROM grants WHERE grantee_type = 'invitation' AND w) AS external_writers,
       coalesce((SELECT bool_or(link_scope = 'anonymous' AND rd) FROM perms), false) AS anyone_can_read,
       coalesce((SELECT bool_or(link_scope = 'anonymous' AND w) FROM perms), false) AS anyone_can_write,
       EXISTS (SELECT 1 FROM grants WHERE grantee_type = 'site_group'
               AND members_of IS NULL AND owners_of IS NULL) AS lower_bound",
            audience_cte(Broad::Everyone)
        );
        Ok(sqlx::query_as(&sql)
            .bind(tenant)
            .bind(drive_id)
            .bind(item_id)
            .fetch_one(&self.pool)
            .await?)
    }

    /// The people who can open an item or add to it, writers first, then by name; at most `limit`.
    pub async fn item_audience_members(
        &self,
        tenant: &str,
        drive_id: &str,
        item_id: &str,
        limit: i64,
    ) -> Result<Vec<AudienceMember>, StoreError> {
        let sql = format!(
            "{}
SELECT a.user_id, u.display_name, u.user_principal_name, a.is_guest, a.can_read, a.can_write
FROM audience a JOIN msgraph_users u ON u.tenant_id = $1 AND u.id = a.user_id
ORDER BY a.can_write DESC, a.can_read DESC, u.display_name, a.user_id
LIMIT $4",
            audience_cte(Broad::FirstByName)
        );
        Ok(sqlx::query_as(&sql)
            .bind(tenant)
            .bind(drive_id)
            .bind(item_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }
}
