//! Reach of each person: how many items, libraries and sites they can read and write, through
//! every grant that applies (the rules of [`super::audience`], seen from the person's side).
//!
//! Counted without expanding the broad claims into a row per person and item: what "Everyone",
//! "Everyone except external users" and organisation links open is the same for every member
//! (and, for "Everyone", every guest), so it is summed once per kind of person; each person then
//! adds what they reach explicitly (user grants, groups expanded, site groups resolved) beyond it.
//! A disabled account reaches nothing (it cannot sign in); an invited address that has not
//! redeemed its invitation is a person of its own, keyed by its lower-cased address.

use serde::{Deserialize, Serialize};

use super::audience::holder_sets;
use super::{Page, PageRequest};
use crate::{Store, StoreError};

/// Who a person is to the organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonKind {
    /// A member account.
    Member,
    /// A guest account (B2B).
    Guest,
    /// An address invited by a sharing invitation not yet redeemed: no directory account.
    External,
}

words!(
    PersonKind,
    "kind",
    Member = "member",
    Guest = "guest",
    External = "external",
);

/// Which people a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeopleQuery {
    /// Only people of this kind.
    pub kind: Option<PersonKind>,
    /// Only disabled accounts (`Some(true)`), or only enabled ones and invited addresses.
    pub disabled: Option<bool>,
}

/// What one person can reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PersonReach {
    /// Directory id, or the lower-cased address of an invited external person.
    pub person_id: String,
    /// `member`, `guest` or `external`.
    pub kind: String,
    /// How the person is shown.
    pub display_name: Option<String>,
    /// Sign-in name, or the invited address.
    pub user_principal_name: Option<String>,
    /// The account can sign in (always true for an invited address).
    pub enabled: bool,
    /// Items the person can open.
    pub items_read: i64,
    /// Items the person can change (or add to, through upload-only links).
    pub items_write: i64,
    /// Libraries with at least one item they can open or add to.
    pub libraries: i64,
    /// Sites with such a library (OneDrives have no site).
    pub sites: i64,
}

