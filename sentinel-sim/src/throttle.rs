//! The resource-unit budget Graph enforces per app and tenant, on a sliding window.

use std::collections::{HashMap, VecDeque};

/// Which budget a request draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// SharePoint and OneDrive: RU per minute.
    Sharepoint,
    /// Directory (users, groups): RU per 10 seconds.
    Directory,
    /// SharePoint and OneDrive again: RU per 24 hours ("Avoid getting throttled or blocked in
    /// SharePoint Online": each band's budget holds per minute and per 24 h, 1.2M at 1,250/min).
    SharepointDay,
}

impl Bucket {
    pub fn window_secs(self) -> f64 {
        match self {
            Bucket::Sharepoint => 60.0,
            Bucket::Directory => 10.0,
            Bucket::SharepointDay => 86_400.0,
        }
    }
}

/// Outcome of charging one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Charge {
    Allowed {
        /// Set once 80% of the window's budget is used: (limit, remaining, reset in sim seconds).
        headers: Option<(u32, u32, f64)>,
    },
    /// Over budget: wait this many simulated seconds.
    Throttled { wait_secs: f64, limit: u32 },
    /// The app kept sending while told to wait: blocked (503) for this many simulated seconds.
    Blocked { wait_secs: f64 },
}

/// Requests sent during a pending Retry-After before the app is blocked with 503s.
pub const BLOCK_AFTER_VIOLATIONS: u32 = 10;

#[derive(Debug, Default)]
struct Window {
    entries: VecDeque<(f64, u32)>,
    sum: u64,
    /// Until when the app was told to wait (simulated seconds).
    retry_until: f64,
    /// Requests that ignored a pending Retry-After.
    violations: u32,
}

/// Sliding-window budgets keyed by (app, bucket).
#[derive(Debug, Default)]
pub struct Throttle {
    windows: HashMap<(String, Bucket), Window>,
}

impl Throttle {
    /// RU charged to `app`'s `bucket` within its window ending now (as of the last charge).
    pub fn window_sum(&self, app: &str, bucket: Bucket) -> u64 {
        self.windows
            .get(&(app.to_string(), bucket))
            .map_or(0, |w| w.sum)
    }

    /// Charges `cost` RU at simulated time `now`; throttled requests still count, as on Graph.
    pub fn charge(
        &mut self,
        app: &str,
        bucket: Bucket,
        cost: u32,
        budget: u32,
        now: f64,
    ) -> Charge {
        let window = bucket.window_secs();
        let w = self.windows.entry((app.to_string(), bucket)).or_default();
        while let Some(&(t, c)) = w.entries.front() {
            if t > now - window {
                break;
            }
            w.entries.pop_front();
            w.sum -= c as u64;
        }
        let before = w.sum;
        w.entries.push_back((now, cost));
        w.sum += cost as u64;
        if now < w.retry_until {
            w.violations += 1;
            if w.violations > BLOCK_AFTER_VIOLATIONS {
                // Graph: an app that keeps exceeding its limits gets continuing 503s.
                w.retry_until = w.retry_until.max(now + window);
                return Charge::Blocked {
                    wait_secs: w.retry_until - now,
                };
            }
        } else if w.violations > 0 && now >= w.retry_until {
            w.violations = 0;
        }
        if before + cost as u64 > budget as u64 {
            // Wait until enough of the window has slid out for this request to fit.
            let mut freed = 0u64;
            let need = (before + cost as u64).saturating_sub(budget as u64);
            let mut wait = window;
            for &(t, c) in &w.entries {
                freed += c as u64;
                if freed >= need {
                    wait = (t + window - now).max(0.0);
                    break;
                }
            }
            w.retry_until = w.retry_until.max(now + wait);
            return Charge::Throttled {
                wait_secs: wait,
                limit: budget,
            };
        }
        let used = w.sum;
        let headers = (used * 5 >= budget as u64 * 4).then(|| {
            let reset = w
                .entries
                .front()
                .map(|&(t, _)| (t + window - now).max(0.0))
                .unwrap_or(0.0);
            (budget, budget.saturating_sub(used as u32), reset)
        });
        Charge::Allowed { headers }
    }
}

