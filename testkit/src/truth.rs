//! The simulator's ground truth of effective access (`/_sim/dump/audience`, `/_sim/dump/reach`)
//! in the store's own shapes, so a test or a benchmark compares like with like.

use std::collections::{BTreeSet, HashSet};

use sentinel_store::{ItemAudience, PersonReach};
use serde_json::Value;

/// The strings of a JSON array (an id set of the dumps).
pub fn ids(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(String::from))
        .collect()
}

/// The counts the store should give for one line of the audience dump; `guests` are the
/// directory ids of guest accounts (from the users dump).
pub fn expected_audience(truth: &Value, guests: &HashSet<String>) -> ItemAudience {
    let readers = ids(&truth["readers"]);
    let guest_readers = readers.iter().filter(|r| guests.contains(*r)).count() as i64;
    ItemAudience {
        readers: readers.len() as i64,
        writers: ids(&truth["writers"]).len() as i64,
        internal_readers: readers.len() as i64 - guest_readers,
        guest_readers,
        external_readers: ids(&truth["externalReaders"]).len() as i64,
        external_writers: ids(&truth["externalWriters"]).len() as i64,
        anyone_can_read: truth["anyoneCanRead"] == true,
        anyone_can_write: truth["anyoneCanWrite"] == true,
        lower_bound: truth["lowerBound"] == true,
    }
}

/// What the store's reach of a person should be (kind, items readable and writable,
/// libraries, sites), from one line of the reach dump.
pub fn expected_reach(truth: &Value) -> (String, i64, i64, i64, i64) {
    (
        truth["kind"].as_str().unwrap_or("?").to_string(),
        truth["itemsRead"].as_i64().unwrap_or(-1),
        truth["itemsWrite"].as_i64().unwrap_or(-1),
        ids(&truth["libraries"]).len() as i64,
        ids(&truth["sites"]).len() as i64,
    )
}

/// The same figures of a stored reach, to compare with [`expected_reach`].
pub fn reach_figures(r: &PersonReach) -> (String, i64, i64, i64, i64) {
    (
        r.kind.clone(),
        r.items_read,
        r.items_write,
        r.libraries,
        r.sites,
    )
}
