//! What one person reaches and through what (`/people/{id}`): every permission holder (an item
//! with permissions of its own, and the items inheriting from it) that one of their grants opens,
//! with each way in: a direct grant, a specific-people link, a group and the chain of nested
//! groups that makes them a member, a site group of a group-connected site, an "Everyone" claim,
//! an organisation link, an invitation. Only the grants that can concern this person are read
//! (by grantee, or the broad ones by their own indexes), never the tenant's every holder.

use serde::{Deserialize, Serialize};
use sqlx::types::Json;

use super::audience::PERMISSION_FLAGS;
use super::{HolderPlace, Page, PageRequest, PersonReach};
use crate::{Store, StoreError};

/// Every holder person `$2` reaches (`mine`: drive, holder, can_read, can_write, routes), with
/// the rules of [`super::audience`]. `$2` is a directory id, or an invited address.
fn reached_holders() -> String {
    format!(
        "
WITH RECURSIVE me AS (
    SELECT u.id, u.is_guest FROM msgraph_users u
    WHERE u.tenant_id = $1 AND u.id = $2 AND u.deleted_at IS NULL AND u.account_enabled IS NOT FALSE
), chain AS (
    -- The groups the person belongs to, through nesting: path[1] is the outermost group.
    SELECT m.group_id, ARRAY[coalesce(g.display_name, m.group_id)] AS path, ARRAY[m.group_id] AS seen
    FROM me JOIN msgraph_group_members m ON m.tenant_id = $1 AND m.member_id = me.id
         AND m.member_type = 'user' AND m.deleted_at IS NULL
    LEFT JOIN msgraph_groups g ON g.tenant_id = $1 AND g.id = m.group_id
    UNION ALL
    SELECT m.group_id, coalesce(g.display_name, m.group_id) || c.path, c.seen || m.group_id
    FROM chain c JOIN msgraph_group_members m ON m.tenant_id = $1 AND m.member_id = c.group_id
         AND m.member_type = 'group' AND m.deleted_at IS NULL
    LEFT JOIN msgraph_groups g ON g.tenant_id = $1 AND g.id = m.group_id
    WHERE NOT m.group_id = ANY(c.seen)
), my_groups AS (
    SELECT DISTINCT ON (group_id) group_id, array_to_string(path, ' › ') AS path
    FROM chain ORDER BY group_id, cardinality(path)
), my_owned AS (
    SELECT o.group_id FROM me JOIN msgraph_group_owners o ON o.tenant_id = $1
         AND o.member_id = me.id AND o.deleted_at IS NULL
), my_drives AS (
    -- The libraries of the group-connected site collections whose groups the person is in.
    SELECT d.id AS drive_id, gs.group_id
    FROM msgraph_sites gs
    JOIN msgraph_groups grp ON grp.tenant_id = $1 AND grp.id = gs.group_id AND grp.deleted_at IS NULL
    JOIN msgraph_sites ds ON ds.tenant_id = $1 AND split_part(ds.id, ',', 2) = split_part(gs.id, ',', 2)
    JOIN msgraph_drives d ON d.tenant_id = $1 AND d.site_id = ds.id AND d.deleted_at IS NULL
    WHERE gs.tenant_id = $1
      AND gs.group_id IN (SELECT group_id FROM my_groups UNION SELECT group_id FROM my_owned)
), granted AS (
    SELECT g.drive_id, g.item_id, g.permission_id, 'direct' AS route
    FROM me JOIN msgraph_drive_item_permission_grants g ON g.tenant_id = $1 AND g.grantee_id = me.id
         AND g.grantee_type = 'user' AND g.deleted_at IS NULL
    UNION ALL
    SELECT g.drive_id, g.item_id, g.permission_id, 'invitation (not yet accepted)'
    FROM msgraph_drive_item_permission_grants g
    WHERE g.tenant_id = $1 AND g.grantee_type = 'invitation' AND lower(g.email) = lower($2)
      AND g.deleted_at IS NULL
    UNION ALL
    SELECT g.drive_id, g.item_id, g.permission_id, 'group: ' || mg.path
    FROM my_groups mg JOIN msgraph_drive_item_permission_grants g ON g.tenant_id = $1
         AND g.grantee_id = mg.group_id AND g.grantee_type = 'group' AND g.deleted_at IS NULL
    UNION ALL
    SELECT g.drive_id, g.item_id, g.permission_id,
           'site group: ' || g.display_name || CASE WHEN mg.path IS NULL THEN ' (an owner of the group)'
                                                    ELSE ' (through ' || mg.path || ')' END
    FROM my_drives c JOIN msgraph_drive_item_permission_grants g ON g.tenant_id = $1
         AND g.drive_id = c.drive_id AND g.grantee_type = 'site_group' AND g.deleted_at IS NULL
    LEFT JOIN my_groups mg ON mg.group_id = c.group_id AND g.display_name LIKE '% Members'
    WHERE mg.group_id IS NOT NULL
       OR (g.display_name LIKE '% Owners' AND c.group_id IN (SELECT group_id FROM my_owned))
    UNION ALL
    SELECT g.drive_id, g.item_id, g.permission_id,
           CASE WHEN g.is_everyone THEN 'claim: Everyone' ELSE 'claim: Everyone except external users' END
    FROM me JOIN msgraph_drive_item_permission_grants g ON g.tenant_id = $1 AND g.deleted_at IS NULL
         AND (g.is_everyone OR (g.is_everyone_except_external AND NOT me.is_guest))
    UNION ALL
    SELECT p.drive_id, p.item_id, p.permission_id, 'organisation link'
    FROM me JOIN msgraph_drive_item_permissions p ON p.tenant_id = $1 AND p.deleted_at IS NULL
         AND p.link_scope = 'organization' AND NOT me.is_guest
), mine AS (
    SELECT r.drive_id, r.item_id AS holder, bool_or(p.rd) AS can_read, bool_or(p.w) AS can_write,
           array_agg(DISTINCT r.route || CASE WHEN p.link_scope = 'users' AND r.route = 'direct'
                                              THEN ' (specific-people link)' ELSE '' END
                     ORDER BY r.route || CASE WHEN p.link_scope = 'users' AND r.route = 'direct'
                                              THEN ' (specific-people link)' ELSE '' END) AS routes
    FROM granted r
    JOIN LATERAL (
        SELECT p.link_scope, {PERMISSION_FLAGS}
        FROM msgraph_drive_item_permissions p
        WHERE p.tenant_id = $1 AND p.drive_id = r.drive_id AND p.item_id = r.item_id
          AND p.permission_id = r.permission_id AND p.deleted_at IS NULL
    ) p ON true
    GROUP BY r.drive_id, r.item_id
), reached AS (
    SELECT m.*, i.name, i.path, i.is_folder, d.name AS drive_name, d.site_id, s.display_name AS site_name,
           -- The items whose holder it is (coalesce(permission_root_id, id), as everywhere): as
           -- the last refresh stored them, counted here only for a holder not stored yet.
           coalesce(h.items,
               (SELECT count(*) FROM msgraph_drive_items x WHERE x.tenant_id = $1 AND x.drive_id = m.drive_id
                    AND x.permission_root_id = m.holder AND x.deleted_at IS NULL)
               + (i.permission_root_id IS NULL)::int) AS items
    FROM mine m
    LEFT JOIN holder_audiences h ON h.tenant_id = $1 AND h.drive_id = m.drive_id AND h.holder_id = m.holder
    JOIN msgraph_drive_items i ON i.tenant_id = $1 AND i.drive_id = m.drive_id AND i.id = m.holder
    JOIN msgraph_drives d ON d.tenant_id = $1 AND d.id = m.drive_id AND d.deleted_at IS NULL
    LEFT JOIN msgraph_sites s ON s.tenant_id = $1 AND s.id = d.site_id
    WHERE i.deleted_at IS NULL
)"
    )
}

