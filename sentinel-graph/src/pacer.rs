//! Pacing: spend RU no faster than the budget allows, and stop every request of the
//! tenant while Graph has asked us to back off.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

use crate::config::GraphConfig;
use crate::cost::Budget;

/// Counters callers can read while requests run.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub ru_spent: AtomicU64,
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    pub retries: AtomicU64,
    pub throttle_wait_ms: AtomicU64,
}

/// A snapshot of the client's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// RU charged for every attempt sent (throttled ones count too, as on Graph).
    pub ru_spent: u64,
    /// HTTP attempts sent to Graph (each `$batch` inner request counts once).
    pub requests: u64,
    /// 429 and 503 answers received (inner ones included).
    pub throttled: u64,
    /// Retries of transient failures.
    pub retries: u64,
    /// Time spent paused by Retry-After, milliseconds.
    pub throttle_wait_ms: u64,
}

#[derive(Debug)]
pub(crate) struct Pacer {
    sharepoint: DefaultDirectRateLimiter,
    directory: DefaultDirectRateLimiter,
    paused_until: Mutex<Option<Instant>>,
    pub counters: Counters,
}

/// A limiter whose worst 1-window spend (burst + rate * window) stays within `budget`.
fn limiter(budget: u32, window: Duration) -> DefaultDirectRateLimiter {
    let burst = (budget / 10).max(5);
    let rate = budget.saturating_sub(burst).max(1);
    let period = window / rate;
    let quota = Quota::with_period(period.max(Duration::from_micros(1)))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
    RateLimiter::direct(quota)
}

impl Pacer {
    pub fn new(config: &GraphConfig) -> Pacer {
        Pacer {
            sharepoint: limiter(config.ru_per_minute, Duration::from_secs(60)),
            directory: limiter(config.directory_ru_per_10s, Duration::from_secs(10)),
            paused_until: Mutex::new(None),
            counters: Counters::default(),
        }
    }

    /// Waits out any pause, then for `cost` RU of the budget; counts the request.
    pub async fn acquire(&self, budget: Budget, cost: u32) {
        self.wait_pause().await;
        let limiter = match budget {
            Budget::Sharepoint => &self.sharepoint,
            Budget::Directory => &self.directory,
        };
        if let Some(n) = NonZeroU32::new(cost) {
            // A cost above the burst is paid in burst-sized steps.
            let mut left = n.get();
            while left > 0 {
                let step = left.min(5);
                if let Some(s) = NonZeroU32::new(step) {
                    let _ = limiter.until_n_ready(s).await;
                }
                left -= step;
            }
        }
        // A pause may have started while this request waited for budget.
        self.wait_pause().await;
        self.counters
            .ru_spent
            .fetch_add(cost as u64, Ordering::Relaxed);
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
    }

    async fn wait_pause(&self) {
        loop {
            let until = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => return,
            }
        }
    }

    /// Stops every request of this client for `wait` (a 429 or 503 with Retry-After).
    pub fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut p = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if p.is_none_or(|cur| cur < until) {
            *p = Some(until);
        }
        self.counters.throttled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> ClientStats {
        let c = &self.counters;
        ClientStats {
            ru_spent: c.ru_spent.load(Ordering::Relaxed),
            requests: c.requests.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            throttle_wait_ms: c.throttle_wait_ms.load(Ordering::Relaxed),
        }
    }
}
