-- The live panel's spending of each tenant's Graph budget, shared by every web process: RU
-- spent per tenant per minute, by the panel as a whole (principal '') and by each signed-in
-- user (their object id). Graph's budgets are per app and tenant, whatever process spends
-- them; a count kept in one process let two web processes spend twice the live share.
-- Unlogged: a crash forgets at most a minute of spending. Rows older than the previous minute
-- are deleted as new ones are written.
CREATE UNLOGGED TABLE IF NOT EXISTS live_spend (
    tenant_id  text        NOT NULL,
    principal  text        NOT NULL,
    minute     timestamptz NOT NULL,
    ru         integer     NOT NULL,
    PRIMARY KEY (tenant_id, principal, minute)
);
