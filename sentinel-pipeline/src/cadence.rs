//! Freshness per RU: which drives a run reads under an adaptive cadence.
//!
//! A rescan costs at least 1 RU per drive even when nothing changed, yet most drives change
//! rarely and a few all the time. A drive is read again once twice as long as it had been idle
//! at its last read has passed: a drive that changed at its last read is read at the next run,
//! one idle for an hour waits two. The wait never exceeds the admin's maximum staleness.
//! Successive waits of an idle drive triple after the first (0, 2, 6, 18 … run intervals), so a
//! drive that stops changing backs off geometrically, and one change brings it back.
//!
//! Why twice the idle time: the time since a drive's last change estimates how long until its
//! next one. Waiting half of it (the first policy) read a drive that changed once about seven
//! times in the following hour; on the simulated day (docs/scaling.md) that cost 1.7x the RU of
//! hourly rescans for a 7.7x lower median delay. Waiting all of it read the drive 7 times in
//! the four hours after a change (at 5, 10, 15, 25, 45, 85 and 165 minutes), where hourly
//! rescans read it 4 times, and cost 1.02x their RU on the large tenant. Twice the idle time
//! reads it 5 times (5, 10, 20, 50, 140); a drive that turns busy again after a lull is found a
//! little later, which the median barely shows since busy drives are read every run.
//!
//! Why each drive has its own cap, between three quarters of the maximum and all of it: every
//! drive read by a first scan and idle since would otherwise come due in the same run once the
//! maximum passed, and again each maximum after; on the large tenant that is about 17,000
//! delta rounds in one run, which holds up the busy drives read behind them. Caps spread over
//! the last quarter spread those rounds over a quarter of the maximum, for at most a third
//! more reads of an idle drive (an eighth more on average).

use chrono::{DateTime, Duration, Utc};
use std::hash::{DefaultHasher, Hash, Hasher};

/// How many times its idle time a drive waits (see the module's documentation).
const WAIT_PER_IDLE: i32 = 2;

/// How long after its last read a drive is read again: twice its idle time then, capped.
pub fn wait_after_check(
    drive_id: &str,
    checked_at: DateTime<Utc>,
    changed_at: Option<DateTime<Utc>>,
    max_staleness: Duration,
) -> Duration {
    let idle = checked_at - changed_at.unwrap_or(checked_at).min(checked_at);
    (idle * WAIT_PER_IDLE).min(drive_cap(drive_id, max_staleness))
}

/// The drive's own cap: the maximum less a fraction of its last quarter drawn from the drive's
/// id. `DefaultHasher::new()` has fixed keys, so one build gives a drive the same cap in every
/// run; another build may shift it once, which costs nothing.
fn drive_cap(drive_id: &str, max_staleness: Duration) -> Duration {
    let mut hasher = DefaultHasher::new();
    drive_id.hash(&mut hasher);
    let fraction = i128::from(hasher.finish() % 1024);
    let max = i128::from(max_staleness.num_milliseconds().max(0));
    let cut = max / 4 * fraction / 1024;
    Duration::milliseconds(i64::try_from(max - cut).unwrap_or(i64::MAX))
}

/// Whether a drive is due a read at `now`: never read, or its wait has passed.
pub fn drive_due(
    now: DateTime<Utc>,
    drive_id: &str,
    checked_at: Option<DateTime<Utc>>,
    changed_at: Option<DateTime<Utc>>,
    max_staleness: Duration,
) -> bool {
    checked_at.is_none_or(|checked| {
        now - checked >= wait_after_check(drive_id, checked, changed_at, max_staleness)
    })
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
        assert!(drive_due(at(0), "d", None, None, Duration::hours(4)));
    }

    #[test]
    fn a_drive_that_changed_at_its_last_read_is_due_at_the_next_run() {
        assert!(drive_due(
            at(5),
            "d",
            Some(at(0)),
            Some(at(0)),
            Duration::hours(4)
        ));
    }

    #[test]
    fn an_idle_drive_waits_twice_as_long_as_it_had_been_idle() {
        // Idle for 60 minutes when last read at minute 100: due from minute 220.
        let (checked, changed) = (Some(at(100)), Some(at(40)));
        assert!(!drive_due(
            at(215),
            "d",
            checked,
            changed,
            Duration::hours(4)
        ));
        assert!(drive_due(
            at(220),
            "d",
            checked,
            changed,
            Duration::hours(4)
        ));
    }

    #[test]
    fn a_drive_that_changed_once_is_read_five_times_in_the_four_hours_after() {
        // Runs every 5 minutes; the drive's change was seen by the run at minute 5, and a read
        // that sees a change records it at the read.
        let (changed, max) = (at(5), Duration::hours(4));
        let mut checked = at(5);
        let mut reads = vec![5];
        for minute in (10..=245).step_by(5) {
            if drive_due(at(minute), "d", Some(checked), Some(changed), max) {
                reads.push(minute);
                checked = at(minute);
            }
        }
        assert_eq!(reads, [5, 10, 20, 50, 140]);
    }

    #[test]
    fn a_long_idle_drive_waits_no_longer_than_the_maximum_staleness() {
        let (checked, changed) = (Some(at(10_000)), Some(at(0)));
        assert!(drive_due(
            at(10_060),
            "d",
            checked,
            changed,
            Duration::hours(1)
        ));
        assert!(!drive_due(
            at(10_044),
            "d",
            checked,
            changed,
            Duration::hours(1)
        ));
    }

    #[test]
    fn idle_drives_read_together_come_due_over_the_last_quarter_of_the_maximum() {
        let (checked, changed, max) = (Some(at(10_000)), Some(at(0)), Duration::hours(4));
        let drives: Vec<String> = (0..1000).map(|i| format!("b!drive-{i}")).collect();
        let due_at = |minute| {
            drives
                .iter()
                .filter(|d| drive_due(at(minute), d, checked, changed, max))
                .count()
        };
        assert_eq!(
            due_at(10_179),
            0,
            "none before three quarters of the maximum"
        );
        let halfway = due_at(10_210);
        assert!(
            (300..=700).contains(&halfway),
            "{halfway} of 1000 due halfway through the last quarter"
        );
        assert_eq!(due_at(10_240), 1000, "all by the maximum");
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
            drive in "[a-zA-Z0-9!_-]{1,40}",
        ) {
            let wait = wait_after_check(&drive, at(checked), Some(at(changed)), Duration::minutes(max));
            prop_assert!(wait >= Duration::zero() && wait <= Duration::minutes(max));
            prop_assert!(drive_due(at(checked + max + later), &drive, Some(at(checked)), Some(at(changed)), Duration::minutes(max)));
        }
    }
}
