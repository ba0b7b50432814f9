-- What each person reaches, as the last scan left it (Store::refresh_audiences stores it with the
-- audiences, from the same sets): `/people` ranks these rows and `/people/{id}` sums them by site
-- and cuts its pages by them, instead of expanding every grant on each request. Derived, never
-- edited: recomputed whole per tenant.

-- Each person's totals. Disabled accounts are kept, with zeros (they reach nothing): the list
-- filters by them. `person_id` is a directory id, or the lower-cased address of an invitation.
CREATE TABLE IF NOT EXISTS person_reach (
    tenant_id            text    NOT NULL,
    person_id            text    NOT NULL,
    kind                 text    NOT NULL CHECK (kind IN ('member', 'guest', 'external')),
    display_name         text,
    user_principal_name  text,
    enabled              boolean NOT NULL,
    items_read           bigint  NOT NULL,
    items_write          bigint  NOT NULL,
    libraries            bigint  NOT NULL,
    sites                bigint  NOT NULL,
    PRIMARY KEY (tenant_id, person_id)
);
CREATE INDEX IF NOT EXISTS person_reach_rank
    ON person_reach (tenant_id, items_read DESC, items_write DESC, sites DESC, display_name, person_id);

-- What the broad grants ("Everyone", "Everyone except external users", organisation links) open
-- in each library, once for every member and once for every guest: the same for each of them, so
-- stored once instead of once per person. `holders` counts the items with permissions of their
-- own reached there; `items_*` the items they cover.
CREATE TABLE IF NOT EXISTS broad_drive_reach (
    tenant_id    text    NOT NULL,
    is_guest     boolean NOT NULL,
    drive_id     text    NOT NULL,
    holders      bigint  NOT NULL,
    items_read   bigint  NOT NULL,
    items_write  bigint  NOT NULL,
    PRIMARY KEY (tenant_id, is_guest, drive_id)
);
-- Where each library's rows start on the page of a person of that kind: its `library_order`
-- position, and the broad rows of the libraries before it. A person's page adds their own rows
-- to these, so it is cut without summing every library the claims reach on each request.
ALTER TABLE broad_drive_reach ADD COLUMN IF NOT EXISTS position bigint;
ALTER TABLE broad_drive_reach ADD COLUMN IF NOT EXISTS rows_before bigint;
CREATE INDEX IF NOT EXISTS broad_drive_reach_by_position
    ON broad_drive_reach (tenant_id, is_guest, position);
CREATE INDEX IF NOT EXISTS broad_drive_reach_by_start
    ON broad_drive_reach (tenant_id, is_guest, rows_before);

-- The broad rows summed by site, per kind of person: a person's sites are these plus what their
-- own libraries add. `site_id` is null for OneDrives.
CREATE TABLE IF NOT EXISTS broad_site_reach (
    tenant_id    text    NOT NULL,
    is_guest     boolean NOT NULL,
    site_id      text,
    site_name    text,
    libraries    bigint  NOT NULL,
    holders      bigint  NOT NULL,
    items_read   bigint  NOT NULL,
    items_write  bigint  NOT NULL
);
CREATE INDEX IF NOT EXISTS broad_site_reach_by_kind ON broad_site_reach (tenant_id, is_guest);

-- What each person reaches in each library beyond the broad grants of their kind (a user grant,
-- a group, a site group, an invitation): a person's reach in a library is this row plus the
-- broad row of their kind.
CREATE TABLE IF NOT EXISTS person_drive_reach (
    tenant_id    text    NOT NULL,
    person_id    text    NOT NULL,
    drive_id     text    NOT NULL,
    holders      bigint  NOT NULL,
    items_read   bigint  NOT NULL,
    items_write  bigint  NOT NULL,
    PRIMARY KEY (tenant_id, person_id, drive_id)
);

-- Every library in the order of a person's page (site name, site, library name, library), as
-- the last refresh found them, with its site: the page is cut library by library in this order,
-- and its rows are listed in it, so the cut and the rows always agree.
CREATE TABLE IF NOT EXISTS library_order (
    tenant_id  text    NOT NULL,
    drive_id   text    NOT NULL,
    position   bigint  NOT NULL,
    site_id    text,
    site_name  text,
    PRIMARY KEY (tenant_id, drive_id)
);
