#![warn(missing_docs)]
//! A simulated Microsoft 365 tenant that speaks Microsoft Graph v1.0 and the Entra
//! (identity platform v2.0) endpoints.
//!
//! It is Princeton Sentinel's only tenant: the demo, every end-to-end test and every
//! benchmark run against it. It reproduces how Graph behaves (see `shared/graph-behaviour.md`):
//! delta rounds with opaque tokens and `410 Gone` resyncs, `@removed` and deleted items
//! without names, the resource-unit budget with `429` + `Retry-After`, `$batch`,
//! hierarchical sharing, and injected faults. Control endpoints under `/_sim/` expose the
//! ground truth so tests can compare what a client stored with what the tenant holds.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use sentinel_sim::{Profile, SimConfig, spawn};
//! let sim = spawn(SimConfig { profile: Profile::Tiny, seed: 7, ..SimConfig::default() },
//!                 "127.0.0.1:0".parse().expect("address")).await?;
//! println!("Graph at {}/v1.0, tenant {}", sim.url(), sim.state.read_tenant().tenant_id);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

// Handlers return early with a ready `Response` as their error: that is the point of it.
#![allow(clippy::result_large_err)]

mod activity;
mod aliases;
pub mod audience;
pub mod control;
mod cursor;
pub mod entra;
mod faults;
mod fleet;
pub mod generate;
mod graph;
mod json;
pub mod mutate;
mod server;
mod signin;
mod state;
pub mod tenant;
mod throttle;

pub use control::Manifest;
pub use faults::{Fault, Faults};
pub use fleet::{RunningFleet, spawn_fleet};
pub use generate::Profile;
pub use server::{RunningSim, spawn};
pub use state::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, ROLE_ADMIN, ROLE_READER, ROLE_WORKER_CALLER,
    SimConfig, SimState,
};
