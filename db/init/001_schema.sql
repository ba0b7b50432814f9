-- Princeton Sentinel: typed copies of Microsoft Graph objects.
-- Idempotent: applied by Postgres' initdb (docker-compose) and by the worker at start-up.
-- Every Graph row: tenant_id, Graph id, synced_at, deleted_at (soft delete), raw_json (latest).

CREATE TABLE IF NOT EXISTS msgraph_users (
    tenant_id            text        NOT NULL,
    id                   text        NOT NULL,
    display_name         text,
    user_principal_name  text,
    mail                 text,
    user_type            text,
    is_guest             boolean     NOT NULL DEFAULT false,
    account_enabled      boolean,
    department           text,
    has_license          boolean,
    created_at           timestamptz,
    raw_json             jsonb       NOT NULL,
    synced_at            timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS msgraph_users_upn ON msgraph_users (tenant_id, lower(user_principal_name));
-- An item's audience lists the first people by name that a broad grant reaches (item page).
CREATE INDEX IF NOT EXISTS msgraph_users_by_name ON msgraph_users (tenant_id, display_name, id);

CREATE TABLE IF NOT EXISTS msgraph_groups (
    tenant_id         text        NOT NULL,
    id                text        NOT NULL,
    display_name      text,
    mail              text,
    mail_nickname     text,
    is_unified        boolean     NOT NULL DEFAULT false,
    security_enabled  boolean,
    visibility        text,
    created_at        timestamptz,
    raw_json          jsonb       NOT NULL,
    synced_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    PRIMARY KEY (tenant_id, id)
);

-- Direct members of groups (users or groups); transitive membership is mv_group_transitive_users.
CREATE TABLE IF NOT EXISTS msgraph_group_members (
    tenant_id    text        NOT NULL,
    group_id     text        NOT NULL,
    member_id    text        NOT NULL,
    member_type  text        NOT NULL CHECK (member_type IN ('user', 'group', 'other')),
    synced_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz,
    PRIMARY KEY (tenant_id, group_id, member_id)
);
CREATE INDEX IF NOT EXISTS msgraph_group_members_member ON msgraph_group_members (tenant_id, member_id);

-- Owners of groups (`owners@delta`), kept exactly as members are (the columns say member for
-- both): a Microsoft 365 group's owners are its team site's Owners.
CREATE TABLE IF NOT EXISTS msgraph_group_owners (LIKE msgraph_group_members INCLUDING ALL);

CREATE TABLE IF NOT EXISTS msgraph_sites (
    tenant_id     text        NOT NULL,
    id            text        NOT NULL,
    name          text,
    display_name  text,
    web_url       text,
    created_at    timestamptz,
    raw_json      jsonb       NOT NULL,
    synced_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz,
    PRIMARY KEY (tenant_id, id)
);
-- A site Graph refused to read (403, e.g. locked with NoAccess): scans skip it and keep its
-- libraries as last read, until a listing of its libraries succeeds again.
ALTER TABLE msgraph_sites ADD COLUMN IF NOT EXISTS skipped_reason text;
ALTER TABLE msgraph_sites ADD COLUMN IF NOT EXISTS skipped_since timestamptz;
-- A subsite's parent site (NULL for a site collection): Graph lists subsites only under their
-- parent (`GET /sites/{id}/sites`), so they are reconciled by that listing, not by sites/delta.
ALTER TABLE msgraph_sites ADD COLUMN IF NOT EXISTS parent_site_id text;
CREATE INDEX IF NOT EXISTS msgraph_sites_parent ON msgraph_sites (tenant_id, parent_site_id)
    WHERE parent_site_id IS NOT NULL;
-- The Microsoft 365 group whose team site this is (`GET /groups/{id}/sites/root`): its Owners
-- and Members site groups are the group's owners and members.
ALTER TABLE msgraph_sites ADD COLUMN IF NOT EXISTS group_id text;
-- The group-connected site collection of a library's site (`host,collection,web`: a subsite
-- keeps its collection's GUID), looked up for one item's audience.
CREATE INDEX IF NOT EXISTS msgraph_sites_collection ON msgraph_sites (tenant_id, split_part(id, ',', 2))
    WHERE group_id IS NOT NULL;
-- When a scan last asked Graph for this group's team site (one request each, so not every scan).
ALTER TABLE msgraph_groups ADD COLUMN IF NOT EXISTS site_checked_at timestamptz;

-- Document libraries (site_id set) and OneDrives (owner_user_id set, site_id NULL).
CREATE TABLE IF NOT EXISTS msgraph_drives (
    tenant_id      text        NOT NULL,
    id             text        NOT NULL,
    site_id        text,
    owner_user_id  text,
    name           text,
    drive_type     text,
    web_url        text,
    quota_total    bigint,
    quota_used     bigint,
    created_at     timestamptz,
    raw_json       jsonb       NOT NULL,
    synced_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz,
    PRIMARY KEY (tenant_id, id)
);
-- A drive Graph refused to read (403: a OneDrive locked with NoAccess): scans skip it and keep
-- it as last read, until it is read again.
ALTER TABLE msgraph_drives ADD COLUMN IF NOT EXISTS skipped_reason text;
ALTER TABLE msgraph_drives ADD COLUMN IF NOT EXISTS skipped_since timestamptz;
CREATE INDEX IF NOT EXISTS msgraph_drives_site ON msgraph_drives (tenant_id, site_id);

CREATE TABLE IF NOT EXISTS msgraph_drive_items (
    tenant_id                   text        NOT NULL,
    drive_id                    text        NOT NULL,
    id                          text        NOT NULL,
    parent_id                   text,
    name                        text,
    -- Derived from parent ids (Graph's delta never returns paths).
    path                        text,
    is_folder                   boolean     NOT NULL DEFAULT false,
    is_root                     boolean     NOT NULL DEFAULT false,
    size                        bigint,
    mime_type                   text,
    quick_xor_hash              text,
    sha1_hash                   text,
    created_at                  timestamptz,
    modified_at                 timestamptz,
    created_by_id               text,
    modified_by_id              text,
    -- The `shared` facet's scope, when the item carries one.
    shared_scope                text,
    -- Hierarchical mode: the item has permissions of its own (the drive root always does).
    is_permission_root          boolean     NOT NULL DEFAULT false,
    -- Root of the permission hierarchy the item belongs to (itself when it has its own permissions;
    -- in exhaustive mode every item is its own root).
    permission_root_id          text,
    permissions_last_synced_at  timestamptz,
    -- When delta last reported a change that may have changed the item's permissions.
    sharing_changed_at          timestamptz NOT NULL DEFAULT now(),
    raw_json                    jsonb       NOT NULL,
    synced_at                   timestamptz NOT NULL DEFAULT now(),
    deleted_at                  timestamptz,
    PRIMARY KEY (tenant_id, drive_id, id)
);
CREATE INDEX IF NOT EXISTS msgraph_drive_items_parent ON msgraph_drive_items (tenant_id, drive_id, parent_id);
CREATE INDEX IF NOT EXISTS msgraph_drive_items_perm_root ON msgraph_drive_items (tenant_id, drive_id, permission_root_id);
-- A drive's root (where path derivation starts and a library page opens) without scanning the drive.
CREATE INDEX IF NOT EXISTS msgraph_drive_items_root ON msgraph_drive_items (tenant_id, drive_id) WHERE is_root;
CREATE INDEX IF NOT EXISTS msgraph_drive_items_perm_due ON msgraph_drive_items (tenant_id, drive_id)
    WHERE deleted_at IS NULL AND (permissions_last_synced_at IS NULL OR permissions_last_synced_at < sharing_changed_at);
-- Hierarchical mode's due items: the roots of permission hierarchies only. The index above
-- also holds every item below a root (their permissions are never read), about nine in ten
-- items of a large tenant, and a run's due query walked them all.
CREATE INDEX IF NOT EXISTS msgraph_drive_items_root_due ON msgraph_drive_items (tenant_id, drive_id, id)
    WHERE deleted_at IS NULL AND COALESCE(permission_root_id, id) = id
      AND (permissions_last_synced_at IS NULL OR permissions_last_synced_at < sharing_changed_at);
-- The permission sweep: items whose permissions were read longest ago first.
CREATE INDEX IF NOT EXISTS msgraph_drive_items_perm_age ON msgraph_drive_items (tenant_id, permissions_last_synced_at, drive_id, id)
    WHERE deleted_at IS NULL;

-- One row per permission of an item. Sharing-link URLs are bearer secrets: only their hash is kept.
CREATE TABLE IF NOT EXISTS msgraph_drive_item_permissions (
    tenant_id              text        NOT NULL,
    drive_id               text        NOT NULL,
    item_id                text        NOT NULL,
    permission_id          text        NOT NULL,
    roles                  text[]      NOT NULL DEFAULT '{}',
    link_type              text,
    link_scope             text,
    link_url_sha256        text,
    link_prevents_download boolean,
    has_password           boolean,
    expires_at             timestamptz,
    invitation_email       text,
    inherited_from_id      text,
    raw_json               jsonb       NOT NULL,
    synced_at              timestamptz NOT NULL DEFAULT now(),
    -- When a scan first saw it (Graph gives no creation date for links or grants); kept while it
    -- exists, set again if it comes back after `deleted_at`.
    first_seen_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at             timestamptz,
    PRIMARY KEY (tenant_id, drive_id, item_id, permission_id)
);

-- One row per grantee of a permission: a user, group, site user, site group, application, link or invitation.
CREATE TABLE IF NOT EXISTS msgraph_drive_item_permission_grants (
    tenant_id                    text        NOT NULL,
    drive_id                     text        NOT NULL,
    item_id                      text        NOT NULL,
    permission_id                text        NOT NULL,
    grantee_key                  text        NOT NULL,
    grantee_type                 text        NOT NULL CHECK (grantee_type IN
                                     ('user', 'group', 'site_user', 'site_group', 'application', 'link', 'invitation')),
    grantee_id                   text,
    display_name                 text,
    email                        text,
    login_name                   text,
    is_external                  boolean     NOT NULL DEFAULT false,
    is_everyone                  boolean     NOT NULL DEFAULT false,
    is_everyone_except_external  boolean     NOT NULL DEFAULT false,
    synced_at                    timestamptz NOT NULL DEFAULT now(),
    first_seen_at                timestamptz NOT NULL DEFAULT now(),
    deleted_at                   timestamptz,
    PRIMARY KEY (tenant_id, drive_id, item_id, permission_id, grantee_key)
);
-- Not partial: a `deleted_at IS NULL` index looks cheapest to a planner with an empty table's
-- statistics and would win over the primary key for the per-item updates of a first sync.
CREATE INDEX IF NOT EXISTS msgraph_grants_grantee ON msgraph_drive_item_permission_grants (tenant_id, grantee_id);
-- What one person reaches (/people/{id}) reads only the grants that can concern them: by grantee
-- id (above), by invited address, the site groups of a library, and the broad claims and links.
CREATE INDEX IF NOT EXISTS msgraph_grants_invited ON msgraph_drive_item_permission_grants (tenant_id, lower(email))
    WHERE grantee_type = 'invitation';
CREATE INDEX IF NOT EXISTS msgraph_grants_site_groups ON msgraph_drive_item_permission_grants (tenant_id, drive_id)
    WHERE grantee_type = 'site_group';
-- By library too: a page of one person's reach reads the libraries it spans only.
DROP INDEX IF EXISTS msgraph_grants_everyone;
DROP INDEX IF EXISTS msgraph_permissions_organization;
CREATE INDEX IF NOT EXISTS msgraph_grants_everyone_by_drive ON msgraph_drive_item_permission_grants (tenant_id, drive_id)
    WHERE is_everyone OR is_everyone_except_external;
CREATE INDEX IF NOT EXISTS msgraph_permissions_organization_by_drive ON msgraph_drive_item_permissions (tenant_id, drive_id)
    WHERE link_scope = 'organization';

-- Exposure age, for databases made before it was kept: rows already stored count as first seen
-- when this ran. The indexes serve "first seen since" and "removed since" (/changes).
ALTER TABLE msgraph_drive_item_permissions ADD COLUMN IF NOT EXISTS first_seen_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE msgraph_drive_item_permission_grants ADD COLUMN IF NOT EXISTS first_seen_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX IF NOT EXISTS msgraph_permissions_first_seen ON msgraph_drive_item_permissions (tenant_id, first_seen_at);
CREATE INDEX IF NOT EXISTS msgraph_permissions_removed ON msgraph_drive_item_permissions (tenant_id, deleted_at)
    WHERE deleted_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS msgraph_grants_first_seen ON msgraph_drive_item_permission_grants (tenant_id, first_seen_at);
CREATE INDEX IF NOT EXISTS msgraph_grants_removed ON msgraph_drive_item_permission_grants (tenant_id, deleted_at)
    WHERE deleted_at IS NOT NULL;

-- Delta state: a link is stored only with the last page of a complete round.
CREATE TABLE IF NOT EXISTS msgraph_delta_state (
    resource_type   text        NOT NULL,
    partition_key   text        NOT NULL,
    delta_link      text        NOT NULL,
    last_synced_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (resource_type, partition_key)
);

-- Who can open the items of each permission holder (an item with permissions of its own), as the
-- last scan left them (Store::refresh_audiences, after each scan's view refreshes): the largest
-- audiences and the library and site tables read it. Derived, never edited: recomputed whole.
CREATE TABLE IF NOT EXISTS holder_audiences (
    tenant_id         text    NOT NULL,
    drive_id          text    NOT NULL,
    holder_id         text    NOT NULL,
    items             bigint  NOT NULL,
    readers           bigint  NOT NULL,
    writers           bigint  NOT NULL,
    guest_readers     bigint  NOT NULL,
    external_readers  bigint  NOT NULL,
    external_writers  bigint  NOT NULL,
    anyone_can_read   boolean NOT NULL,
    anyone_can_write  boolean NOT NULL,
    lower_bound       boolean NOT NULL,
    PRIMARY KEY (tenant_id, drive_id, holder_id)
);
CREATE INDEX IF NOT EXISTS holder_audiences_largest ON holder_audiences (tenant_id, readers DESC, writers DESC);

-- When each tenant's stored audiences and reach were last recomputed (the start of the oldest
-- transaction open then, Store::refresh_tenant_audiences_if_due): a scan recomputes its own
-- tenant's, not every tenant's.
CREATE TABLE IF NOT EXISTS audience_refresh_log (
    tenant_id          text        PRIMARY KEY,
    last_refreshed_at  timestamptz NOT NULL
);

-- The fingerprint (md5) of the schema files last applied in full. A start-up whose files match
-- it applies nothing: re-running the DDL takes table locks that deadlock with a scan already
-- writing (the web starting beside a scanning worker failed that scan's run).
CREATE TABLE IF NOT EXISTS schema_applied (
    fingerprint  text        PRIMARY KEY,
    applied_at   timestamptz NOT NULL DEFAULT now()
);

-- When each table last changed for each tenant, written in the same transaction as the change.
-- Keyed by tenant: one row per table (`table_update_log`, dropped here) made every tenant's
-- summaries due after any tenant's write, and serialised the writers of all tenants on it.
CREATE TABLE IF NOT EXISTS tenant_update_log (
    tenant_id        text        NOT NULL,
    table_name       text        NOT NULL,
    last_updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, table_name)
);
DROP TABLE IF EXISTS table_update_log;
