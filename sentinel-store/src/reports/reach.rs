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

/// What the broad claims need of a holder for each kind of person (`l`): a member is covered
/// from class 1 ("Everyone except external users", organisation links), a guest from class 2
/// ("Everyone").
const LEVELS: &str = "(VALUES (false, 1), (true, 2)) AS l (is_guest, need)";

/// Stores, from the holder sets of [`super::audience::holder_set_statements`], what the broad
/// claims open per library for each kind of person, what each person reaches beyond them per
/// library (of the libraries of `$2` when it is not null: the holder sets hold those only),
/// and then each person's totals, from every library's stored rows; the order of every
/// library on a person's page, where each library's broad rows start in it, and the broad rows
/// summed by site.
fn store_reach_statements() -> [String; 11] {
    [
        "DELETE FROM library_order WHERE tenant_id = $1".to_string(),
        "INSERT INTO library_order (tenant_id, drive_id, position, site_id, site_name)
SELECT $1, d.id, row_number() OVER (ORDER BY s.display_name NULLS LAST, d.site_id, d.name, d.id),
       d.site_id, s.display_name
FROM msgraph_drives d LEFT JOIN msgraph_sites s ON s.tenant_id = $1 AND s.id = d.site_id
WHERE d.tenant_id = $1"
            .to_string(),
        "DELETE FROM broad_drive_reach WHERE tenant_id = $1 AND ($2::text[] IS NULL OR drive_id = ANY($2))"
            .to_string(),
        format!(
            "INSERT INTO broad_drive_reach (tenant_id, is_guest, drive_id, holders, items_read, items_write)
SELECT $1, l.is_guest, h.drive_id, count(*),
       coalesce(sum(h.n) FILTER (WHERE h.read_class >= l.need), 0),
       coalesce(sum(h.n) FILTER (WHERE h.write_class >= l.need), 0)
FROM {LEVELS} JOIN hs_holders h ON h.any_class >= l.need
GROUP BY l.is_guest, h.drive_id"
        ),
        // Every library's start, not only the recomputed ones': a change before it moves it.
        "UPDATE broad_drive_reach b SET position = x.position, rows_before = x.rows_before
FROM (
    SELECT r.is_guest, r.drive_id, o.position,
           sum(r.holders) OVER (PARTITION BY r.is_guest ORDER BY o.position NULLS LAST, r.drive_id)
               - r.holders AS rows_before
    FROM broad_drive_reach r LEFT JOIN library_order o ON o.tenant_id = $1 AND o.drive_id = r.drive_id
    WHERE r.tenant_id = $1
) x
WHERE b.tenant_id = $1 AND b.is_guest = x.is_guest AND b.drive_id = x.drive_id"
            .to_string(),
        "DELETE FROM broad_site_reach WHERE tenant_id = $1".to_string(),
        "INSERT INTO broad_site_reach (tenant_id, is_guest, site_id, site_name, libraries, holders,
                              items_read, items_write)
SELECT $1, b.is_guest, o.site_id, min(o.site_name), count(*), sum(b.holders), sum(b.items_read),
       sum(b.items_write)
FROM broad_drive_reach b JOIN library_order o ON o.tenant_id = $1 AND o.drive_id = b.drive_id
WHERE b.tenant_id = $1
GROUP BY b.is_guest, o.site_id"
            .to_string(),
        "DELETE FROM person_drive_reach WHERE tenant_id = $1 AND ($2::text[] IS NULL OR drive_id = ANY($2))"
            .to_string(),
        format!(
            "INSERT INTO person_drive_reach (tenant_id, person_id, drive_id, holders, items_read, items_write)
SELECT $1, e.user_id, h.drive_id, count(*) FILTER (WHERE h.any_class < l.need),
       coalesce(sum(h.n) FILTER (WHERE e.can_read AND h.read_class < l.need), 0),
       coalesce(sum(h.n) FILTER (WHERE e.can_write AND h.write_class < l.need), 0)
FROM hs_explicit e
JOIN {LEVELS} ON l.is_guest = e.is_guest
JOIN hs_holders h ON h.drive_id = e.drive_id AND h.holder = e.holder
WHERE h.any_class < l.need OR (e.can_read AND h.read_class < l.need)
   OR (e.can_write AND h.write_class < l.need)
GROUP BY e.user_id, h.drive_id
UNION ALL
-- An invited address reaches nothing through the broad claims: everything is its own.
SELECT $1, v.email, h.drive_id, count(*),
       coalesce(sum(h.n) FILTER (WHERE v.rd), 0), coalesce(sum(h.n) FILTER (WHERE v.w), 0)
FROM (
    SELECT lower(email) AS email, drive_id, holder, bool_or(rd) AS rd, bool_or(w) AS w
    FROM hs_grants WHERE grantee_type = 'invitation' AND email IS NOT NULL
    GROUP BY 1, 2, 3
) v JOIN hs_holders h ON h.drive_id = v.drive_id AND h.holder = v.holder
GROUP BY v.email, h.drive_id"
        ),
        "DELETE FROM person_reach WHERE tenant_id = $1".to_string(),
        "INSERT INTO person_reach (tenant_id, person_id, kind, display_name, user_principal_name,
                          enabled, items_read, items_write, libraries, sites)
