//! The Princeton Sentinel worker: `serve` (the scheduler loop, the jobs and the internal control
//! API), `sync` (one ingestion, for operators and tests), `tenants` (which tenants the
//! deployment scans) and `migrate`. Wiring of the crates.

pub mod api;
pub mod config;
pub mod serve;
pub mod sync;
pub mod tenants;
