//! The activity model: people changing files all day, a few drives taking most of the changes,
//! and the simulator's own account of how long each change waited to be read.
//!
//! `POST /_sim/activity {"changesPerHour": 600, "hotExponent": 1.1}` starts it: changes arrive
//! as a Poisson process in simulated time, steady over the day, each in a drive drawn from a
//! Zipf law over a fixed random ranking of the live drives (the drive of rank r takes a share
//! proportional to 1/r^s: with s = 1.1 over 3,000 drives, the top 1% take about half). Each
//! change is made when the first Graph request after its time arrives: nothing can observe a
//! change before then, so its time is exact without a clock task.
//!
//! A change counts as read when a delta round of its drive that started after it (its
//! snapshot sequence at or past the change's) hands out its deltaLink. The worker writes the
//! round's last page right after, so this is the delay to its appearance in the store within a
//! page's write. `GET /_sim/activity` reports it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::control::bad_request;
use crate::state::SimState;

/// How much activity, and how concentrated.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivityModel {
    /// Changes per simulated hour across the tenant (0 stops the activity).
    pub changes_per_hour: f64,
    /// Zipf exponent over the drives' ranking: 0 spreads changes evenly, 1 and above
    /// concentrates them on a few drives.
    #[serde(default = "default_exponent")]
    pub hot_exponent: f64,
}

fn default_exponent() -> f64 {
    1.1
}

/// One change the model made.
#[derive(Debug, Clone)]
struct Change {
    drive: usize,
    /// The tenant's sequence once made: rounds with a snapshot at or past it return it.
    seq: u64,
    /// Simulated seconds since start-up.
    at: f64,
    /// When a round of its drive first returned it.
    seen: Option<f64>,
}

/// The running model and what it did.
#[derive(Debug)]
struct Running {
    model: ActivityModel,
    started: f64,
    next_at: f64,
    drives: Vec<usize>,
    pick: WeightedIndex<f64>,
    rng: ChaCha8Rng,
    changes: Vec<Change>,
    /// Indexes into `changes` of changes not read yet, per drive.
    pending: HashMap<usize, Vec<usize>>,
}

/// The activity state of one simulated tenant.
#[derive(Debug, Default)]
pub struct Activity(Option<Running>);

impl Running {
    fn start(state: &SimState, model: ActivityModel) -> Option<Running> {
        let mut rng = ChaCha8Rng::seed_from_u64(state.config.seed ^ 0xAC71);
        let mut drives: Vec<usize> = {
            let t = state.read_tenant();
            (0..t.drives.len()).filter(|&d| t.drive_live(d)).collect()
        };
        drives.shuffle(&mut rng);
        let weights = (1..=drives.len()).map(|r| 1.0 / (r as f64).powf(model.hot_exponent));
        let pick = WeightedIndex::new(weights).ok()?;
        let now = state.sim_elapsed();
        let mut running = Running {
            model,
            started: now,
            next_at: now,
            drives,
            pick,
            rng,
            changes: Vec::new(),
            pending: HashMap::new(),
        };
        running.next_at += running.gap();
        Some(running)
    }

    /// Simulated seconds to the next change (exponential: a Poisson process).
    fn gap(&mut self) -> f64 {
        let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
        -u.ln() * 3600.0 / self.model.changes_per_hour
    }
}

/// Makes every change due by now (called before each Graph request is handled).
pub fn catch_up(state: &SimState) {
    let mut activity = state.lock_activity();
    let Some(run) = activity.0.as_mut() else {
        return;
    };
    let now = state.sim_elapsed();
    if run.next_at > now {
        return;
    }
    let mut t = state.write_tenant();
    while run.next_at <= now {
        let at = run.next_at;
        let d = run.drives[run.pick.sample(&mut run.rng)];
        let unix = state.sim_unix_at(at);
        if crate::mutate::change_in_drive(&mut t, &mut run.rng, d, unix).is_some() {
            run.pending.entry(d).or_default().push(run.changes.len());
            run.changes.push(Change {
                drive: d,
                seq: t.seq,
                at,
                seen: None,
            });
        }
        run.next_at += run.gap();
    }
}

