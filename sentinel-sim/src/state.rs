//! Shared server state: the tenant, the simulated clock, budgets, faults and statistics.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::faults::Faults;
use crate::generate::{Profile, generate};
use crate::tenant::Tenant;
use crate::throttle::Throttle;

/// Default client secret the simulator accepts (documented in the README and `--help`).
pub const DEFAULT_CLIENT_SECRET: &str = "sentinel-sim-secret";
/// Default client id of the single app registration the simulator knows.
pub const DEFAULT_CLIENT_ID: &str = "5e1f5a3c-0f6b-4c1e-9d3a-7a51e0c1d2b4";
/// App role of the dashboard's administrators.
pub const ROLE_ADMIN: &str = "Sentinel.Admin";
/// App role of read-only dashboard users.
pub const ROLE_READER: &str = "Sentinel.Reader";
/// App role an application needs to call the worker's control API.
pub const ROLE_WORKER_CALLER: &str = "Sentinel.Worker.Invoke";

/// Start-up configuration of a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Size of the generated tenant.
    pub profile: Profile,
    /// Seed of the generated tenant: the same seed, the same tenant.
    pub seed: u64,
    /// The app registration's client id, the only one the token endpoint accepts.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: String,
    /// RU per minute per app for SharePoint/OneDrive requests.
    pub ru_per_minute: u32,
    /// RU per 24 hours per app for SharePoint/OneDrive requests; `None`: 960 minutes' worth,
    /// as in every documented band (1,250/min and 1.2M/24 h, ... 6,250/min and 6M/24 h).
    pub ru_per_day: Option<u32>,
    /// RU per 10 seconds per app for directory requests (`None`: from the user count).
    pub directory_ru_per_10s: Option<u32>,
    /// Simulated seconds per real second.
    pub time_scale: f64,
    /// Added to every Graph response, in real milliseconds.
    pub latency_ms: u64,
    /// Up to this many more milliseconds, at random.
    pub jitter_ms: u64,
    /// Lifetime of issued access tokens (`expires_in`).
    pub token_lifetime_secs: u64,
    /// Faults injected from the start.
    pub faults: Faults,
    /// Public base URL (scheme://host:port) used in links; `None`: from the Host header.
    pub public_url: Option<String>,
    /// Expired directory delta tokens answer 410 instead of the documented 400 (both carry
    /// `syncStateNotFound`; the 410 was reported in microsoft-graph-docs-contrib #7897).
    pub directory_expiry_gone: bool,
    /// A deleted folder's descendants get tombstones of their own in incremental drive rounds
    /// (the older behaviour); by default only the folder's tombstone comes, as on SharePoint.
    pub folder_delete_lists_descendants: bool,
    /// Version of the access tokens issued for our own API (`api://{client-id}/.default`):
    /// 1, as for an app registration whose manifest leaves `requestedAccessTokenVersion` unset,
    /// or 2 when it is set to 2 (Entra "Access tokens").
    pub api_token_version: u8,
    /// The app holds the application permission Sites.FullControl.All (as the README asks).
    /// Without it, app tokens carry Sites.Read.All instead and drive delta ignores the
    /// `hierarchicalsharing` and `deltashowsharingchanges` preferences, which Graph honours for
    /// Sites.FullControl.All only (scan guidance; graph-behaviour.md): no error says so.
    pub sites_full_control: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            profile: Profile::Tiny,
            seed: 1,
            client_id: DEFAULT_CLIENT_ID.to_string(),
            client_secret: DEFAULT_CLIENT_SECRET.to_string(),
            ru_per_minute: 1_250,
            ru_per_day: None,
            directory_ru_per_10s: None,
            time_scale: 1.0,
            latency_ms: 0,
            jitter_ms: 0,
            token_lifetime_secs: 3_599,
            faults: Faults::default(),
            public_url: None,
            directory_expiry_gone: false,
            folder_delete_lists_descendants: false,
            api_token_version: 1,
            sites_full_control: true,
        }
    }
}

