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
//! List every anonymous sharing link in a tenant's libraries:
//!
//! ```no_run
//! use futures::StreamExt;
//! use sentinel_graph::{DeltaEvent, DeltaStart, DriveDeltaOptions, GraphClient, GraphConfig};
//!
//! # async fn run() -> Result<(), sentinel_graph::GraphError> {
//! let client = GraphClient::new(GraphConfig::from_env()?)?;
//! let mut sites = client.all_sites();
//! while let Some(page) = sites.next().await {
//!     for site in page? {
//!         for drive in client.site_drives(&site.id).await? {
//!             let mut delta = client.drive_delta(&drive.id, DeltaStart::Scratch, &DriveDeltaOptions::default())?;
//!             while let Some(event) = delta.next().await {
//!                 if let DeltaEvent::Page(items) = event? {
//!                     for item in items.iter().filter(|i| i.shared.as_ref().and_then(|s| s.scope.as_deref()) == Some("anonymous")) {
//!                         println!("{} is shared anonymously", item.name.as_deref().unwrap_or(&item.id));
//!                     }
//!                 }
//!             }
//!         }
//!     }
//! }
//! println!("spent {} RU", client.ru_spent());
//! # Ok(()) }
//! ```

mod api;
mod auth;
mod batch;
mod client;
mod config;
pub mod cost;
mod delta;
mod error;
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
