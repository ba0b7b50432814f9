//! The live panel's spending of a tenant's Graph budget, counted in Postgres so that every web
//! process shares one count (`live_spend`).
//!
//! A sliding minute, estimated as Cloudflare's rate limiter does: this minute's spending plus
//! the previous minute's weighted by how much of it the sliding minute still covers. Fixed
//! minutes alone would let a burst at a minute's end and another at the next one's start spend
//! twice the share within sixty seconds.

use crate::{Store, StoreError};

/// Whose share refused a live call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveShare {
    /// The signed-in user's own share.
    User,
    /// Everyone's live calls together.
    Panel,
}

/// What spending live RU came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveSpend {
    /// Taken from both shares.
    Spent,
    /// Nothing taken: `share` is spent for now; try again in `retry_after_secs`.
    Refused {
        /// The share that is spent.
        share: LiveShare,
        /// Seconds until the next minute begins.
        retry_after_secs: u64,
    },
}

/// Adds `$3` RU to principal `$2`'s count this minute if the sliding minute stays within `$4`;
/// returns the new count when it did. The first call of a minute inserts.
const SPEND: &str = "
WITH w AS (
    SELECT date_trunc('minute', now()) AS minute,
           1 - extract(epoch FROM now() - date_trunc('minute', now())) / 60 AS prev_weight
), prev AS (
    SELECT coalesce((SELECT ru FROM live_spend, w
                     WHERE tenant_id = $1 AND principal = $2
                       AND live_spend.minute = w.minute - interval '1 minute'), 0) AS ru
)
INSERT INTO live_spend AS s (tenant_id, principal, minute, ru)
SELECT $1, $2, w.minute, $3 FROM w, prev WHERE $3 + prev.ru * w.prev_weight <= $4
ON CONFLICT (tenant_id, principal, minute) DO UPDATE SET ru = s.ru + EXCLUDED.ru
    WHERE s.ru + EXCLUDED.ru
          + (SELECT prev.ru * w.prev_weight FROM prev, w) <= $4
RETURNING s.ru";

impl Store {
    /// Spends `ru` of the live panel's budget in `tenant`: from `user`'s share (`user_cap` RU
    /// a sliding minute) and from everyone's together (`panel_cap`), from both or from
    /// neither. Every process calling this shares the count.
    pub async fn spend_live_ru(
        &self,
        tenant: &str,
        user: &str,
        ru: u32,
        (user_cap, panel_cap): (u32, u32),
    ) -> Result<LiveSpend, StoreError> {
        let mut tx = self.pool.begin().await?;
        for (principal, cap, share) in [
            (user, user_cap, LiveShare::User),
            ("", panel_cap, LiveShare::Panel),
        ] {
            let spent: Option<i32> = sqlx::query_scalar(SPEND)
                .bind(tenant)
                .bind(principal)
                .bind(i32::try_from(ru).unwrap_or(i32::MAX))
                .bind(i32::try_from(cap).unwrap_or(i32::MAX))
                .fetch_optional(&mut *tx)
                .await?;
            if spent.is_none() {
                // Nothing of this call stays counted; the window has moved on by the next minute.
                tx.rollback().await?;
                let retry_after_secs: i64 = sqlx::query_scalar(
                    "SELECT greatest(1, ceil(60 - extract(epoch FROM now() - date_trunc('minute', now()))))::bigint",
                )
                .fetch_one(&self.pool)
                .await?;
                return Ok(LiveSpend::Refused {
                    share,
                    retry_after_secs: retry_after_secs.unsigned_abs(),
                });
            }
        }
        sqlx::query(
            "DELETE FROM live_spend WHERE tenant_id = $1 \
               AND minute < date_trunc('minute', now()) - interval '1 minute'",
        )
        .bind(tenant)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(LiveSpend::Spent)
    }
}
