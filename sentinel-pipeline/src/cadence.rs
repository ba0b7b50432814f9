//! Freshness per RU: which drives a run reads under an adaptive cadence.
//!
//! A rescan costs at least 1 RU per drive even when nothing changed, yet most drives change
//! rarely and a few all the time. A drive is read again once as long as it had been idle at
//! its last read has passed: a drive that changed at its last read is read at the next run, one
//! idle for a day waits a day. The wait never exceeds the admin's maximum staleness. Successive
//! waits of an idle drive double (0, 1, 2, 4 … run intervals), so a drive that stops changing
//! backs off geometrically, and one change brings it back.
//!
//! Why the whole idle time: the time since a drive's last change estimates how long until its
//! next one. Waiting half of it (the first policy) read a drive that changed once about seven
//! times in the following hour; on the simulated day (docs/scaling.md) that cost 1.7x the RU of
//! hourly rescans for a 7.7x lower median delay. Waiting all of it reads it four times.

use chrono::{DateTime, Duration, Utc};

/// How long after its last read a drive is read again: its idle time then, capped.
pub fn wait_after_check(
    checked_at: DateTime<Utc>,
    changed_at: Option<DateTime<Utc>>,
    max_staleness: Duration,
) -> Duration {
    let idle = checked_at - changed_at.unwrap_or(checked_at).min(checked_at);
    idle.min(max_staleness)
}

/// Whether a drive is due a read at `now`: never read, or its wait has passed.
pub fn drive_due(
    now: DateTime<Utc>,
    checked_at: Option<DateTime<Utc>>,
    changed_at: Option<DateTime<Utc>>,
    max_staleness: Duration,
) -> bool {
    checked_at
        .is_none_or(|checked| now - checked >= wait_after_check(checked, changed_at, max_staleness))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::minutes(minutes)
    }

    #[test]
    fn a_drive_never_read_is_due() {
        assert!(drive_due(at(0), None, None, Duration::hours(4)));
    }

    #[test]
    fn a_drive_that_changed_at_its_last_read_is_due_at_the_next_run() {
        assert!(drive_due(
            at(5),
            Some(at(0)),
            Some(at(0)),
            Duration::hours(4)
        ));
    }

    #[test]
    fn an_idle_drive_waits_as_long_as_it_had_been_idle() {
        // Idle for 60 minutes when last read at minute 100: due from minute 160.
        let (checked, changed) = (Some(at(100)), Some(at(40)));
        assert!(!drive_due(at(155), checked, changed, Duration::hours(4)));
        assert!(drive_due(at(160), checked, changed, Duration::hours(4)));
    }

    #[test]
    fn a_long_idle_drive_waits_no_longer_than_the_maximum_staleness() {
        let (checked, changed) = (Some(at(10_000)), Some(at(0)));
        assert!(!drive_due(at(10_059), checked, changed, Duration::hours(1)));
        assert!(drive_due(at(10_060), checked, changed, Duration::hours(1)));
    }

    proptest! {
        /// Whatever the times (a clock that went back included), the wait is never negative
        /// and never beyond the maximum staleness, and a drive past it is always due.
        #[test]
        fn the_wait_stays_within_zero_and_the_maximum(
            checked in -100_000i64..100_000,
            changed in -100_000i64..100_000,
            max in 1i64..50_000,
            later in 0i64..100_000,
        ) {
            let wait = wait_after_check(at(checked), Some(at(changed)), Duration::minutes(max));
            prop_assert!(wait >= Duration::zero() && wait <= Duration::minutes(max));
            prop_assert!(drive_due(at(checked + max + later), Some(at(checked)), Some(at(changed)), Duration::minutes(max)));
        }
    }
}
