//! Postgres-polling job scheduler for Princeton Sentinel: cron schedules, advisory locks, run history.
