//! Where "now" comes from: the database's clock in production, a clock the tests move.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

use crate::SchedError;

/// Where the scheduler reads the time: the database's clock, or a manual one in tests.
#[async_trait::async_trait]
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The time now.
    async fn now(&self) -> Result<DateTime<Utc>, SchedError>;
}

/// The database's clock (`now()`): every worker agrees on it, whatever their own clocks say.
#[derive(Debug, Clone)]
pub struct DbClock(pub PgPool);

#[async_trait::async_trait]
impl Clock for DbClock {
    async fn now(&self) -> Result<DateTime<Utc>, SchedError> {
        Ok(sqlx::query_scalar("SELECT now()")
            .fetch_one(&self.0)
            .await?)
    }
}

/// A clock that only moves when told to (forwards or backwards).
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock stopped at `at`.
    pub fn new(at: DateTime<Utc>) -> ManualClock {
        ManualClock(Mutex::new(at))
    }
    /// Moves the clock to `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
    /// Moves the clock on by `by`.
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += by;
    }
}

#[async_trait::async_trait]
impl Clock for ManualClock {
    async fn now(&self) -> Result<DateTime<Utc>, SchedError> {
        Ok(*self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
