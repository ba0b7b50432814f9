//! The live panel's share of the app's Graph budget. Every process calling Graph for a tenant
//! spends the same per-app budget, so readers' live look-ups must never starve the scans: all
//! live calls in a tenant together get the share scans leave out (`GRAPH_LIVE_SHARE_PERCENT`,
//! 10% by default), and each signed-in user a smaller share, so one scripted reader cannot take
//! it all. The count is kept in Postgres (`Store::spend_live_ru`), so any number of web
//! processes together stay within the share.

use sentinel_store::{LiveShare, LiveSpend, Store};

use crate::error::WebError;

/// RU a minute one user's live look-ups may spend.
pub const PER_USER_RU_PER_MINUTE: u32 = 60;

/// The shares, per tenant: everyone's together and each user's.
#[derive(Debug, Clone, Copy)]
pub struct LiveBudget {
    panel_ru_per_minute: u32,
}

impl LiveBudget {
    /// `panel_ru_per_minute` for all live calls in a tenant together: the share of the app's
    /// budget scans leave out (`GraphConfig::live_ru_per_minute`).
    pub fn new(panel_ru_per_minute: u32) -> LiveBudget {
        LiveBudget {
            panel_ru_per_minute,
        }
    }

    /// Takes `ru` from `user`'s share in `tenant` and from the panel's; refused (and nothing
    /// taken) when either is spent, with how long to wait.
    pub async fn take(
        &self,
        store: &Store,
        tenant: &str,
        user: &str,
        ru: u32,
    ) -> Result<(), WebError> {
        let caps = (PER_USER_RU_PER_MINUTE, self.panel_ru_per_minute);
        match store.spend_live_ru(tenant, user, ru, caps).await? {
            LiveSpend::Spent => Ok(()),
            LiveSpend::Refused {
                share,
                retry_after_secs,
            } => Err(WebError::LiveBudgetSpent {
                whose: match share {
                    LiveShare::User => "your",
                    LiveShare::Panel => "the live panel's",
                },
                retry_after_secs,
            }),
        }
    }
}