/// One item with permissions of its own that a person reaches, and the items inheriting from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReachedItem {
    /// Where it is.
    #[serde(flatten)]
    pub place: HolderPlace,
    /// One of the ways in lets the person open it.
    pub can_read: bool,
    /// One of the ways in lets the person change it (or add to it).
    pub can_write: bool,
    /// Every way in, e.g. `direct`, `group: All staff › Sales`, `claim: Everyone`.
    pub routes: Vec<String>,
}

/// What a person reaches on one site (or in OneDrives, with no site).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteReach {
    /// The site; none for OneDrives.
    pub site_id: Option<String>,
    /// Its name.
    pub site_name: Option<String>,
    /// Libraries with something the person reaches.
    pub libraries: i64,
    /// Items they can open there.
    pub items_read: i64,
    /// Items they can change or add to there.
    pub items_write: i64,
}

/// A person and what they reach, grouped by site, with one page of the items in detail.
#[derive(Debug, Clone, Serialize)]
pub struct PersonDetail {
    /// Who, and the totals.
    pub person: PersonReach,
    /// By site, the most reached first.
    pub sites: Vec<SiteReach>,
    /// The items holding permissions that reach them, by site, library and path.
    pub items: Page<ReachedItem>,
}

impl Store {
    /// What person `person_id` (a directory id or an invited address) reaches; `None` when no
    /// live user has that id and no grant invites that address.
    pub async fn person_reach(
        &self,
        tenant: &str,
        person_id: &str,
        req: &PageRequest,
    ) -> Result<Option<PersonDetail>, StoreError> {
        let who: Option<(String, Option<String>, Option<String>, bool)> = sqlx::query_as(
            "SELECT CASE WHEN is_guest THEN 'guest' ELSE 'member' END, display_name,
                    user_principal_name, account_enabled IS NOT FALSE
             FROM msgraph_users WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL
             UNION ALL
             SELECT 'external', NULL, lower($2), true
             WHERE position('@' IN $2) > 0 AND EXISTS (
                 SELECT 1 FROM msgraph_drive_item_permission_grants
                 WHERE tenant_id = $1 AND grantee_type = 'invitation' AND lower(email) = lower($2)
                   AND deleted_at IS NULL)
             LIMIT 1",
        )
        .bind(tenant)
        .bind(person_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some((kind, display_name, user_principal_name, enabled)) = who else {
            return Ok(None);
        };
        // One statement: `reached` is computed once and read three times.
        let (Json(sites), Json(rows), total): (Json<Vec<SiteReach>>, Json<Vec<ReachedItem>>, i64) =
            sqlx::query_as(&format!(
                "{}, live AS (
    SELECT * FROM reached WHERE items > 0
), by_site AS (
    SELECT site_id, min(site_name) AS site_name, count(DISTINCT drive_id) AS libraries,
           coalesce(sum(items) FILTER (WHERE can_read), 0)::bigint AS items_read,
           coalesce(sum(items) FILTER (WHERE can_write), 0)::bigint AS items_write
    FROM live GROUP BY site_id
), shown AS (
    SELECT * FROM live WHERE coalesce(path, name, '') ILIKE $3
), page AS (
    SELECT drive_id, drive_name, site_id, site_name, holder AS item_id, name, path, is_folder,
           items, can_read, can_write, routes
    FROM shown
    ORDER BY site_name NULLS LAST, site_id, drive_name, drive_id, path, holder
    LIMIT $4 OFFSET $5
)
SELECT (SELECT coalesce(json_agg(b ORDER BY b.items_read DESC, b.items_write DESC, b.site_name, b.site_id), '[]')
        FROM by_site b) AS sites,
       (SELECT coalesce(json_agg(p), '[]') FROM page p) AS items,
       (SELECT count(*) FROM shown) AS total",
                reached_holders()
            ))
            .bind(tenant)
            .bind(person_id)
            .bind(req.pattern())
            .bind(req.limit())
            .bind(req.offset())
            .fetch_one(&self.pool)
            .await?;
        let person = PersonReach {
            person_id: if kind == "external" {
                person_id.to_lowercase()
            } else {
                person_id.to_string()
            },
            kind,
            display_name,
            user_principal_name,
            enabled,
            items_read: sites.iter().map(|s| s.items_read).sum(),
            items_write: sites.iter().map(|s| s.items_write).sum(),
            libraries: sites.iter().map(|s| s.libraries).sum(),
            sites: sites.iter().filter(|s| s.site_id.is_some()).count() as i64,
        };
        Ok(Some(PersonDetail {
            person,
            sites,
            items: Page::new(rows, total, req),
        }))
    }
}