/// Requests, statuses and RU spent, as `/_sim/stats` reports them.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    pub requests: u64,
    pub ru_spent: u64,
    pub throttled: u64,
    pub by_endpoint: BTreeMap<String, BTreeMap<u16, u64>>,
    pub ru_by_endpoint: BTreeMap<String, u64>,
    pub faults_injected: BTreeMap<String, u64>,
    pub tokens_issued: u64,
    /// Browsers sent to the sign-out endpoint.
    pub sign_outs: u64,
    /// The most SharePoint RU any app was charged within one sliding minute (simulated), and
    /// the budget it was held to: a tenant was never over its budget in any minute when the
    /// first is at most the second.
    pub sharepoint_peak_minute_ru: u64,
    pub sharepoint_ru_per_minute: u32,
}

/// One Graph request as the simulator saw it (the last 10,000 are kept).
#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    /// Milliseconds since the simulator started (real time).
    pub at_ms: u64,
    pub route: String,
    pub status: u16,
}

pub const REQUEST_LOG_LEN: usize = 10_000;

/// A pending authorization code of the sign-in flow.
#[derive(Debug, Clone)]
pub struct AuthCode {
    pub user: usize,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub issued: Instant,
    /// The sign-in asked for `offline_access`: the code's redemption returns a refresh token.
    pub offline: bool,
}

/// A refresh token issued to a signed-in user: who, and in which revocation generation.
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub user: usize,
    pub generation: u64,
}

/// A running simulator's state: the tenant, its budgets, faults, issued codes and tokens.
#[derive(Debug)]
pub struct SimState {
    /// How it was started.
    pub config: SimConfig,
    pub(crate) tenant: RwLock<Tenant>,
    /// Delta tokens from an older epoch answer 410.
    pub(crate) epoch: AtomicU64,
    pub(crate) throttle: Mutex<Throttle>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) rng: Mutex<ChaCha8Rng>,
    pub(crate) stats: Mutex<Stats>,
    pub(crate) codes: Mutex<HashMap<String, AuthCode>>,
    pub(crate) request_log: Mutex<std::collections::VecDeque<LoggedRequest>>,
    /// Every token issued (the newest 10,000), so tests can prove none leaks to a browser.
    pub(crate) issued_tokens: Mutex<std::collections::VecDeque<String>>,
    /// Token generation: access tokens of an older generation are rejected (`/_sim/auth` revoke).
    pub(crate) revoked_before: AtomicU64,
    pub(crate) token_lifetime_secs: AtomicU64,
    /// Refresh tokens issued (redeeming one returns the next; both stay valid until revoked).
    pub(crate) refresh_tokens: Mutex<HashMap<String, RefreshGrant>>,
    /// App roles set through `/_sim/auth` in place of a demo user's own.
    pub(crate) role_overrides: Mutex<HashMap<usize, Vec<String>>>,
    /// The activity model and its account of changes (`/_sim/activity`).
    pub(crate) activity: Mutex<crate::activity::Activity>,
    started: Instant,
    started_unix: f64,
    /// The full router, for dispatching `$batch` inner requests.
    pub(crate) router: OnceLock<axum::Router>,
}

impl SimState {
    /// Generates the tenant and starts the clocks.
    pub fn new(config: SimConfig) -> SimState {
        let tenant = generate(config.profile, config.seed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        SimState {
            faults: Mutex::new(config.faults.clone()),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(config.seed ^ 0x5EED)),
            token_lifetime_secs: AtomicU64::new(config.token_lifetime_secs),
            config,
            tenant: RwLock::new(tenant),
            epoch: AtomicU64::new(1),
            throttle: Mutex::new(Throttle::default()),
            stats: Mutex::new(Stats::default()),
            codes: Mutex::new(HashMap::new()),
            request_log: Mutex::new(std::collections::VecDeque::new()),
            issued_tokens: Mutex::new(std::collections::VecDeque::new()),
            revoked_before: AtomicU64::new(0),
            refresh_tokens: Mutex::new(HashMap::new()),
            role_overrides: Mutex::new(HashMap::new()),
            activity: Mutex::new(crate::activity::Activity::default()),
            started: Instant::now(),
            started_unix: now,
            router: OnceLock::new(),
        }
    }

