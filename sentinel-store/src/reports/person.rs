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

/// Every holder person `$2` reaches (`reached`: drive, holder, can_read, can_write, routes,
/// place, items), with the rules of [`super::audience`]. `$2` is a directory id, or an invited
/// address. With `Scope::Libraries`, only in the libraries of `$3` (a `text[]`).
fn reached_holders(scope: Scope) -> String {
    let only = |column: &str| match scope {
        Scope::All => String::new(),
        Scope::Libraries => format!(" AND {column} = ANY($3)"),
    };
    let (grant, link, drive) = (only("g.drive_id"), only("p.drive_id"), only("d.id"));
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
    JOIN msgraph_drives d ON d.tenant_id = $1 AND d.site_id = ds.id AND d.deleted_at IS NULL{drive}
    WHERE gs.tenant_id = $1
      AND gs.group_id IN (SELECT group_id FROM my_groups UNION SELECT group_id FROM my_owned)
), granted AS (
    SELECT g.drive_id, g.item_id, g.permission_id, 'direct' AS route
    FROM me JOIN msgraph_drive_item_permission_grants g ON g.tenant_id = $1 AND g.grantee_id = me.id
         AND g.grantee_type = 'user' AND g.deleted_at IS NULL{grant}
    UNION ALL
    SELECT g.drive_id, g.item_id, g.permission_id, 'invitation (not yet accepted)'
    FROM msgraph_drive_item_permission_grants g
    WHERE g.tenant_id = $1 AND g.grantee_type = 'invitation' AND lower(g.email) = lower($2)
      AND g.deleted_at IS NULL{grant}
    UNION ALL
    SELECT g.drive_id, g.item_id, g.permission_id, 'group: ' || mg.path
    FROM my_groups mg JOIN msgraph_drive_item_permission_grants g ON g.tenant_id = $1
         AND g.grantee_id = mg.group_id AND g.grantee_type = 'group' AND g.deleted_at IS NULL{grant}
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
         AND (g.is_everyone OR (g.is_everyone_except_external AND NOT me.is_guest)){grant}
    UNION ALL
    SELECT p.drive_id, p.item_id, p.permission_id, 'organisation link'
    FROM me JOIN msgraph_drive_item_permissions p ON p.tenant_id = $1 AND p.deleted_at IS NULL
         AND p.link_scope = 'organization' AND NOT me.is_guest{link}
), mine AS (
    SELECT r.drive_id, r.item_id AS holder, bool_or(p.rd) AS can_read, bool_or(p.w) AS can_write,
           array_agg(DISTINCT p.route ORDER BY p.route) AS routes
    FROM granted r
    JOIN LATERAL (
        SELECT r.route || CASE WHEN p.link_scope = 'users' AND r.route = 'direct'
                               THEN ' (specific-people link)' ELSE '' END AS route,
               {PERMISSION_FLAGS}
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
    /// By site, the most reached first: the first [`SITES_LISTED`].
    pub sites: Vec<SiteReach>,
    /// Sites with something the person reaches beyond those listed (each reaching no more
    /// than the last listed); their items are in `items` all the same.
    pub more_sites: i64,
    /// The items holding permissions that reach them, by site, library and path.
    pub items: Page<ReachedItem>,
}

/// Which libraries [`reached_holders`] looks in.
#[derive(Debug, Clone, Copy)]
enum Scope {
    /// Every library.
    All,
    /// The libraries of `$3`.
    Libraries,
}

/// The order of a person's sites: the most reached first.
const SITE_ORDER: &str = "b.items_read DESC, b.items_write DESC, b.site_name, b.site_id";

/// How many of a person's sites are listed. A member of the large tenant reaches 1,077 sites
/// through "Everyone except external users": a table of all of them is read by no one, and
/// building it cost more than the rest of the page.
pub const SITES_LISTED: usize = 100;

/// A person's sites and page, as the last refresh stored them: the broad rows of their kind
/// (`$3`: they count; `$4`: a guest) summed by site, plus their own libraries'; the total rows
/// of their list; and the libraries holding its rows `$5..$5 + $6`, in `library_order`, each
/// with the number of its first row. A library's rows start after the broad rows of the
/// libraries before it (stored) and the person's own rows there (summed here), so only the
/// person's own libraries and the page's are read, not every library the claims reach.
fn stored_page() -> String {
    format!(
        "
WITH own AS (
    SELECT r.drive_id, r.holders, r.items_read, r.items_write, o.position, o.site_id, o.site_name,
           b.drive_id IS NOT NULL AS broad
    FROM person_drive_reach r
    JOIN library_order o ON o.tenant_id = $1 AND o.drive_id = r.drive_id
    LEFT JOIN broad_drive_reach b ON $3 AND b.tenant_id = $1 AND b.is_guest = $4 AND b.drive_id = r.drive_id
    WHERE r.tenant_id = $1 AND r.person_id = $2
), own_sites AS (
    SELECT site_id, min(site_name) AS site_name, count(*) FILTER (WHERE NOT broad) AS libraries,
           sum(holders) AS holders, sum(items_read) AS items_read, sum(items_write) AS items_write
    FROM own GROUP BY site_id
), broad_sites AS (
    SELECT site_id, site_name, libraries, holders, items_read, items_write FROM broad_site_reach
    WHERE $3 AND tenant_id = $1 AND is_guest = $4
), by_site AS (
    SELECT coalesce(b.site_id, o.site_id) AS site_id, coalesce(b.site_name, o.site_name) AS site_name,
           (coalesce(b.libraries, 0) + coalesce(o.libraries, 0))::bigint AS libraries,
           (coalesce(b.holders, 0) + coalesce(o.holders, 0))::bigint AS holders,
           (coalesce(b.items_read, 0) + coalesce(o.items_read, 0))::bigint AS items_read,
           (coalesce(b.items_write, 0) + coalesce(o.items_write, 0))::bigint AS items_write
    FROM broad_sites b FULL JOIN own_sites o ON coalesce(b.site_id, '') = coalesce(o.site_id, '')
), candidates AS (
    -- A library starts at or after its broad rows before (and no earlier page can need a later
    -- library), so the libraries whose broad rows start before the page's end are enough.
    SELECT b.drive_id, b.position, b.holders + coalesce(o.holders, 0) AS holders, b.rows_before
    FROM broad_drive_reach b LEFT JOIN own o ON o.drive_id = b.drive_id
    WHERE $3 AND b.tenant_id = $1 AND b.is_guest = $4 AND b.position IS NOT NULL
      AND b.rows_before < $5 + $6
    UNION ALL
    SELECT o.drive_id, o.position, o.holders,
           coalesce((SELECT b.rows_before + b.holders FROM broad_drive_reach b
                     WHERE $3 AND b.tenant_id = $1 AND b.is_guest = $4 AND b.position < o.position
                     ORDER BY b.position DESC LIMIT 1), 0)
    FROM own o WHERE NOT o.broad
), placed AS (
    SELECT c.drive_id, c.position, c.holders,
           c.rows_before + coalesce((SELECT sum(o.holders) FROM own o WHERE o.position < c.position), 0)
               AS first_row
    FROM candidates c
)
SELECT (SELECT coalesce(json_agg(b ORDER BY {SITE_ORDER}), '[]')
        FROM (SELECT * FROM by_site b ORDER BY {SITE_ORDER} LIMIT {SITES_LISTED}) b) AS sites,
       (SELECT count(*) FROM by_site) AS site_count,
       (SELECT coalesce(sum(holders), 0) FROM by_site)::bigint AS total,
       (SELECT coalesce(json_agg(json_build_array(p.drive_id, p.first_row) ORDER BY p.position), '[]')
        FROM placed p
        WHERE p.holders > 0 AND p.first_row < $5 + $6 AND p.first_row + p.holders > $5) AS page"
    )
}

/// The sites listed, how many there are, the total rows, and the page's libraries (id, number
/// of its first row) of [`stored_page`].
type StoredPage = (Json<Vec<SiteReach>>, i64, i64, Json<Vec<(String, i64)>>);

impl Store {
    /// What person `person_id` (a directory id or an invited address) reaches; `None` when no
    /// live user has that id and no grant invites that address.
    ///
    /// The totals and the sites are the last refresh's (as on `/people`); the rows are computed
    /// now, from the grants that concern this person, in the libraries the page spans only (cut
    /// by the stored counts). Filtered by path, or for a person the last refresh did not store,
    /// every row is computed, and the sites with them.
    pub async fn person_reach(
        &self,
        tenant: &str,
        person_id: &str,
        req: &PageRequest,
    ) -> Result<Option<PersonDetail>, StoreError> {
        let Some((mut person, stored)) = self.person_known(tenant, person_id).await? else {
            return Ok(None);
        };
        let filtered = req.pattern() != "%";
        if stored && !filtered {
            let (Json(sites), site_count, total, Json(libraries)): StoredPage =
                sqlx::query_as(&stored_page())
                    .bind(tenant)
                    .bind(&person.person_id)
                    .bind(person.enabled && person.kind != "external")
                    .bind(person.kind == "guest")
                    .bind(req.offset())
                    .bind(req.limit())
                    .fetch_one(&self.pool)
                    .await?;
            // The page's first row is this far into its first library.
            let offset = libraries
                .first()
                .map_or(0, |(_, first_row)| (req.offset() - first_row).max(0));
            let drives: Vec<String> = libraries.into_iter().map(|(drive, _)| drive).collect();
            let (Json(rows),): (Json<Vec<ReachedItem>>,) = sqlx::query_as(&format!(
                "{}, page AS (
    SELECT r.drive_id, r.drive_name, r.site_id, r.site_name, r.holder AS item_id, r.name, r.path,
           r.is_folder, r.items, r.can_read, r.can_write, r.routes
    FROM reached r JOIN library_order o ON o.tenant_id = $1 AND o.drive_id = r.drive_id
    WHERE r.items > 0
    ORDER BY o.position, r.path, r.holder
    LIMIT $4 OFFSET $5
)
SELECT coalesce(json_agg(p), '[]') FROM page p",
                reached_holders(Scope::Libraries)
            ))
            .bind(tenant)
            .bind(&person.person_id)
            .bind(&drives)
            .bind(req.limit())
            .bind(offset)
            .fetch_one(&self.pool)
            .await?;
            return Ok(Some(PersonDetail {
                person,
                more_sites: site_count - sites.len() as i64,
                sites,
                items: Page::new(rows, total, req),
            }));
        }
        // One statement: `reached` is computed once and read three times.
        let (Json(mut sites), Json(rows), total): (
            Json<Vec<SiteReach>>,
            Json<Vec<ReachedItem>>,
            i64,
        ) = sqlx::query_as(&format!(
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
SELECT (SELECT coalesce(json_agg(b ORDER BY {SITE_ORDER}), '[]') FROM by_site b) AS sites,
       (SELECT coalesce(json_agg(p), '[]') FROM page p) AS items,
       (SELECT count(*) FROM shown) AS total",
            reached_holders(Scope::All)
        ))
        .bind(tenant)
        .bind(&person.person_id)
        .bind(req.pattern())
        .bind(req.limit())
        .bind(req.offset())
        .fetch_one(&self.pool)
        .await?;
        if !stored {
            person.items_read = sites.iter().map(|s| s.items_read).sum();
            person.items_write = sites.iter().map(|s| s.items_write).sum();
            person.libraries = sites.iter().map(|s| s.libraries).sum();
            person.sites = sites.iter().filter(|s| s.site_id.is_some()).count() as i64;
        }
        let more_sites = sites.len().saturating_sub(SITES_LISTED) as i64;
        sites.truncate(SITES_LISTED);
        Ok(Some(PersonDetail {
            person,
            more_sites,
            sites,
            items: Page::new(rows, total, req),
        }))
    }

    /// Who `person_id` is (a live user, or an address a live invitation names), with the
    /// totals the last refresh stored and `true`, or zero totals and `false` when it stored
    /// none for them; `None` for no one.
    async fn person_known(
        &self,
        tenant: &str,
        person_id: &str,
    ) -> Result<Option<(PersonReach, bool)>, StoreError> {
        let row: Option<KnownPerson> = sqlx::query_as(
            "WITH who AS (
                 SELECT id AS person_id, CASE WHEN is_guest THEN 'guest' ELSE 'member' END AS kind,
                        display_name, user_principal_name, account_enabled IS NOT FALSE AS enabled
                 FROM msgraph_users WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL
                 UNION ALL
                 SELECT lower($2), 'external', NULL, lower($2), true
                 WHERE position('@' IN $2) > 0 AND EXISTS (
                     SELECT 1 FROM msgraph_drive_item_permission_grants
                     WHERE tenant_id = $1 AND grantee_type = 'invitation' AND lower(email) = lower($2)
                       AND deleted_at IS NULL)
                 LIMIT 1
             )
             SELECT w.*, r.person_id IS NOT NULL AS stored, coalesce(r.items_read, 0) AS items_read,
                    coalesce(r.items_write, 0) AS items_write, coalesce(r.libraries, 0) AS libraries,
                    coalesce(r.sites, 0) AS sites
             FROM who w LEFT JOIN person_reach r ON r.tenant_id = $1 AND r.person_id = w.person_id",
        )
        .bind(tenant)
        .bind(person_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (r.person, r.stored)))
    }
}

#[derive(sqlx::FromRow)]
struct KnownPerson {
    #[sqlx(flatten)]
    person: PersonReach,
    stored: bool,
}
