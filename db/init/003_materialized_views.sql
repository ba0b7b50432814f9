-- The dashboard's summaries, kept per tenant. Each `mv_*` table holds what its view `v_*`
-- (or, for the recursive one, its function) computes, and is refreshed one tenant at a time:
-- the tenant's rows are deleted and inserted again in one transaction, so readers see the old
-- rows until the new ones are in. mv_dependencies says which tables feed which summary, so a
-- tenant's refresh recomputes only the summaries whose sources changed for that tenant
-- (tenant_update_log vs view_refresh_log). They were materialized views until each scan's end
-- refreshed every tenant's: `REFRESH MATERIALIZED VIEW` cannot refresh one tenant.

CREATE TABLE IF NOT EXISTS mv_dependencies (
    mv_name     text NOT NULL,
    table_name  text NOT NULL,
    PRIMARY KEY (mv_name, table_name)
);

-- Kept for the one stamp an earlier version left in it (reports/recompute.rs).
CREATE TABLE IF NOT EXISTS mv_refresh_log (
    mv_name            text        PRIMARY KEY,
    last_refreshed_at  timestamptz NOT NULL
);

-- When each tenant's summary was last refreshed: the start of the oldest transaction open
-- when the refresh began, so a write committed during it is not missed.
CREATE TABLE IF NOT EXISTS view_refresh_log (
    tenant_id          text        NOT NULL,
    mv_name            text        NOT NULL,
    last_refreshed_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, mv_name)
);

-- A summary table whose definition changed carries a comment naming its version, and one
-- without it (a materialized view of an earlier version included) is dropped here and made
-- again below: CREATE ... IF NOT EXISTS would keep it. (to_regclass, not a cast: a missing
-- relation is no error.)
DO $$
DECLARE
    v record;
    kind "char";
BEGIN
    FOR v IN SELECT * FROM (VALUES
        ('mv_group_transitive_users', 'per tenant: 1'),
        ('mv_msgraph_inventory_summary', 'per tenant: 1'),
        ('mv_msgraph_sharing_posture_summary', 'per tenant: 1'),
        ('mv_msgraph_site_posture', 'per tenant: 1'),
        ('mv_drive_summary', 'per tenant: 1'),
        ('mv_latest_job_runs', 'gone: nothing read it')
    ) AS versions (name, version) LOOP
        SELECT relkind INTO kind FROM pg_class WHERE oid = to_regclass(v.name);
        IF kind IS NOT NULL
           AND obj_description(to_regclass(v.name), 'pg_class') IS DISTINCT FROM v.version THEN
            IF kind = 'm' THEN
                EXECUTE format('DROP MATERIALIZED VIEW %I', v.name);
            ELSE
                EXECUTE format('DROP TABLE %I', v.name);
            END IF;
            DELETE FROM view_refresh_log WHERE mv_name = v.name;
        END IF;
    END LOOP;
END $$;
DELETE FROM mv_dependencies WHERE mv_name = 'mv_latest_job_runs';

-- Items with the permissions that apply to them: their own, or their hierarchy root's.
CREATE OR REPLACE VIEW v_item_effective_permissions AS
SELECT i.tenant_id, i.drive_id, i.id AS item_id, p.item_id AS source_item_id, p.permission_id, p.roles,
       p.link_type, p.link_scope, p.expires_at, p.has_password, p.invitation_email
FROM msgraph_drive_items i
JOIN msgraph_drive_item_permissions p
  ON p.tenant_id = i.tenant_id AND p.drive_id = i.drive_id
 AND p.item_id = COALESCE(i.permission_root_id, i.id) AND p.deleted_at IS NULL
WHERE i.deleted_at IS NULL;

