//! Fault injection: random rates and exact one-shot counts, settable at start-up and at run time.

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Every fault the simulator can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// 429 with a Retry-After.
    #[serde(rename = "429")]
    TooMany,
    /// 503 with a Retry-After.
    #[serde(rename = "503")]
    Unavailable,
    /// 500 with a Graph error body.
    #[serde(rename = "500")]
    Internal,
    /// Headers sent, then the connection drops mid-body.
    Reset,
    /// The response is delayed by `slow_ms`.
    Slow,
    /// A 200 whose JSON body is cut short.
    Malformed,
    /// A paged response repeats the previous page's last item.
    Duplicate,
    /// A paged response's nextLink is the link that was just requested.
    RepeatNextLink,
    /// A paged response with no items but a nextLink.
    EmptyPage,
}

impl Fault {
    /// Every fault, in declaration order.
    pub const ALL: [Fault; 9] = [
        Fault::TooMany,
        Fault::Unavailable,
        Fault::Internal,
        Fault::Reset,
        Fault::Slow,
        Fault::Malformed,
        Fault::Duplicate,
        Fault::RepeatNextLink,
        Fault::EmptyPage,
    ];

    /// The fault named as in `/_sim/faults` and `--faults` (`429`, `reset`, ...).
    pub fn parse(s: &str) -> Option<Fault> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

/// Current fault settings: `rates` fire at random, `next` fire exactly that many times.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Chance per request (0 to 1) that the fault fires.
    #[serde(default)]
    pub rates: BTreeMap<Fault, f64>,
    /// How many of the next requests get the fault, whatever the rates.
    #[serde(default)]
    pub next: BTreeMap<Fault, u32>,
    /// Delay for [`Fault::Slow`], in milliseconds.
    #[serde(default)]
    pub slow_ms: Option<u64>,
    /// Retry-After (seconds, a fraction allowed) sent with injected 429s and 503s.
    #[serde(default)]
    pub retry_after_secs: Option<f64>,
}

impl Faults {
    /// Parses `429=0.05,reset=0.01` (the CLI form).
    pub fn parse_rates(spec: &str) -> Result<BTreeMap<Fault, f64>, String> {
        let mut rates = BTreeMap::new();
        for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("fault '{part}' must look like NAME=RATE, e.g. 429=0.05"))?;
            let fault = Fault::parse(k.trim()).ok_or_else(|| {
                format!("unknown fault '{}': expected one of 429, 503, 500, reset, slow, malformed, duplicate, repeat_next_link, empty_page", k.trim())
            })?;
            let rate: f64 = v
                .trim()
                .parse()
                .map_err(|_| format!("fault rate '{v}' is not a number"))?;
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!(
                    "fault rate {rate} for '{}' must be between 0 and 1",
                    k.trim()
                ));
            }
            rates.insert(fault, rate);
        }
        Ok(rates)
    }

    /// Refuses rates outside 0 to 1, saying which.
    pub fn validate(&self) -> Result<(), String> {
        for (f, r) in &self.rates {
            if !(0.0..=1.0).contains(r) {
                return Err(format!("rate {r} for {f:?} must be between 0 and 1"));
            }
        }
        Ok(())
    }

    /// Whether `fault` fires now: a pending one-shot is consumed first, else the rate decides.
    pub fn fire(&mut self, fault: Fault, rng: &mut impl Rng) -> bool {
        if let Some(n) = self.next.get_mut(&fault)
            && *n > 0
        {
            *n -= 1;
            return true;
        }
        self.rates
            .get(&fault)
            .is_some_and(|&r| r > 0.0 && rng.random_bool(r.min(1.0)))
    }
}