WITH sited AS (
    SELECT b.is_guest, b.drive_id, b.items_read, b.items_write, d.site_id
    FROM broad_drive_reach b JOIN msgraph_drives d ON d.tenant_id = $1 AND d.id = b.drive_id
    WHERE b.tenant_id = $1
), broad AS (
    SELECT k.is_guest, coalesce(sum(s.items_read), 0)::bigint AS items_read,
           coalesce(sum(s.items_write), 0)::bigint AS items_write,
           count(s.drive_id) AS libraries, count(DISTINCT s.site_id) AS sites
    FROM (VALUES (false), (true)) AS k (is_guest) LEFT JOIN sited s ON s.is_guest = k.is_guest
    GROUP BY k.is_guest
), broad_sites AS (
    SELECT DISTINCT is_guest, site_id FROM sited WHERE site_id IS NOT NULL
), own AS (
    -- Beyond the broad claims: the libraries and sites they add are the ones the claims of
    -- the person's kind do not reach (an invited address has no kind: all are its own).
    SELECT r.person_id, sum(r.items_read)::bigint AS items_read, sum(r.items_write)::bigint AS items_write,
           count(*) FILTER (WHERE b.drive_id IS NULL) AS libraries,
           count(DISTINCT d.site_id) FILTER (WHERE b.drive_id IS NULL AND bs.site_id IS NULL) AS sites
    FROM person_drive_reach r
    LEFT JOIN hs_people p ON p.id = r.person_id
    LEFT JOIN broad_drive_reach b ON b.tenant_id = $1 AND b.is_guest = p.is_guest AND b.drive_id = r.drive_id
    JOIN msgraph_drives d ON d.tenant_id = $1 AND d.id = r.drive_id
    LEFT JOIN broad_sites bs ON bs.is_guest = p.is_guest AND bs.site_id = d.site_id
    WHERE r.tenant_id = $1
    GROUP BY r.person_id
)
SELECT $1, u.id, CASE WHEN u.is_guest THEN 'guest' ELSE 'member' END,
       u.display_name, u.user_principal_name, u.account_enabled IS NOT FALSE,
       CASE WHEN p.id IS NULL THEN 0 ELSE b.items_read + coalesce(o.items_read, 0) END,
       CASE WHEN p.id IS NULL THEN 0 ELSE b.items_write + coalesce(o.items_write, 0) END,
       CASE WHEN p.id IS NULL THEN 0 ELSE b.libraries + coalesce(o.libraries, 0) END,
       CASE WHEN p.id IS NULL THEN 0 ELSE b.sites + coalesce(o.sites, 0) END
FROM msgraph_users u
LEFT JOIN hs_people p ON p.id = u.id
JOIN broad b ON b.is_guest = u.is_guest
LEFT JOIN own o ON o.person_id = u.id
WHERE u.tenant_id = $1 AND u.deleted_at IS NULL
UNION ALL
SELECT $1, o.person_id, 'external', NULL, o.person_id, true, o.items_read, o.items_write,
       o.libraries, o.sites
FROM own o WHERE NOT EXISTS (
    SELECT 1 FROM msgraph_users u WHERE u.tenant_id = $1 AND u.id = o.person_id AND u.deleted_at IS NULL)"
            .to_string(),
    ]
}

impl Store {
    /// Stores every person's reach inside [`Store::refresh_audiences`]'s transaction, from its
    /// holder sets (of `libraries` only, when given).
    pub(super) async fn store_reach(
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        tenant: &str,
        libraries: Option<&[String]>,
    ) -> Result<(), StoreError> {
        for statement in store_reach_statements() {
            sqlx::query(&statement)
                .bind(tenant)
                .bind(libraries)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Every person's reach as the last refresh stored it (each scan's `refresh_mv`), broadest
    /// first (items readable, then writable, then sites), one page of it; `req.filter` matches
    /// the name or sign-in name. Empty until the first refresh.
    pub async fn people_reach(
        &self,
        tenant: &str,
        query: &PeopleQuery,
        req: &PageRequest,
    ) -> Result<Page<PersonReach>, StoreError> {
        // The page by the list's index, and the count apart: counted over the page's rows (a
        // window), every row of the list was read for the 50 shown (48 ms on the large tenant).
        const MATCHING: &str = "FROM person_reach r
             WHERE r.tenant_id = $1
               AND ($2 = '%' OR coalesce(r.display_name, '') ILIKE $2
                    OR coalesce(r.user_principal_name, '') ILIKE $2)
               AND ($3::text IS NULL OR r.kind = $3)
               AND ($4::boolean IS NULL OR r.enabled = NOT $4)";
        let rows: Vec<PersonReach> = sqlx::query_as(&format!(
            "SELECT r.person_id, r.kind, r.display_name, r.user_principal_name, r.enabled,
                    r.items_read, r.items_write, r.libraries, r.sites
             {MATCHING}
             ORDER BY r.items_read DESC, r.items_write DESC, r.sites DESC, r.display_name, r.person_id
             LIMIT $5 OFFSET $6"
        ))
        .bind(tenant)
        .bind(req.pattern())
        .bind(query.kind.map(PersonKind::as_str))
        .bind(query.disabled)
        .bind(req.limit())
        .bind(req.offset())
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) {MATCHING}"))
            .bind(tenant)
            .bind(req.pattern())
            .bind(query.kind.map(PersonKind::as_str))
            .bind(query.disabled)
            .fetch_one(&self.pool)
            .await?;
        Ok(Page::new(rows, total, req))
    }
}
