//! The live panel's share of the app's Graph budget. Every process calling Graph for a tenant
//! spends the same per-app budget, so readers' live look-ups must never starve the scans: all
//! live calls together get the share scans leave out (`GRAPH_LIVE_SHARE_PERCENT`, 10% by
//! default), and each signed-in user a smaller share, so one scripted reader cannot take it all.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};

use crate::error::WebError;

/// RU a minute one user's live look-ups may spend.
pub const PER_USER_RU_PER_MINUTE: u32 = 60;

/// The limiters: one for everyone together, one keyed by user.
#[derive(Debug)]
pub struct LiveBudget {
    all: DefaultDirectRateLimiter,
    per_user: DefaultKeyedRateLimiter<String>,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

impl LiveBudget {
    /// `panel_ru_per_minute` for all live calls together: the share of the app's budget scans
    /// leave out (`GraphConfig::live_ru_per_minute`).
    pub fn new(panel_ru_per_minute: u32) -> LiveBudget {
        LiveBudget {
            all: governor::RateLimiter::direct(per_minute(panel_ru_per_minute)),
            per_user: governor::RateLimiter::keyed(per_minute(PER_USER_RU_PER_MINUTE)),
        }
    }

    /// Takes `ru` from `user`'s share and from the panel's; refused (and nothing taken from
    /// the panel's) when either is spent, with how long to wait.
    pub fn take(&self, user: &str, ru: u32) -> Result<(), WebError> {
        let n = NonZeroU32::new(ru).unwrap_or(NonZeroU32::MIN);
        let wait = |not_until: governor::NotUntil<_>| {
            not_until.wait_time_from(DefaultClock::default().now())
        };
        let refused = |wait: Duration, whose: &'static str| WebError::LiveBudgetSpent {
            whose,
            retry_after_secs: wait.as_secs().max(1),
        };
        match self.per_user.check_key_n(&user.to_string(), n) {
            Ok(Ok(())) => {}
            Ok(Err(not_until)) => return Err(refused(wait(not_until), "your")),
            Err(_) => return Err(refused(Duration::from_secs(60), "your")),
        }
        match self.all.check_n(n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(refused(wait(not_until), "the live panel's")),
            Err(_) => Err(refused(Duration::from_secs(60), "the live panel's")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_has_a_share_and_all_together_a_tenth() {
        // The default share of the smallest band: 10% of 1,250.
        let budget = LiveBudget::new(125);
        for _ in 0..12 {
            budget.take("reader-1", 5).expect("within the user's share");
        }
        let refused = budget
            .take("reader-1", 5)
            .expect_err("the user's share is spent");
        assert!(
            refused.public().message.contains("your share"),
            "{}",
            refused.public().message
        );
        budget
            .take("reader-2", 5)
            .expect("another user has a share of their own");
        // 125 RU for everyone: 60 + 5 spent, 60 left; a third user's full minute fits, a
        // fourth's does not.
        for _ in 0..12 {
            budget.take("reader-3", 5).expect("reader-3");
        }
        let refused = budget
            .take("reader-4", 5)
            .expect_err("the panel's share is spent");
        assert!(refused.public().message.contains("the live panel's share"));
    }
}
