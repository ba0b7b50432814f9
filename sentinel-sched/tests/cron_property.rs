//! Any valid 5-field expression's next time is after now and matches it (and no earlier minute
//! does); invalid expressions are rejected with a message. The matcher here is written
//! independently of the crate under test.

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};
use proptest::prelude::*;
use sentinel_sched::CronExpr;

/// Values a numeric field allows, standard semantics.
fn expand(field: &str, lo: u32, hi: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for part in field.split(',') {
        let (range, step) = part
            .split_once('/')
            .map(|(r, s)| (r, s.parse::<u32>().expect("step")))
            .unwrap_or((part, 1));
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (a.parse().expect("a"), b.parse().expect("b"))
        } else if step > 1 {
            (range.parse().expect("a"), hi)
        } else {
            let v = range.parse().expect("v");
            (v, v)
        };
        out.extend((a..=b).step_by(step as usize));
    }
    out
}

fn matches(expr: &str, t: DateTime<Utc>) -> bool {
    let f: Vec<&str> = expr.split_whitespace().collect();
    let dow: Vec<u32> = expand(f[4], 0, 6).into_iter().map(|d| d % 7).collect();
    let dom_ok = expand(f[2], 1, 31).contains(&t.day());
    let dow_ok = dow.contains(&t.weekday().num_days_from_sunday());
    let day_ok = if f[2].starts_with('*') || f[4].starts_with('*') {
        dom_ok && dow_ok
    } else {
        dom_ok || dow_ok
    };
    expand(f[0], 0, 59).contains(&t.minute())
        && expand(f[1], 0, 23).contains(&t.hour())
        && expand(f[3], 1, 12).contains(&t.month())
        && day_ok
}

fn field(lo: u32, hi: u32) -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_string()),
        (1..=(hi - lo).max(1)).prop_map(|k| format!("*/{k}")),
        (lo..=hi).prop_map(|v| v.to_string()),
        (lo..=hi, lo..=hi).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
        (lo..=hi, lo..=hi, 1..5u32).prop_map(|(a, b, k)| format!("{}-{}/{k}", a.min(b), a.max(b))),
        prop::collection::vec(lo..=hi, 1..4).prop_map(|v| v
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")),
    ]
}

fn expression() -> impl Strategy<Value = String> {
    // Days of month up to 28 so every generated expression can fire.
    (
        field(0, 59),
        field(0, 23),
        field(1, 28),
        field(1, 12),
        field(0, 7),
    )
        .prop_map(|(a, b, c, d, e)| format!("{a} {b} {c} {d} {e}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn next_time_is_after_now_and_matches(expr in expression(), secs in 1_577_836_800i64..1_893_456_000) {
        let now = Utc.timestamp_opt(secs, 0).single().expect("time");
        let cron: CronExpr = expr.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let next = cron.next_after(now).expect("a valid expression fires");
        prop_assert!(next > now);
        prop_assert_eq!(next.second(), 0);
        prop_assert!(matches(&expr, next), "{} does not match {}", next, expr);
        // No earlier minute matches (checked over the first three days).
        let mut t = now.with_second(0).expect("t") + Duration::minutes(1);
        let horizon = next.min(now + Duration::days(3));
        while t < horizon {
            prop_assert!(!matches(&expr, t), "{} matches {} before {}", t, expr, next);
            t += Duration::minutes(1);
        }
    }

    #[test]
    fn wrong_field_counts_and_values_are_rejected_with_a_message(
        fields in prop::collection::vec("[0-9*]{1,2}", 0..9).prop_filter("not five", |v| v.len() != 5),
        minute in 60u32..1000,
    ) {
        let err = fields.join(" ").parse::<CronExpr>().expect_err("wrong field count");
        prop_assert!(err.to_string().contains("expected 5 fields"), "{}", err);
        let err = format!("{minute} * * * *").parse::<CronExpr>().expect_err("minute out of range");
        prop_assert!(!err.reason.is_empty());
    }
}
