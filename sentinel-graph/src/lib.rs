#![warn(missing_docs)]
//! A typed Microsoft Graph v1.0 client for tools that read a Microsoft 365 tenant at scale.
//!
//! - App-only auth (client credentials, via the `oauth2` crate); the token is cached,
//!   refreshed before it expires and once more after a 401.
//! - Pacing by the documented resource-unit cost of each request (`governor`), so a scan
//!   stays inside the tenant's budget instead of colliding with it.
//! - 429/503 obey `Retry-After` (or `RateLimit-Reset`, the larger wins) and pause *every*
//!   request of the client; transient failures are retried by `reqwest-retry`.
//! - Delta rounds and paged collections as `futures::Stream`s, with 410 resyncs and
//!   nextLink loop detection; `$batch` with inner-throttling retries.
//! - Typed models that keep their raw JSON; errors that tell auth, not found, throttling,
//!   resync, bad responses and transport apart.
//!
//! The crate knows nothing of storage: it reads Graph and hands you typed values.
//!
//! # Example
//!
//! Count a tenant's users and the items of its first library. This example runs against
//! the simulated tenant (`sentinel-sim`); against a real tenant, build the configuration with
//! [`GraphConfig::from_env`] instead.
//!
//! ```
//! use futures::StreamExt;
//! use sentinel_graph::{DeltaEvent, DeltaStart, DriveDeltaOptions, GraphClient, GraphConfig, SecretString};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let sim = sentinel_sim::spawn(sentinel_sim::SimConfig::default(), "127.0.0.1:0".parse()?).await?;
//! # let tenant_id = sim.state.read_tenant().tenant_id.clone();
//! let mut config = GraphConfig::new(
//!     tenant_id,
//!     sentinel_sim::DEFAULT_CLIENT_ID,
//!     SecretString::from(sentinel_sim::DEFAULT_CLIENT_SECRET.to_string()),
//! );
//! config.graph_base_url = format!("{}/v1.0", sim.url()).parse()?;
//! config.authority = sim.url().parse()?;
//! let client = GraphClient::new(config)?;
//!
//! let mut users = 0;
//! let mut rounds = client.users_delta(DeltaStart::Scratch, &["displayName", "userType"]);
//! while let Some(event) = rounds.next().await {
//!     match event? {
//!         DeltaEvent::Page(page) => users += page.iter().filter(|u| u.removed.is_none()).count(),
//!         DeltaEvent::Resync { .. } => users = 0, // the round restarted from scratch
//!         DeltaEvent::Complete { delta_link } => assert!(!delta_link.is_empty()), // store it for next time
//!     }
//! }
//!
//! let site = client.all_sites().next().await.expect("a page")?.remove(0);
//! let library = client.site_drives(&site.id).await?.remove(0);
//! let mut items = 0;
//! let mut delta = client.drive_delta(&library.id, DeltaStart::Scratch, &DriveDeltaOptions::default())?;
//! while let Some(event) = delta.next().await {
//!     if let DeltaEvent::Page(page) = event? {
//!         items += page.len();
//!     }
//! }
//! println!("{users} users; {items} items in {}; {} RU spent", library.name.unwrap_or_default(), client.ru_spent());
//! assert!(users > 0 && items > 0);
//! # sim.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod api;
mod auth;
mod batch;
mod client;
mod config;
pub mod cost;
mod delta;
mod error;
pub mod identity;
pub mod models;
mod pacer;

pub use api::{DriveDeltaOptions, validate_id};
pub use batch::{BatchRequest, BatchResponse, MAX_BATCH};
pub use client::GraphClient;
pub use config::GraphConfig;
pub use delta::{DeltaEvent, DeltaStart};
pub use error::GraphError;
pub use pacer::ClientStats;
pub use secrecy::SecretString;
