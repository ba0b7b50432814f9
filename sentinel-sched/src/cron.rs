//! Standard 5-field cron (minute, hour, day of month, month, day of week), in UTC, at minute
//! resolution. The `cron` crate computes the times; this module gives it standard semantics:
//! day-of-week `0` and `7` are Sunday (the crate follows Quartz: `1` is Sunday), and when both
//! day of month and day of week are restricted a time matches either (as Vixie cron does).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

/// A rejected expression, with what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron expression '{expr}': {reason}")]
pub struct CronError {
    /// The expression as given.
    pub expr: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A parsed standard 5-field cron expression.
#[derive(Debug, Clone)]
pub struct CronExpr {
    source: String,
    /// Both day fields as given (or only day of month when both are restricted).
    primary: cron::Schedule,
    /// When both day fields are restricted: the day-of-week half of the OR.
    alternate: Option<cron::Schedule>,
}

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Expands a standard day-of-week field into the set of days (0 = Sunday .. 6 = Saturday).
fn day_of_week_set(field: &str) -> Result<[bool; 7], String> {
    let day = |s: &str| -> Result<u32, String> {
        let upper = s.to_ascii_uppercase();
        if let Some(i) = DAY_NAMES.iter().position(|d| *d == upper) {
            return Ok(i as u32);
        }
        match s.parse::<u32>() {
            Ok(n) if n <= 7 => Ok(n),
            _ => Err(format!(
                "day of week '{s}' must be 0-7 (0 and 7 are Sunday) or SUN-SAT"
            )),
        }
    };
    let mut set = [false; 7];
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => match s.parse::<u32>() {
                Ok(n) if n > 0 => (r, n),
                _ => return Err(format!("step '{s}' in '{part}' must be a positive number")),
            },
            None => (part, 1),
        };
        let (lo, hi) = match range {
            "*" => (0, 6),
            r => match r.split_once('-') {
                Some((a, b)) => (day(a)?, day(b)?),
                None if step > 1 => (day(r)?, 6),
                None => (day(r)?, day(r)?),
            },
        };
        if lo > hi {
            return Err(format!("range '{range}' runs backwards"));
        }
        for d in (lo..=hi).step_by(step as usize) {
            set[(d % 7) as usize] = true;
        }
    }
    Ok(set)
}

fn schedule(
    minute: &str,
    hour: &str,
    dom: &str,
    month: &str,
    dow: &str,
) -> Result<cron::Schedule, String> {
    cron::Schedule::from_str(&format!("0 {minute} {hour} {dom} {month} {dow}"))
        .map_err(|e| e.to_string())
}

impl FromStr for CronExpr {
    type Err = CronError;

    fn from_str(expr: &str) -> Result<CronExpr, CronError> {
        let err = |reason: String| CronError {
            expr: expr.to_string(),
            reason,
        };
        let fields: Vec<&str> = expr.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}{}",
                fields.len(),
                if fields.len() > 5 {
                    "; seconds and years are not supported"
                } else {
                    ""
                }
            )));
        }
        if let Some(bad) = fields.iter().find(|f| {
            f.chars()
                .any(|c| !(c.is_ascii_alphanumeric() || ",-*/".contains(c)))
        }) {
            return Err(err(format!(
                "field '{bad}' has a character standard cron does not use"
            )));
        }
        let [minute, hour, dom, month, dow] =
            [fields[0], fields[1], fields[2], fields[3], fields[4]];
        let days = day_of_week_set(dow).map_err(err)?;
        // The crate numbers days 1 (Sunday) to 7 (Saturday).
        let quartz_dow: Vec<String> = (0..7)
            .filter(|&d| days[d])
            .map(|d| (d + 1).to_string())
            .collect();
        let quartz_dow = quartz_dow.join(",");
        let dom_restricted = !dom.starts_with('*');
        let dow_restricted = !dow.starts_with('*');
        let (primary, alternate) = if dom_restricted && dow_restricted {
            (
                schedule(minute, hour, dom, month, "*").map_err(err)?,
                Some(schedule(minute, hour, "*", month, &quartz_dow).map_err(err)?),
            )
        } else {
            (
                schedule(minute, hour, dom, month, &quartz_dow).map_err(err)?,
                None,
            )
        };
        let parsed = CronExpr {
            source: fields.join(" "),
            primary,
            alternate,
        };
        // An expression that parses but never fires (e.g. February 30th) is a mistake too.
        if parsed.next_after(DateTime::<Utc>::UNIX_EPOCH).is_none() {
            return Err(err("it never fires".into()));
        }
        Ok(parsed)
    }
}