    /// Real milliseconds since start-up.
    pub fn real_elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Simulated seconds since start-up (scaled by `time_scale`).
    pub fn sim_elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * self.config.time_scale
    }

    /// Simulated wall clock, Unix seconds.
    pub fn sim_now_unix(&self) -> i64 {
        self.sim_unix_at(self.sim_elapsed())
    }

    /// The simulated wall clock (Unix seconds) `sim_secs` simulated seconds after start-up.
    pub fn sim_unix_at(&self, sim_secs: f64) -> i64 {
        (self.started_unix + sim_secs) as i64
    }

    /// Real time to wait for `sim_secs` simulated seconds, as Graph writes `Retry-After`: seconds
    /// with a fraction, as in the throttling page's sample (`Retry-After: 2.128`,
    /// learn.microsoft.com/graph/throttling "Sample response"), rounded up to the millisecond.
    pub fn retry_after(&self, sim_secs: f64) -> String {
        retry_after_value(sim_secs / self.config.time_scale)
    }

    /// Real whole seconds (at least 1) for `sim_secs` simulated seconds: `RateLimit-Reset`
    /// counts whole seconds (IETF RateLimit header fields, as SharePoint sends them).
    pub fn reset_after(&self, sim_secs: f64) -> u64 {
        (sim_secs / self.config.time_scale).ceil().max(1.0) as u64
    }

    /// Delta token epoch: tokens from an older one answer 410 (`POST /_sim/expire-tokens` bumps it).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// SharePoint RU per 24 h: `ru_per_day`, else 960 minutes' worth.
    pub fn daily_budget(&self) -> u32 {
        self.config
            .ru_per_day
            .unwrap_or_else(|| self.config.ru_per_minute.saturating_mul(960))
    }

    /// Directory RU per 10 s: `directory_ru_per_10s`, else by tenant size as Graph's directory limits say.
    pub fn directory_budget(&self) -> u32 {
        self.config.directory_ru_per_10s.unwrap_or_else(|| {
            let users = self.tenant.read().map(|t| t.users.len()).unwrap_or(0);
            match users {
                0..50 => 3_500,
                50..=500 => 5_000,
                _ => 8_000,
            }
        })
    }

    /// Request counts, RU spent and throttling, for `/_sim/stats`.
    pub fn lock_stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fault settings in force.
    pub fn lock_faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The activity model's state (taken before the tenant's lock, never after).
    pub(crate) fn lock_activity(&self) -> std::sync::MutexGuard<'_, crate::activity::Activity> {
        self.activity.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The simulator's random source (seeded: runs repeat).
    pub fn lock_rng(&self) -> std::sync::MutexGuard<'_, ChaCha8Rng> {
        self.rng.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the tenant.
    pub fn read_tenant(&self) -> std::sync::RwLockReadGuard<'_, Tenant> {
        self.tenant.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the tenant (callers bump its sequence for each change).
    pub fn write_tenant(&self) -> std::sync::RwLockWriteGuard<'_, Tenant> {
        self.tenant.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `fault` fires for this request (and records it).
    pub fn fire(&self, fault: crate::faults::Fault) -> bool {
        let fired = {
            let mut rng = self.lock_rng();
            self.lock_faults().fire(fault, &mut *rng)
        };
        if fired {
            *self
                .lock_stats()
                .faults_injected
                .entry(format!("{fault:?}"))
                .or_default() += 1;
        }
        fired
    }
}

/// `secs` as a `Retry-After` value: seconds with three decimals, rounded up, never 0.
pub fn retry_after_value(secs: f64) -> String {
    format!(
        "{:.3}",
        ((secs.max(0.0) * 1000.0).ceil() / 1000.0).max(0.001)
    )
}
