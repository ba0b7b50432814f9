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
///
/// A spend is recorded when the RU are taken, then moved to when the answer came
/// ([`SlidingWindow::settle`]): Graph charged it on arrival, somewhere in between, so the
/// client's copy never expires before Graph's, whatever the request's latency.
#[derive(Debug)]
struct SlidingWindow {
    window: Duration,
    cap: u64,
    /// Takers wait here in turn, so one waiting for room does not hold up settlements.
    queue: tokio::sync::Mutex<()>,
    spent: Mutex<Spent>,
}

/// (time of the newest spend in the bucket, RU in it), oldest first; and their sum.
#[derive(Debug, Default)]
struct Spent {
    buckets: VecDeque<(Instant, u64)>,
    sum: u64,
}

impl Spent {
    fn expire(&mut self, now: Instant, window: Duration) {
        while let Some(&(t, c)) = self.buckets.front() {
            if t + window > now {
                break;
            }
            self.buckets.pop_front();
            self.sum -= c;
        }
    }

    /// A spend joins the newest bucket while it is young, which then expires with its newest
    /// spend: never earlier than Graph forgets any of them.
    fn record(&mut self, now: Instant, cost: u64, bucket: Duration) {
        match self.buckets.back_mut() {
            Some((t, c)) if now.duration_since(*t) < bucket => {
                *t = now;
                *c += cost;
            }
            _ => self.buckets.push_back((now, cost)),
        }
        self.sum += cost;
    }

    /// Takes back `cost` recorded at `at` from the bucket that holds it (the first whose
    /// newest spend is not older), if it has not expired.
    fn unrecord(&mut self, at: Instant, cost: u64) {
        let Some(i) = self.buckets.iter().position(|&(t, _)| t >= at) else {
            return;
        };
        let taken = cost.min(self.buckets[i].1);
        self.buckets[i].1 -= taken;
        self.sum -= taken;
        if self.buckets[i].1 == 0 {
            self.buckets.remove(i);
        }
    }
}

impl SlidingWindow {
    fn new(budget: u32, window: Duration) -> SlidingWindow {
        SlidingWindow {
            window,
            cap: ((budget as f64) * PACE_SHARE) as u64,
            queue: tokio::sync::Mutex::new(()),
            spent: Mutex::new(Spent::default()),
        }
    }

    fn spent(&self) -> std::sync::MutexGuard<'_, Spent> {
        self.spent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `cost` RU, in turn, once the window has room for it; returns when it was recorded.
    async fn take(&self, cost: u32) -> Instant {
        let cost = cost as u64;
        let _turn = self.queue.lock().await;
        loop {
            let wake = {
                let mut spent = self.spent();
                let now = Instant::now();
                spent.expire(now, self.window);
                match spent.buckets.front() {
                    Some(&(t, _)) if spent.sum + cost > self.cap => t + self.window,
                    _ => {
                        spent.record(now, cost, self.window / 1440);
                        return now;
                    }
                }
            };
            tokio::time::sleep_until(wake).await;
        }
    }

    /// Moves a spend recorded at `at` to now, when its answer has come.
    fn settle(&self, at: Instant, cost: u32) {
        let mut spent = self.spent();
        let now = Instant::now();
        spent.unrecord(at, cost as u64);
        spent.expire(now, self.window);
        spent.record(now, cost as u64, self.window / 1440);
    }
}

/// What [`Pacer::acquire`] took, to be settled with [`Pacer::settle`] when the answer comes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Receipt {
    day: Option<Instant>,
    cost: u32,
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
    pub async fn acquire(&self, budget: Budget, cost: u32) -> Receipt {
        self.wait_pause().await;
        let day = match budget {
            Budget::Sharepoint => {
                let at = self.sharepoint_day.take(cost).await;
                self.sharepoint.take(cost).await;
                Some(at)
            }
            Budget::Directory => {
                self.directory.take(cost).await;
                None
            }
        };
        // A pause may have started while this request waited for budget.
        self.wait_pause().await;
        self.counters
            .ru_spent
            .fetch_add(cost as u64, Ordering::Relaxed);
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        Receipt { day, cost }
    }

    /// The answer to a request paid with `receipt` has come (or it failed): Graph charged it
    /// by now, so the day's window counts it from now.
    pub fn settle(&self, receipt: Receipt) {
        if let Some(at) = receipt.day {
            self.sharepoint_day.settle(at, receipt.cost);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A spend settled later than it was taken expires by its settlement: the client's copy of
    /// the window never forgets a spend before Graph (which charged it on arrival) does.
    #[test]
    fn a_settled_spend_counts_from_its_answer_not_from_its_take() {
        let window = Duration::from_secs(1440);
        let bucket = window / 1440;
        let t0 = Instant::now();
        let mut spent = Spent::default();
        spent.record(t0, 5, bucket);
        spent.record(t0 + Duration::from_millis(10), 3, bucket);
        // The first request's answer comes 30 s after it was taken.
        let answered = t0 + Duration::from_secs(30);
        spent.unrecord(t0, 5);
        spent.record(answered, 5, bucket);
        assert_eq!(spent.sum, 8, "settling moves a spend, it does not add one");
        spent.expire(t0 + window + Duration::from_secs(1), window);
        assert_eq!(spent.sum, 5, "the other spend expired with its take");
        spent.expire(answered + window - Duration::from_millis(1), window);
        assert_eq!(
            spent.sum, 5,
            "still counted until a window after its answer"
        );
        spent.expire(answered + window, window);
        assert_eq!(spent.sum, 0);
    }

    #[test]
    fn unrecording_an_expired_spend_takes_nothing_from_newer_ones() {
        let window = Duration::from_secs(1440);
        let t0 = Instant::now();
        let mut spent = Spent::default();
        spent.record(t0 + Duration::from_secs(5), 7, window / 1440);
        spent.unrecord(t0 + Duration::from_secs(9), 4);
        assert_eq!(
            spent.sum, 7,
            "no bucket holds a spend taken after the newest"
        );
    }
}