/// Every person's reach, from [`holder_sets`]. `levels` gives what the broad claims need of a
/// holder for each kind of person: a member is covered from class 1, a guest from class 2.
fn people_reach_sql() -> String {
    format!(
        "{}, holder_items AS (
    SELECT i.drive_id, coalesce(i.permission_root_id, i.id) AS holder, count(*) AS n
    FROM msgraph_drive_items i WHERE i.tenant_id = $1 AND i.deleted_at IS NULL
    GROUP BY 1, 2
), holders AS (
    SELECT c.drive_id, c.holder, c.read_class, c.write_class,
           greatest(c.read_class, c.write_class) AS any_class, h.n, d.site_id
    FROM classes c
    JOIN holder_items h ON h.drive_id = c.drive_id AND h.holder = c.holder
    JOIN msgraph_drives d ON d.tenant_id = $1 AND d.id = c.drive_id
), levels AS (
    SELECT false AS is_guest, 1 AS need UNION ALL SELECT true, 2
), broad AS (
    SELECT l.is_guest,
           coalesce(sum(h.n) FILTER (WHERE h.read_class >= l.need), 0)::bigint AS items_read,
           coalesce(sum(h.n) FILTER (WHERE h.write_class >= l.need), 0)::bigint AS items_write,
           count(DISTINCT h.drive_id) AS libraries, count(DISTINCT h.site_id) AS sites
    FROM levels l LEFT JOIN holders h ON h.any_class >= l.need
    GROUP BY l.is_guest
), broad_drives AS (
    SELECT DISTINCT l.is_guest, h.drive_id FROM levels l JOIN holders h ON h.any_class >= l.need
), broad_sites AS (
    SELECT DISTINCT l.is_guest, h.site_id FROM levels l JOIN holders h ON h.any_class >= l.need
    WHERE h.site_id IS NOT NULL
), mine AS (
    SELECT e.user_id, e.is_guest, h.drive_id, h.site_id, h.n,
           e.can_read AND h.read_class < l.need AS extra_read,
           e.can_write AND h.write_class < l.need AS extra_write
    FROM explicit e
    JOIN levels l ON l.is_guest = e.is_guest
    JOIN holders h ON h.drive_id = e.drive_id AND h.holder = e.holder
), mine_counts AS (
    SELECT m.user_id,
           coalesce(sum(m.n) FILTER (WHERE m.extra_read), 0)::bigint AS items_read,
           coalesce(sum(m.n) FILTER (WHERE m.extra_write), 0)::bigint AS items_write,
           count(DISTINCT m.drive_id) FILTER (WHERE bd.drive_id IS NULL) AS libraries,
           count(DISTINCT m.site_id) FILTER (WHERE bs.site_id IS NULL) AS sites
    FROM mine m
    LEFT JOIN broad_drives bd ON bd.is_guest = m.is_guest AND bd.drive_id = m.drive_id
    LEFT JOIN broad_sites bs ON bs.is_guest = m.is_guest AND bs.site_id = m.site_id
    GROUP BY m.user_id
), invited AS (
    SELECT lower(g.email) AS email, g.drive_id, g.holder, bool_or(g.rd) AS rd, bool_or(g.w) AS w
    FROM grants g WHERE g.grantee_type = 'invitation' AND g.email IS NOT NULL
    GROUP BY 1, 2, 3
), reach AS (
    SELECT u.id AS person_id, CASE WHEN u.is_guest THEN 'guest' ELSE 'member' END AS kind,
           u.display_name, u.user_principal_name, u.account_enabled IS NOT FALSE AS enabled,
           CASE WHEN p.id IS NULL THEN 0 ELSE b.items_read + coalesce(mc.items_read, 0) END AS items_read,
           CASE WHEN p.id IS NULL THEN 0 ELSE b.items_write + coalesce(mc.items_write, 0) END AS items_write,
           CASE WHEN p.id IS NULL THEN 0 ELSE b.libraries + coalesce(mc.libraries, 0) END AS libraries,
           CASE WHEN p.id IS NULL THEN 0 ELSE b.sites + coalesce(mc.sites, 0) END AS sites
    FROM msgraph_users u
    LEFT JOIN people p ON p.id = u.id
    JOIN broad b ON b.is_guest = u.is_guest
    LEFT JOIN mine_counts mc ON mc.user_id = u.id
    WHERE u.tenant_id = $1 AND u.deleted_at IS NULL
    UNION ALL
    SELECT v.email, 'external', NULL, v.email, true,
           coalesce(sum(h.n) FILTER (WHERE v.rd), 0)::bigint, coalesce(sum(h.n) FILTER (WHERE v.w), 0)::bigint,
           count(DISTINCT h.drive_id), count(DISTINCT h.site_id)
    FROM invited v JOIN holders h ON h.drive_id = v.drive_id AND h.holder = v.holder
    GROUP BY v.email
)",
        holder_sets()
    )
}

impl Store {
    /// Every person's reach, broadest first (items readable, then writable, then sites), one
    /// page of it; `req.filter` matches the name or sign-in name.
    pub async fn people_reach(
        &self,
        tenant: &str,
        query: &PeopleQuery,
        req: &PageRequest,
    ) -> Result<Page<PersonReach>, StoreError> {
        let sql = format!(
            "{}
SELECT r.*, count(*) OVER () AS total FROM reach r
WHERE (coalesce(r.display_name, '') ILIKE $2 OR coalesce(r.user_principal_name, '') ILIKE $2)
  AND ($3::text IS NULL OR r.kind = $3)
  AND ($4::boolean IS NULL OR r.enabled = NOT $4)
ORDER BY r.items_read DESC, r.items_write DESC, r.sites DESC, r.display_name, r.person_id
LIMIT $5 OFFSET $6",
            people_reach_sql()
        );
        let mut tx = self.whole_set_transaction().await?;
        let rows: Vec<ReachRow> = sqlx::query_as(&sql)
            .bind(tenant)
            .bind(req.pattern())
            .bind(query.kind.map(PersonKind::as_str))
            .bind(query.disabled)
            .bind(req.limit())
            .bind(req.offset())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let total = rows.first().map_or(0, |r| r.total);
        Ok(Page::new(
            rows.into_iter().map(|r| r.reach).collect(),
            total,
            req,
        ))
    }
}

#[derive(sqlx::FromRow)]
struct ReachRow {
    #[sqlx(flatten)]
    reach: PersonReach,
    total: i64,
}
