-- Tenants as data: one deployment scans every enabled tenant that consented to its one app
-- registration (multi-tenant). A single-tenant deployment holds one row, its ENTRA_TENANT_ID,
-- registered by the worker at start-up: no new setting.

CREATE TABLE IF NOT EXISTS tenants (
    -- As Entra names it in the token endpoint's path: the tenant id (a GUID) or a domain.
    tenant_id      text        PRIMARY KEY,
    name           text,
    -- A disabled tenant's jobs do not run; its data stays readable.
    enabled        boolean     NOT NULL DEFAULT true,
    -- 'unknown' until a token is asked for; 'granted' once one was issued; 'missing' when
    -- Entra refused it (no admin consent yet, or revoked), with what Entra said.
    consent_state  text        NOT NULL DEFAULT 'unknown'
                   CHECK (consent_state IN ('unknown', 'granted', 'missing')),
    consent_error  text,
    consent_checked_at timestamptz,
    -- SharePoint's resource-unit band, by the tenant's license count (Microsoft Learn,
    -- "SharePoint Online throttling"): 1 = up to 1,000 licenses (1,250 RU/min, 1.2M RU/24 h)
    -- ... 5 = over 50,000 (6,250 RU/min, 6M RU/24 h).
    -- NULL: the deployment's own GRAPH_RU_PER_MINUTE and GRAPH_RU_PER_DAY.
    budget_band    smallint    CHECK (budget_band BETWEEN 1 AND 5),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Whose data an audit event concerns (NULL: the deployment's own, e.g. a tenant added).
ALTER TABLE audit_events ADD COLUMN IF NOT EXISTS tenant_id text;
CREATE INDEX IF NOT EXISTS audit_events_tenant ON audit_events (tenant_id, occurred_at DESC);

-- Readers limited to some tenants: a reader with rows here sees only those tenants; a reader
-- without any, and every admin, sees every tenant. `principal` is the user's object id or
-- sign-in name, compared without case.
CREATE TABLE IF NOT EXISTS tenant_readers (
    tenant_id   text        NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    principal   text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, principal)
);
CREATE INDEX IF NOT EXISTS tenant_readers_principal ON tenant_readers (lower(principal));
