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