/// A delta round of drive `d` whose snapshot was `snap` handed out its deltaLink.
pub fn round_done(state: &SimState, d: usize, snap: u64) {
    let mut activity = state.lock_activity();
    let Some(run) = activity.0.as_mut() else {
        return;
    };
    let Some(waiting) = run.pending.get_mut(&d) else {
        return;
    };
    let now = state.sim_elapsed();
    waiting.retain(|&c| {
        let change = &mut run.changes[c];
        if change.seq <= snap {
            change.seen = Some(now);
        }
        change.seen.is_none()
    });
}

/// The `q` quantile of sorted values (nearest rank), 0 when empty.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// `GET /_sim/activity`: the model, how many changes it made, and how long they waited to be
/// read (simulated seconds); changes still unread are counted apart with their ages.
pub(crate) async fn report(State(state): State<Arc<SimState>>) -> Response {
    catch_up(&state);
    let activity = state.lock_activity();
    let Some(run) = activity.0.as_ref() else {
        return Json(json!({"model": null})).into_response();
    };
    let now = state.sim_elapsed();
    let mut delays: Vec<f64> = run
        .changes
        .iter()
        .filter_map(|c| c.seen.map(|s| s - c.at))
        .collect();
    delays.sort_by(f64::total_cmp);
    let mut ages: Vec<f64> = run
        .changes
        .iter()
        .filter(|c| c.seen.is_none())
        .map(|c| now - c.at)
        .collect();
    ages.sort_by(f64::total_cmp);
    let mut per_drive: HashMap<usize, usize> = HashMap::new();
    for c in &run.changes {
        *per_drive.entry(c.drive).or_default() += 1;
    }
    let mut counts: Vec<usize> = per_drive.values().copied().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let top = run.drives.len().div_ceil(100).max(1);
    let top_share = counts.iter().take(top).sum::<usize>() as f64 / run.changes.len().max(1) as f64;
    Json(json!({
        "model": run.model,
        "simulatedSecs": now - run.started,
        "changes": run.changes.len(),
        "drives": run.drives.len(),
        "drivesChanged": per_drive.len(),
        // The share of the changes the busiest 1% of the drives took.
        "topDrivesShare": top_share,
        "read": delays.len(),
        "delaySecs": {
            "median": quantile(&delays, 0.5),
            "p95": quantile(&delays, 0.95),
            "max": delays.last().copied().unwrap_or(0.0),
        },
        "unread": ages.len(),
        "unreadAgeSecs": {
            "median": quantile(&ages, 0.5),
            "max": ages.last().copied().unwrap_or(0.0),
        },
    }))
    .into_response()
}

/// `POST /_sim/activity`: starts the model afresh (its account with it), or stops it with
/// `changesPerHour: 0`.
pub(crate) async fn set(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    let model: ActivityModel = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => {
            return bad_request(&format!(
                "expected {{\"changesPerHour\": N, \"hotExponent\": s (optional, default 1.1)}}: {e}"
            ));
        }
    };
    if !(model.changes_per_hour.is_finite() && (0.0..=1e6).contains(&model.changes_per_hour)) {
        return bad_request("changesPerHour must be between 0 and 1000000");
    }
    if !(model.hot_exponent.is_finite() && (0.0..=5.0).contains(&model.hot_exponent)) {
        return bad_request("hotExponent must be between 0 and 5");
    }
    let running = if model.changes_per_hour > 0.0 {
        match Running::start(&state, model) {
            Some(r) => Some(r),
            None => return bad_request("the tenant has no live drive to change"),
        }
    } else {
        None
    };
    *state.lock_activity() = Activity(running);
    Json(json!({"model": model})).into_response()
}