/// Of two budgets' answers to one request, the one the caller must obey: blocked over
/// throttled over allowed, the longer wait first; allowed answers keep the minute's headers.
pub fn stricter(a: Charge, b: Charge) -> Charge {
    let rank = |c: &Charge| match c {
        Charge::Allowed { .. } => (0, 0.0),
        Charge::Throttled { wait_secs, .. } => (1, *wait_secs),
        Charge::Blocked { wait_secs } => (2, *wait_secs),
    };
    let (ra, rb) = (rank(&a), rank(&b));
    if rb.0 > ra.0 || (rb.0 == ra.0 && rb.0 > 0 && rb.1 > ra.1) {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_budget_binds_when_the_minute_does_not() {
        let mut t = Throttle::default();
        let mut last = Charge::Allowed { headers: None };
        // 10 RU a minute for 20 minutes against 1,000/min and 150/day.
        for minute in 0..20 {
            let now = minute as f64 * 60.0;
            let m = t.charge("a", Bucket::Sharepoint, 10, 1_000, now);
            let d = t.charge("a", Bucket::SharepointDay, 10, 150, now);
            assert!(matches!(m, Charge::Allowed { .. }));
            last = stricter(m, d);
        }
        match last {
            Charge::Throttled { wait_secs, limit } => {
                assert_eq!(limit, 150);
                assert!(wait_secs > 80_000.0, "the day slides slowly: {wait_secs}");
            }
            other => panic!("expected the day's throttle, got {other:?}"),
        }
    }

    #[test]
    fn over_budget_is_throttled_until_the_window_slides() {
        let mut t = Throttle::default();
        for i in 0..10 {
            assert!(matches!(
                t.charge("a", Bucket::Sharepoint, 100, 1000, i as f64),
                Charge::Allowed { .. }
            ));
        }
        match t.charge("a", Bucket::Sharepoint, 100, 1000, 10.0) {
            Charge::Throttled { wait_secs, .. } => {
                assert!((wait_secs - 50.0).abs() < 1e-9, "{wait_secs}")
            }
            other => panic!("expected throttling, got {other:?}"),
        }
        // Another app has its own budget.
        assert!(matches!(
            t.charge("b", Bucket::Sharepoint, 100, 1000, 10.0),
            Charge::Allowed { headers: None }
        ));
    }

    #[test]
    fn an_app_ignoring_retry_after_is_blocked_then_released() {
        let mut t = Throttle::default();
        assert!(matches!(
            t.charge("a", Bucket::Sharepoint, 10, 10, 0.0),
            Charge::Allowed { .. }
        ));
        let mut outcomes = Vec::new();
        for i in 0..=BLOCK_AFTER_VIOLATIONS + 1 {
            outcomes.push(t.charge("a", Bucket::Sharepoint, 1, 10, 1.0 + i as f64 * 0.01));
        }
        assert!(matches!(outcomes[0], Charge::Throttled { .. }));
        assert!(
            matches!(outcomes.last(), Some(Charge::Blocked { .. })),
            "{outcomes:?}"
        );
        // Once the block has passed and the window slid, requests are served again.
        assert!(matches!(
            t.charge("a", Bucket::Sharepoint, 1, 10, 200.0),
            Charge::Allowed { .. }
        ));
    }

    #[test]
    fn rate_limit_headers_appear_past_eighty_percent() {
        let mut t = Throttle::default();
        assert!(matches!(
            t.charge("a", Bucket::Directory, 70, 100, 0.0),
            Charge::Allowed { headers: None }
        ));
        match t.charge("a", Bucket::Directory, 10, 100, 1.0) {
            Charge::Allowed {
                headers: Some((limit, remaining, reset)),
            } => {
                assert_eq!((limit, remaining), (100, 20));
                assert!((reset - 9.0).abs() < 1e-9);
            }
            other => panic!("expected headers, got {other:?}"),
        }
    }
}
