-- Jobs are intent (written by the web or the CLI); schedules say when; runs are history.

CREATE TABLE IF NOT EXISTS jobs (
    job_id      uuid        PRIMARY KEY,
    job_type    text        NOT NULL,
    tenant_id   text        NOT NULL,
    config      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    enabled     boolean     NOT NULL DEFAULT true,
    name        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- Operations: a paused job's schedules stay but do not fire; run-now asks for one run.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS paused boolean NOT NULL DEFAULT false;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS run_requested_at timestamptz;

CREATE TABLE IF NOT EXISTS job_schedules (
    schedule_id  uuid        PRIMARY KEY,
    job_id       uuid        NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
    cron_expr    text        NOT NULL,
    next_run_at  timestamptz,
    enabled      boolean     NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS job_schedules_due ON job_schedules (next_run_at) WHERE enabled;

CREATE TABLE IF NOT EXISTS job_runs (
    run_id       uuid        PRIMARY KEY,
    job_id       uuid        NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    status       text        NOT NULL CHECK (status IN ('running', 'success', 'failed')),
    error        text,
    -- Progress of a running job (counts, RU spent), readable while it runs.
    progress     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    worker_id    text
);
-- What started the run: 'schedule' or 'run_now'.
ALTER TABLE job_runs ADD COLUMN IF NOT EXISTS trigger text;
CREATE INDEX IF NOT EXISTS job_runs_job ON job_runs (job_id, started_at DESC);
CREATE INDEX IF NOT EXISTS job_runs_running ON job_runs (status) WHERE status = 'running';
