-- Policies, their violations and the alerts sent for them (docs/policies.md).

-- The built-in rules an admin switched on or off, or tuned, on /policies. A rule without a row
-- runs with its defaults (sentinel_store::PolicyRule).
CREATE TABLE IF NOT EXISTS policies (
    tenant_id   text        NOT NULL,
    rule        text        NOT NULL,
    enabled     boolean     NOT NULL,
    threshold   integer     CHECK (threshold IS NULL OR threshold >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text,
    PRIMARY KEY (tenant_id, rule)
);

-- What breaks an enabled rule, as the last computation (after each scan, and after a policy
-- change) found it. A violation that no longer holds keeps its row with `resolved_at`; one
-- that comes back is detected again (a new `detected_at`, and new alerts).
CREATE TABLE IF NOT EXISTS policy_violations (
    tenant_id      text        NOT NULL,
    rule           text        NOT NULL,
    -- What breaks it: a link (drive/permission), a grant (drive/permission/grantee) or an item
    -- holding permissions (drive/item).
    subject_key    text        NOT NULL,
    drive_id       text        NOT NULL,
    item_id        text        NOT NULL,
    permission_id  text,
    grantee        text,
    detail         text        NOT NULL,
    -- When a scan first saw the exposure (first_seen_at of the permission or grant).
    first_seen_at  timestamptz NOT NULL,
    detected_at    timestamptz NOT NULL,
    resolved_at    timestamptz,
    PRIMARY KEY (tenant_id, rule, subject_key)
);
CREATE INDEX IF NOT EXISTS policy_violations_open ON policy_violations (tenant_id, drive_id)
    WHERE resolved_at IS NULL;

-- Where alerts go: incoming webhooks an admin added, each with the body its receiver reads
-- (`json` ours, `slack` an incoming webhook's text, `teams` a Workflows webhook's Adaptive Card).
CREATE TABLE IF NOT EXISTS alert_webhooks (
    webhook_id  uuid        PRIMARY KEY,
    tenant_id   text        NOT NULL,
    url         text        NOT NULL,
    format      text        NOT NULL DEFAULT 'json' CHECK (format IN ('json', 'slack', 'teams')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text
);

-- One alert per webhook per detected violation: the key deduplicates, the worker sends the due
-- ones (batched per webhook) and retries failures with backoff until `max attempts`.
CREATE TABLE IF NOT EXISTS alert_deliveries (
    webhook_id       uuid        NOT NULL REFERENCES alert_webhooks ON DELETE CASCADE,
    tenant_id        text        NOT NULL,
    rule             text        NOT NULL,
    subject_key      text        NOT NULL,
    detected_at      timestamptz NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    delivered_at     timestamptz,
    PRIMARY KEY (webhook_id, tenant_id, rule, subject_key, detected_at)
);
CREATE INDEX IF NOT EXISTS alert_deliveries_due ON alert_deliveries (next_attempt_at)
    WHERE status = 'pending';