impl CronExpr {
    /// The first time strictly after `t` that the expression fires.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let a = self.primary.after(&t).next();
        let b = self.alternate.as_ref().and_then(|s| s.after(&t).next());
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next `n` times after `t` (for previews).
    pub fn upcoming(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut cur = t;
        while out.len() < n {
            match self.next_after(cur) {
                Some(next) => {
                    out.push(next);
                    cur = next;
                }
                None => break,
            }
        }
        out
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Timelike};

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("valid time")
    }

    #[test]
    fn weekdays_are_standard() {
        // 2026-11-27 is a Friday.
        let e: CronExpr = "0 9 * * 1-5".parse().expect("valid");
        assert_eq!(
            e.next_after(at(2026, 11, 27, 10, 0)),
            Some(at(2026, 11, 30, 9, 0)),
            "Friday 10:00 -> Monday 09:00"
        );
        let sunday: CronExpr = "30 6 * * 0".parse().expect("valid");
        assert_eq!(
            sunday
                .next_after(at(2026, 11, 27, 10, 0))
                .map(|t| t.weekday()),
            Some(chrono::Weekday::Sun)
        );
        let seven: CronExpr = "30 6 * * 7".parse().expect("valid");
        assert_eq!(
            seven.next_after(at(2026, 11, 27, 10, 0)),
            sunday.next_after(at(2026, 11, 27, 10, 0))
        );
        let names: CronExpr = "0 12 * * MON-FRI".parse().expect("valid");
        assert_eq!(
            names.next_after(at(2026, 11, 28, 0, 0)),
            Some(at(2026, 11, 30, 12, 0))
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_when_both_are_given() {
        // The 1st of the month or any Friday.
        let e: CronExpr = "0 0 1 * 5".parse().expect("valid");
        assert_eq!(
            e.next_after(at(2026, 11, 22, 0, 0)),
            Some(at(2026, 11, 27, 0, 0)),
            "a Friday comes first"
        );
        assert_eq!(
            e.next_after(at(2026, 11, 27, 0, 0)),
            Some(at(2026, 12, 1, 0, 0)),
            "then the 1st"
        );
    }

    #[test]
    fn next_is_strictly_after_and_on_the_minute() {
        let e: CronExpr = "*/15 * * * *".parse().expect("valid");
        let t = at(2026, 1, 1, 0, 15);
        let n = e.next_after(t).expect("fires");
        assert_eq!(n, at(2026, 1, 1, 0, 30));
        assert_eq!(n.second(), 0);
        assert_eq!(
            e.upcoming(t, 3),
            vec![
                at(2026, 1, 1, 0, 30),
                at(2026, 1, 1, 0, 45),
                at(2026, 1, 1, 1, 0)
            ]
        );
    }

    #[test]
    fn invalid_expressions_say_what_is_wrong() {
        for (expr, needle) in [
            ("* * * *", "expected 5 fields"),
            ("0 * * * * *", "seconds"),
            ("0 0 * * * * 2027", "seconds"),
            ("61 * * * *", "61"),
            ("* 24 * * *", "24"),
            ("* * 0 * *", "0"),
            ("* * * 13 *", "13"),
            ("* * * * 8", "0-7"),
            ("* * * * 5-2", "backwards"),
            ("* * L * *", "L"),
            ("* * ? * *", "character"),
            ("0 0 30 2 *", "never fires"),
            ("garbage", "expected 5 fields"),
            ("*/0 * * * *", "0"),
        ] {
            let err = expr.parse::<CronExpr>().expect_err(expr);
            assert!(err.to_string().contains(needle), "{expr}: {err}");
        }
    }
}
