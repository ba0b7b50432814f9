//! Progress of an ingestion run, readable while it runs (the worker shows it and stores it).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::Resource;

/// What a run is doing: reading one resource after another (see [`Resource`]), then done.
/// Stored and shown as one word: `starting`, the resource's name, `done`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Phase {
    /// Not yet reading.
    #[default]
    Starting,
    /// Reading this resource.
    Reading(Resource),
    /// Finished.
    Done,
}

impl Phase {
    /// The word for it.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Reading(r) => r.name(),
            Phase::Done => "done",
        }
    }
}

impl Serialize for Phase {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Live counters of a run. Shared between the run and whoever watches it.
#[derive(Debug, Default)]
pub struct Progress {
    phase: Mutex<Phase>,
    /// Users written.
    pub users: AtomicU64,
    /// Groups written.
    pub groups: AtomicU64,
    /// Sites written.
    pub sites: AtomicU64,
    /// Drives to read.
    pub drives: AtomicU64,
    /// Drives read to the end of their round.
    pub drives_done: AtomicU64,
    /// Drive items written.
    pub items: AtomicU64,
    /// Items whose permissions were read.
    pub permission_items: AtomicU64,
    /// Permission reads still due when the permissions phase last looked.
    pub permission_items_due: AtomicU64,
    failures: Mutex<BTreeMap<String, u64>>,
    /// Sites Graph refused to read (403: e.g. locked), by id, with the reason.
    skipped_sites: Mutex<BTreeMap<String, String>>,
    /// Drives Graph refused to read (403: a locked OneDrive), by id (or `users/{id}/drive`
    /// when the lookup itself was refused), with the reason.
    skipped_drives: Mutex<BTreeMap<String, String>>,
}

/// A snapshot, as stored in `job_runs.progress`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ProgressSnapshot {
    /// What the run is doing.
    pub phase: Phase,
    /// Users written.
    pub users: u64,
    /// Groups written.
    pub groups: u64,
    /// Sites written.
    pub sites: u64,
    /// Drives to read.
    pub drives: u64,
    /// Drives read to the end of their round.
    pub drives_done: u64,
    /// Drive items written.
    pub items: u64,
    /// Items whose permissions were read.
    pub permission_items: u64,
    /// Permission reads due when last counted.
    pub permission_items_due: u64,
    /// Failures by resource (a run with any fails).
    pub failures: BTreeMap<String, u64>,
    /// Sites skipped because Graph refused to read them, by id, with the reason: they do not
    /// fail the run, and their libraries are kept as last read.
    pub skipped_sites: BTreeMap<String, String>,
    /// Drives skipped likewise (a locked OneDrive): kept as last read.
    pub skipped_drives: BTreeMap<String, String>,
    /// Resource units the client spent.
    pub ru_spent: u64,
    /// Requests the client sent.
    pub requests: u64,
    /// Responses that were throttled (429 or 503).
    pub throttled: u64,
    /// Time spent waiting on throttling, in ms.
    pub throttle_wait_ms: u64,
}

impl Progress {
    /// Records what the run is doing now.
    pub fn set_phase(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase;
    }

    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` failures of `resource`.
    pub fn fail(&self, resource: &str, n: u64) {
        if n > 0 {
            *self
                .failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(resource.to_string())
                .or_default() += n;
        }
    }

    /// Records a site Graph refused to read, and why.
    pub fn skip_site(&self, site: &str, reason: &str) {
        self.skipped_sites
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(site.to_string(), reason.to_string());
    }

    /// Records a drive Graph refused to read, and why.
    pub fn skip_drive(&self, drive: &str, reason: &str) {
        self.skipped_drives
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(drive.to_string(), reason.to_string());
    }

    /// Failures so far, by resource.
    pub fn failures(&self) -> BTreeMap<String, u64> {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The counters now, with the client's spending.
    pub fn snapshot(&self, client: &sentinel_graph::GraphClient) -> ProgressSnapshot {
        let s = client.stats();
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ProgressSnapshot {
            phase: *self.phase.lock().unwrap_or_else(|e| e.into_inner()),
            users: g(&self.users),
            groups: g(&self.groups),
            sites: g(&self.sites),
            drives: g(&self.drives),
            drives_done: g(&self.drives_done),
            items: g(&self.items),
            permission_items: g(&self.permission_items),
            permission_items_due: g(&self.permission_items_due),
            failures: self.failures(),
            skipped_sites: self
                .skipped_sites
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            skipped_drives: self
                .skipped_drives
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            ru_spent: s.ru_spent,
            requests: s.requests,
            throttled: s.throttled,
            throttle_wait_ms: s.throttle_wait_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_is_stored_as_one_word() {
        let words: Vec<String> = [Phase::Starting]
            .into_iter()
            .chain(Resource::ALL.map(Phase::Reading))
            .chain([Phase::Done])
            .map(|p| {
                serde_json::to_value(p)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(
            words,
            [
                "starting",
                "users",
                "groups",
                "sites",
                "drives",
                "items",
                "permissions",
                "done"
            ]
        );
    }
}