-- Every user a group of tenant `t` reaches, through nested groups (UNION stops on cycles). A
-- function, not a view: a tenant's condition does not reach inside a recursive query.
CREATE OR REPLACE FUNCTION group_transitive_users_of(t text)
RETURNS TABLE (tenant_id text, group_id text, user_id text)
LANGUAGE sql STABLE AS $fn$
WITH RECURSIVE reach (group_id, member_id, member_type) AS (
    SELECT m.group_id, m.member_id, m.member_type
    FROM msgraph_group_members m WHERE m.tenant_id = t AND m.deleted_at IS NULL
  UNION
    SELECT r.group_id, m.member_id, m.member_type
    FROM reach r
    JOIN msgraph_group_members m
      ON m.tenant_id = t AND m.group_id = r.member_id AND m.deleted_at IS NULL
    WHERE r.member_type = 'group'
)
SELECT DISTINCT t, r.group_id, r.member_id
FROM reach r WHERE r.member_type = 'user'
$fn$;
CREATE TABLE IF NOT EXISTS mv_group_transitive_users (
    tenant_id  text NOT NULL,
    group_id   text NOT NULL,
    user_id    text NOT NULL
);
COMMENT ON TABLE mv_group_transitive_users IS 'per tenant: 1';
CREATE UNIQUE INDEX IF NOT EXISTS mv_group_transitive_users_key ON mv_group_transitive_users (tenant_id, group_id, user_id);

