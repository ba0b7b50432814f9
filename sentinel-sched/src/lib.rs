//! Postgres-polling job scheduler for Princeton Sentinel: standard 5-field cron schedules,
//! one run of a job at a time (a session advisory lock held for the whole run), honest history.

pub mod cron;

pub use cron::{CronError, CronExpr};
