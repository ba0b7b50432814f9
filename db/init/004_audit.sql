-- Who did what: every change from the web, every control call, every job execution.

CREATE TABLE IF NOT EXISTS audit_events (
    event_id     uuid        PRIMARY KEY,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    actor_oid    text,
    actor_upn    text,
    actor_name   text,
    action       text        NOT NULL,
    entity_type  text,
    entity_id    text,
    details      jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS audit_events_time ON audit_events (occurred_at DESC);
CREATE INDEX IF NOT EXISTS audit_events_entity ON audit_events (entity_type, entity_id);
