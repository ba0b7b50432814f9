//! Pacing: spend RU no faster than the budget allows, and stop every request of the
//! tenant while Graph has asked us to back off.

use std::collections::VecDeque;
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

/// One budget: a limiter and a queue, so a request takes its whole cost in one go, in turn.
/// Costs taken piecemeal by concurrent requests would let a batch that collected its RU over
/// seconds go out together with others doing the same: a burst the budget never planned.
#[derive(Debug)]
struct Limited {
    limiter: DefaultDirectRateLimiter,
    burst: u32,
    queue: tokio::sync::Mutex<()>,
}

impl Limited {
    async fn take(&self, cost: u32) {
        let _turn = self.queue.lock().await;
        let mut left = cost;
        // A cost above the burst is paid in burst-sized steps.
        while let Some(step) = NonZeroU32::new(left.min(self.burst)) {
            let _ = self.limiter.until_n_ready(step).await;
            left -= step.get();
        }
    }
}

/// A budget over a long sliding window (SharePoint's 24 hours), kept as Graph keeps it: the
/// RU spent in the last window, summed in buckets of 1/1440 of it; a request waits until the
/// window has slid far enough for its cost to fit. `governor` (GCRA) cannot express this: its
/// worst window spends burst + rate × window, so a day's budget at once would allow two in
/// some 24 hours, and a small burst would hold a first scan to 1/1440 of the day per minute.
#[derive(Debug)]
struct SlidingWindow {
    window: Duration,
    cap: u64,
    /// (time of the newest spend in the bucket, RU in it), oldest first; and their sum.
    spent: tokio::sync::Mutex<(VecDeque<(Instant, u64)>, u64)>,
}

impl SlidingWindow {
    fn new(budget: u32, window: Duration) -> SlidingWindow {
        SlidingWindow {
            window,
            cap: ((budget as f64) * PACE_SHARE) as u64,
            spent: tokio::sync::Mutex::new((VecDeque::new(), 0)),
        }
    }

    /// Takes `cost` RU, in turn (the lock is the queue), once the window has room for it.
    async fn take(&self, cost: u32) {
        let cost = cost as u64;
        let bucket = self.window / 1440;
        let mut spent = self.spent.lock().await;
        loop {
            let now = Instant::now();
            while let Some(&(t, c)) = spent.0.front() {
                if t + self.window > now {
                    break;
                }
                spent.0.pop_front();
                spent.1 -= c;
            }
            let oldest = spent.0.front().map(|&(t, _)| t);
            match oldest {
                Some(t) if spent.1 + cost > self.cap => {
                    tokio::time::sleep_until(t + self.window).await;
                }
                _ => {
                    // A spend joins the newest bucket while it is young, which then expires
                    // with its newest spend: never earlier than Graph forgets any of them.
                    match spent.0.back_mut() {
                        Some((t, c)) if now.duration_since(*t) < bucket => {
                            *t = now;
                            *c += cost;
                        }
                        _ => spent.0.push_back((now, cost)),
                    }
                    spent.1 += cost;
                    return;
                }
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct Pacer {
    sharepoint: Limited,
    sharepoint_day: SlidingWindow,
    directory: Limited,
    paused_until: Mutex<Option<Instant>>,
    pub counters: Counters,
}

/// Share of a budget the client plans to spend: requests reach Graph with jitter, and Graph's
/// window slides, so pacing at exactly the budget would still collide now and then.
const PACE_SHARE: f64 = 0.98;

/// Share of the budget that may go out at once. The worst window spends burst + rate * window,
/// so every RU of burst is one less of steady rate: keep it small (batches are cut to fit it).
const BURST_SHARE: u32 = 40;

/// A limiter whose worst 1-window spend (burst + rate * window) stays within `budget`.
fn limiter(budget: u32, window: Duration) -> Limited {
    let budget = ((budget as f64) * PACE_SHARE) as u32;
    let burst = (budget / BURST_SHARE).max(5);
    let rate = budget.saturating_sub(burst).max(1);
    let period = window / rate;
    let quota = Quota::with_period(period.max(Duration::from_micros(1)))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
    Limited {
        limiter: RateLimiter::direct(quota),
        burst,
        queue: tokio::sync::Mutex::new(()),
    }
}

impl Pacer {
    pub fn new(config: &GraphConfig) -> Pacer {
        Pacer {
            sharepoint: limiter(
                config.ru_per_minute,
                Duration::from_secs_f64(60.0 / config.budget_time_scale),
            ),
            sharepoint_day: SlidingWindow::new(
                config.daily_budget(),
                Duration::from_secs_f64(86_400.0 / config.budget_time_scale),
            ),
            directory: limiter(
                config.directory_ru_per_10s,
                Duration::from_secs_f64(10.0 / config.budget_time_scale),
            ),
            paused_until: Mutex::new(None),
            counters: Counters::default(),
        }
    }

    /// The most RU one request should cost to go out in one step (a `$batch` is cut to fit).
    pub fn burst(&self, budget: Budget) -> u32 {
        match budget {
            Budget::Sharepoint => self.sharepoint.burst,
            Budget::Directory => self.directory.burst,
        }
    }

    /// Waits out any pause, then for `cost` RU of the budget; counts the request.
    pub async fn acquire(&self, budget: Budget, cost: u32) {
        self.wait_pause().await;
        match budget {
            Budget::Sharepoint => {
                self.sharepoint_day.take(cost).await;
                self.sharepoint.take(cost).await;
            }
            Budget::Directory => self.directory.take(cost).await,
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
