//! Running a transaction again when Postgres failed it to break a deadlock.
//!
//! Two writers that lock the same rows or tables in opposite orders (a scan's page write and
//! another process applying a new schema, or two scans touching a shared row) make Postgres
//! fail one of them with "deadlock detected". Nothing of that transaction was written, and
//! Postgres' documented remedy is to run it again: a scan that stopped there lost its run.

use std::future::Future;
use std::time::{Duration, SystemTime};

use retry_policies::policies::ExponentialBackoff;
use retry_policies::{RetryDecision, RetryPolicy};

use crate::StoreError;

/// How many times a transaction runs again before its error is the caller's.
pub const TRANSIENT_RETRIES: u32 = 4;

/// Runs `transaction` (which must begin and commit its own transaction, so that a failed
/// attempt left nothing behind) and runs it again, after a short randomised pause, while it
/// fails with [`StoreError::is_transient`]; any other error, or the last one, is returned.
pub async fn retry_transient<T, F, Fut>(mut transaction: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    // Jittered: the two sides of a deadlock must not meet again at the same moment.
    let policy = ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(50), Duration::from_secs(2))
        .build_with_max_retries(TRANSIENT_RETRIES);
    let mut retries = 0;
    loop {
        match transaction().await {
            Err(e) if e.is_transient() => match policy.should_retry(SystemTime::now(), retries) {
                RetryDecision::Retry { execute_after } => {
                    retries += 1;
                    tracing::warn!(error = %e, retries, "transaction failed by Postgres to break a conflict: running it again");
                    let pause = execute_after
                        .duration_since(SystemTime::now())
                        .unwrap_or_default();
                    tokio::time::sleep(pause).await;
                }
                RetryDecision::DoNotRetry => return Err(e),
            },
            outcome => return outcome,
        }
    }
}