-- What each tenant holds: one pass over each table (it read the items table five times, 5 s
-- of every scan's end on a tenant of a million items).
DROP VIEW IF EXISTS v_msgraph_inventory_summary;
CREATE VIEW v_msgraph_inventory_summary AS
WITH tenants AS (
    SELECT tenant_id FROM msgraph_users UNION SELECT tenant_id FROM msgraph_sites
    UNION SELECT tenant_id FROM msgraph_drives
), users AS (
    SELECT tenant_id,
           count(*) FILTER (WHERE deleted_at IS NULL) AS users,
           count(*) FILTER (WHERE deleted_at IS NULL AND is_guest) AS guests,
           count(*) FILTER (WHERE deleted_at IS NULL AND account_enabled IS FALSE) AS disabled_users,
           count(*) FILTER (WHERE deleted_at IS NOT NULL) AS deleted_users
    FROM msgraph_users GROUP BY tenant_id
), groups AS (
    SELECT tenant_id,
           count(*) FILTER (WHERE deleted_at IS NULL) AS groups,
           count(*) FILTER (WHERE deleted_at IS NOT NULL) AS deleted_groups
    FROM msgraph_groups GROUP BY tenant_id
), memberships AS (
    SELECT tenant_id, count(*) AS memberships
    FROM msgraph_group_members WHERE deleted_at IS NULL GROUP BY tenant_id
), sites AS (
    SELECT tenant_id,
           count(*) FILTER (WHERE deleted_at IS NULL) AS sites,
           count(*) FILTER (WHERE deleted_at IS NOT NULL) AS deleted_sites
    FROM msgraph_sites GROUP BY tenant_id
), drives AS (
    SELECT tenant_id,
           count(*) FILTER (WHERE deleted_at IS NULL) AS drives,
           count(*) FILTER (WHERE deleted_at IS NOT NULL) AS deleted_drives
    FROM msgraph_drives GROUP BY tenant_id
), items AS (
    SELECT tenant_id,
           count(*) FILTER (WHERE deleted_at IS NULL) AS items,
           count(*) FILTER (WHERE deleted_at IS NULL AND NOT is_folder) AS files,
           count(*) FILTER (WHERE deleted_at IS NULL AND is_folder) AS folders,
           sum(size) FILTER (WHERE deleted_at IS NULL AND NOT is_folder) AS bytes,
           count(*) FILTER (WHERE deleted_at IS NOT NULL) AS deleted_items
    FROM msgraph_drive_items GROUP BY tenant_id
)
SELECT t.tenant_id,
       coalesce(u.users, 0) AS users,
       coalesce(u.guests, 0) AS guests,
       coalesce(u.disabled_users, 0) AS disabled_users,
       coalesce(g.groups, 0) AS groups,
       coalesce(m.memberships, 0) AS memberships,
       coalesce(s.sites, 0) AS sites,
       coalesce(d.drives, 0) AS drives,
       coalesce(i.items, 0) AS items,
       coalesce(i.files, 0) AS files,
       coalesce(i.folders, 0) AS folders,
       coalesce(i.bytes, 0) AS bytes,
       coalesce(u.deleted_users, 0) AS deleted_users,
       coalesce(g.deleted_groups, 0) AS deleted_groups,
       coalesce(s.deleted_sites, 0) AS deleted_sites,
       coalesce(d.deleted_drives, 0) AS deleted_drives,
       coalesce(i.deleted_items, 0) AS deleted_items,
       now() AS computed_at
FROM tenants t
LEFT JOIN users u ON u.tenant_id = t.tenant_id
LEFT JOIN groups g ON g.tenant_id = t.tenant_id
LEFT JOIN memberships m ON m.tenant_id = t.tenant_id
LEFT JOIN sites s ON s.tenant_id = t.tenant_id
LEFT JOIN drives d ON d.tenant_id = t.tenant_id
LEFT JOIN items i ON i.tenant_id = t.tenant_id;
CREATE TABLE IF NOT EXISTS mv_msgraph_inventory_summary AS SELECT * FROM v_msgraph_inventory_summary WITH NO DATA;
COMMENT ON TABLE mv_msgraph_inventory_summary IS 'per tenant: 1';
CREATE UNIQUE INDEX IF NOT EXISTS mv_msgraph_inventory_summary_key ON mv_msgraph_inventory_summary (tenant_id);

-- Sharing posture: links are counted once each (by permission id), grants per grantee; one
-- pass over each table (it counted each kind of link and grant in a pass of its own).
DROP VIEW IF EXISTS v_msgraph_sharing_posture_summary;
CREATE VIEW v_msgraph_sharing_posture_summary AS
WITH tenants AS (
    SELECT tenant_id FROM msgraph_drives UNION SELECT tenant_id FROM msgraph_users
), links AS (
    SELECT tenant_id,
           count(*) FILTER (WHERE link_scope = 'anonymous') AS anonymous_links,
           count(*) FILTER (WHERE link_scope = 'organization') AS organization_links,
           count(*) FILTER (WHERE link_scope = 'users') AS users_links,
           count(*) FILTER (WHERE link_type = 'edit') AS edit_links,
           count(*) FILTER (WHERE expires_at IS NULL) AS links_without_expiry
    FROM (SELECT DISTINCT tenant_id, drive_id, permission_id, link_scope, link_type, expires_at
          FROM msgraph_drive_item_permissions
          WHERE deleted_at IS NULL AND link_scope IS NOT NULL) l
    GROUP BY tenant_id
), grants AS (
    SELECT tenant_id,
           count(*) FILTER (WHERE is_external) AS external_grants,
           count(*) FILTER (WHERE is_everyone) AS everyone_grants,
           count(*) FILTER (WHERE is_everyone_except_external) AS everyone_except_external_grants
    FROM (SELECT DISTINCT tenant_id, drive_id, permission_id, grantee_key, is_external, is_everyone, is_everyone_except_external
          FROM msgraph_drive_item_permission_grants
          WHERE deleted_at IS NULL AND grantee_type <> 'link') g
    GROUP BY tenant_id
), unique_items AS (
    SELECT tenant_id, count(*) AS unique_permission_items
    FROM msgraph_drive_items
    WHERE deleted_at IS NULL AND NOT is_root AND permission_root_id = id AND is_permission_root
    GROUP BY tenant_id
)
SELECT t.tenant_id,
       coalesce(l.anonymous_links, 0) AS anonymous_links,
       coalesce(l.organization_links, 0) AS organization_links,
       coalesce(l.users_links, 0) AS users_links,
       coalesce(l.edit_links, 0) AS edit_links,
       coalesce(l.links_without_expiry, 0) AS links_without_expiry,
       coalesce(g.external_grants, 0) AS external_grants,
       coalesce(g.everyone_grants, 0) AS everyone_grants,
       coalesce(g.everyone_except_external_grants, 0) AS everyone_except_external_grants,
       coalesce(u.unique_permission_items, 0) AS unique_permission_items,
       now() AS computed_at
FROM tenants t
LEFT JOIN links l ON l.tenant_id = t.tenant_id
LEFT JOIN grants g ON g.tenant_id = t.tenant_id
LEFT JOIN unique_items u ON u.tenant_id = t.tenant_id;
CREATE TABLE IF NOT EXISTS mv_msgraph_sharing_posture_summary AS SELECT * FROM v_msgraph_sharing_posture_summary WITH NO DATA;
COMMENT ON TABLE mv_msgraph_sharing_posture_summary IS 'per tenant: 1';
CREATE UNIQUE INDEX IF NOT EXISTS mv_msgraph_sharing_posture_summary_key ON mv_msgraph_sharing_posture_summary (tenant_id);

-- Exposure per site: distinct links and broad grants on the items of its libraries, counted
-- per drive first (a grant inherited by a thousand items is one grant).
DROP VIEW IF EXISTS v_msgraph_site_posture;
CREATE VIEW v_msgraph_site_posture AS
WITH drive_links AS (
    SELECT tenant_id, drive_id,
           count(DISTINCT permission_id) FILTER (WHERE link_scope = 'anonymous') AS anonymous_links,
           count(DISTINCT permission_id) FILTER (WHERE link_scope = 'organization') AS organization_links,
           count(DISTINCT permission_id) FILTER (WHERE link_scope = 'users') AS users_links
    FROM msgraph_drive_item_permissions
    WHERE deleted_at IS NULL AND link_scope IS NOT NULL
    GROUP BY tenant_id, drive_id
), drive_grants AS (
    SELECT tenant_id, drive_id,
           count(*) FILTER (WHERE is_external) AS external_grants,
           count(*) FILTER (WHERE is_everyone OR is_everyone_except_external) AS everyone_grants
    FROM (SELECT DISTINCT tenant_id, drive_id, permission_id, grantee_key, is_external, is_everyone, is_everyone_except_external
          FROM msgraph_drive_item_permission_grants
          WHERE deleted_at IS NULL AND grantee_type <> 'link') g
    GROUP BY tenant_id, drive_id
), per_site AS (
    SELECT d.tenant_id, d.site_id, count(*) AS drives,
           coalesce(sum(l.anonymous_links), 0) AS anonymous_links,
           coalesce(sum(l.organization_links), 0) AS organization_links,
           coalesce(sum(l.users_links), 0) AS users_links,
           coalesce(sum(g.external_grants), 0) AS external_grants,
           coalesce(sum(g.everyone_grants), 0) AS everyone_grants
    FROM msgraph_drives d
    LEFT JOIN drive_links l ON l.tenant_id = d.tenant_id AND l.drive_id = d.id
    LEFT JOIN drive_grants g ON g.tenant_id = d.tenant_id AND g.drive_id = d.id
    WHERE d.deleted_at IS NULL AND d.site_id IS NOT NULL
    GROUP BY d.tenant_id, d.site_id
)
SELECT s.tenant_id, s.id AS site_id, s.display_name, s.web_url, s.deleted_at IS NOT NULL AS deleted,
       coalesce(p.drives, 0) AS drives,
       coalesce(p.anonymous_links, 0) AS anonymous_links,
       coalesce(p.organization_links, 0) AS organization_links,
       coalesce(p.users_links, 0) AS users_links,
       coalesce(p.external_grants, 0) AS external_grants,
       coalesce(p.everyone_grants, 0) AS everyone_grants,
       coalesce(3 * p.anonymous_links + 2 * p.everyone_grants + 2 * p.external_grants + p.organization_links, 0) AS exposure_score
FROM msgraph_sites s
LEFT JOIN per_site p ON p.tenant_id = s.tenant_id AND p.site_id = s.id;
CREATE TABLE IF NOT EXISTS mv_msgraph_site_posture AS SELECT * FROM v_msgraph_site_posture WITH NO DATA;
COMMENT ON TABLE mv_msgraph_site_posture IS 'per tenant: 1';
CREATE UNIQUE INDEX IF NOT EXISTS mv_msgraph_site_posture_key ON mv_msgraph_site_posture (tenant_id, site_id);

-- Per drive: live items, items with permissions of their own, distinct sharing links (the
-- drill-down's headline figures; counting them on every page view scanned the whole drive).
DROP VIEW IF EXISTS v_drive_summary;
CREATE VIEW v_drive_summary AS
SELECT d.tenant_id, d.id AS drive_id,
       coalesce(i.items, 0) AS items,
       coalesce(i.unique_permission_items, 0) AS unique_permission_items,
       coalesce(l.links, 0) AS links
FROM msgraph_drives d
LEFT JOIN (
    SELECT tenant_id, drive_id, count(*) AS items,
           count(*) FILTER (WHERE is_permission_root AND permission_root_id = id AND NOT is_root) AS unique_permission_items
    FROM msgraph_drive_items WHERE deleted_at IS NULL
    GROUP BY tenant_id, drive_id
) i ON i.tenant_id = d.tenant_id AND i.drive_id = d.id
LEFT JOIN (
    SELECT tenant_id, drive_id, count(DISTINCT permission_id) AS links
    FROM msgraph_drive_item_permissions WHERE deleted_at IS NULL AND link_scope IS NOT NULL
    GROUP BY tenant_id, drive_id
) l ON l.tenant_id = d.tenant_id AND l.drive_id = d.id;
CREATE TABLE IF NOT EXISTS mv_drive_summary AS SELECT * FROM v_drive_summary WITH NO DATA;
COMMENT ON TABLE mv_drive_summary IS 'per tenant: 1';
CREATE UNIQUE INDEX IF NOT EXISTS mv_drive_summary_key ON mv_drive_summary (tenant_id, drive_id);

INSERT INTO mv_dependencies (mv_name, table_name) VALUES
    ('mv_group_transitive_users', 'msgraph_group_members'),
    ('mv_msgraph_inventory_summary', 'msgraph_users'),
    ('mv_msgraph_inventory_summary', 'msgraph_groups'),
    ('mv_msgraph_inventory_summary', 'msgraph_group_members'),
    ('mv_msgraph_inventory_summary', 'msgraph_sites'),
    ('mv_msgraph_inventory_summary', 'msgraph_drives'),
    ('mv_msgraph_inventory_summary', 'msgraph_drive_items'),
    ('mv_msgraph_sharing_posture_summary', 'msgraph_drive_item_permissions'),
    ('mv_msgraph_sharing_posture_summary', 'msgraph_drive_item_permission_grants'),
    ('mv_msgraph_sharing_posture_summary', 'msgraph_drive_items'),
    ('mv_msgraph_sharing_posture_summary', 'msgraph_users'),
    ('mv_msgraph_site_posture', 'msgraph_sites'),
    ('mv_msgraph_site_posture', 'msgraph_drives'),
    ('mv_msgraph_site_posture', 'msgraph_drive_item_permissions'),
    ('mv_msgraph_site_posture', 'msgraph_drive_item_permission_grants'),
    ('mv_drive_summary', 'msgraph_drives'),
    ('mv_drive_summary', 'msgraph_drive_items'),
    ('mv_drive_summary', 'msgraph_drive_item_permissions')
ON CONFLICT DO NOTHING;
