//! Test harness: a simulated tenant over real HTTP and a client configured for it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use sentinel_graph::models::DriveItem;
use sentinel_graph::{
    DeltaEvent, DeltaStart, DriveDeltaOptions, GraphClient, GraphConfig, GraphError,
};
use sentinel_sim::{Profile, RunningSim, SimConfig};
use serde_json::Value;

pub struct TestTenant {
    pub sim: RunningSim,
    pub client: GraphClient,
    pub http: reqwest::Client,
}

/// A tiny tenant with a generous budget (tests that need throttling set their own).
pub async fn spawn_tenant(seed: u64, tweak: impl FnOnce(&mut SimConfig)) -> TestTenant {
    let sim = sentinel_testkit::spawn_sim_with(Profile::Tiny, seed, |c| {
        c.ru_per_minute = 1_000_000;
        tweak(c);
    })
    .await;
    let client = client_for(&sim, |_| {});
    TestTenant {
        sim,
        client,
        http: reqwest::Client::new(),
    }
}

/// The client's configuration for `sim`, as the binaries build it from their environment,
/// with budgets no test reaches and half a minute of patience for throttling.
pub fn client_config(sim: &RunningSim) -> GraphConfig {
    let vars = sentinel_testkit::lookup(sentinel_testkit::graph_vars(sim));
    let mut c = GraphConfig::from_lookup(&vars).expect("the simulator's configuration");
    c.ru_per_minute = 1_000_000;
    c.directory_ru_per_10s = 1_000_000;
    c.max_throttle_wait = Duration::from_secs(30);
    c
}

pub fn client_for(sim: &RunningSim, tweak: impl FnOnce(&mut GraphConfig)) -> GraphClient {
    let mut c = client_config(sim);
    tweak(&mut c);
    GraphClient::new(c).expect("client")
}

impl TestTenant {
    pub async fn post(&self, path: &str, body: Value) -> Value {
        let control = path.strip_prefix("/_sim/").expect("a /_sim/ control path");
        sentinel_testkit::sim_control(&self.sim, control, body).await
    }

    pub async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.sim.url()))
            .send()
            .await
            .expect("control call")
            .json()
            .await
            .expect("json")
    }

    pub async fn dump(&self, kind: &str) -> Vec<Value> {
        sentinel_testkit::sim_dump(&self.sim, kind).await
    }

    pub async fn faults(&self, faults: Value) {
        self.post("/_sim/faults", faults).await;
    }

    pub async fn mutate(&self, count: usize) -> Value {
        self.post("/_sim/mutate", serde_json::json!({"count": count}))
            .await
    }

    pub async fn drive_ids(&self) -> Vec<String> {
        self.dump("drives")
            .await
            .iter()
            .map(|d| d["id"].as_str().expect("id").to_string())
            .collect()
    }

    /// Ground truth: item id -> (name, parent id) of every live item.
    pub async fn truth_items(&self) -> HashMap<String, (String, Option<String>)> {
        self.dump("items")
            .await
            .into_iter()
            .map(|v| {
                let parent = v["parentId"].as_str().map(String::from);
                (
                    v["id"].as_str().expect("id").to_string(),
                    (v["name"].as_str().expect("name").to_string(), parent),
                )
            })
            .collect()
    }
}

/// A client-side replica of drive items, built from delta rounds.
#[derive(Debug, Default)]
pub struct Replica {
    pub items: HashMap<String, DriveItem>,
    pub links: HashMap<String, String>,
    pub resyncs: usize,
}

impl Replica {
    /// Runs one delta round per drive and applies it; a resync rebuilds that drive's items.
    /// The replica mirrors exactly `drives`: items of any other drive (one deleted since) go.
    pub async fn sync(
        &mut self,
        client: &GraphClient,
        drives: &[String],
        options: &DriveDeltaOptions,
    ) -> Result<(), GraphError> {
        self.items.retain(|_, it| {
            it.parent_reference
                .as_ref()
                .and_then(|p| p.drive_id.as_ref())
                .is_some_and(|d| drives.contains(d))
        });
        for d in drives {
            let start = self
                .links
                .get(d)
                .map(|l| DeltaStart::Link(l.clone()))
                .unwrap_or(DeltaStart::Scratch);
            let mut round: Vec<DriveItem> = Vec::new();
            let mut full = start == DeltaStart::Scratch;
            let mut stream = client.drive_delta(d, start, options)?;
            while let Some(ev) = stream.next().await {
                let ev = match ev {
                    // A deleted library (or site): its items are gone with it.
                    Err(GraphError::NotFound { .. }) => {
                        self.items.retain(|_, it| {
                            it.parent_reference
                                .as_ref()
                                .and_then(|p| p.drive_id.as_deref())
                                != Some(d.as_str())
                        });
                        self.links.remove(d);
                        break;
                    }
                    other => other?,
                };
                match ev {
                    DeltaEvent::Page(items) => round.extend(items),
                    DeltaEvent::Resync { .. } => {
                        self.resyncs += 1;
                        round.clear();
                        full = true;
                    }
                    DeltaEvent::Complete { delta_link } => {
                        if full {
                            self.items.retain(|_, it| {
                                it.parent_reference
                                    .as_ref()
                                    .and_then(|p| p.drive_id.as_deref())
                                    != Some(d.as_str())
                            });
                        }
                        for it in round.drain(..) {
                            if it.is_deleted() {
                                self.items.remove(&it.id);
                            } else {
                                self.items.insert(it.id.clone(), it);
                            }
                        }
                        self.drop_orphans();
                        self.links.insert(d.clone(), delta_link);
                    }
                }
            }
        }
        Ok(())
    }

    /// A deleted folder's tombstone may come alone (SharePoint): what was under it is gone too.
    fn drop_orphans(&mut self) {
        loop {
            let orphans: Vec<String> = self
                .items
                .values()
                .filter(|it| it.parent_id().is_some_and(|p| !self.items.contains_key(p)))
                .map(|it| it.id.clone())
                .collect();
            if orphans.is_empty() {
                return;
            }
            for id in orphans {
                self.items.remove(&id);
            }
        }
    }

    pub fn view(&self) -> HashMap<String, (String, Option<String>)> {
        self.items
            .iter()
            .map(|(id, it)| {
                (
                    id.clone(),
                    (
                        it.name.clone().unwrap_or_default(),
                        it.parent_id().map(String::from),
                    ),
                )
            })
            .collect()
    }
}

/// Asserts two item maps are equal, printing a readable difference.
pub fn assert_same_items(
    got: &HashMap<String, (String, Option<String>)>,
    want: &HashMap<String, (String, Option<String>)>,
) {
    let missing: Vec<_> = want
        .keys()
        .filter(|k| !got.contains_key(*k))
        .take(5)
        .collect();
    let phantom: Vec<_> = got
        .keys()
        .filter(|k| !want.contains_key(*k))
        .take(5)
        .collect();
    let wrong: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && phantom.is_empty() && wrong.is_empty(),
        "replica differs from ground truth: missing {missing:?}, phantom {phantom:?}, wrong {wrong:?} (got {}, want {})",
        got.len(),
        want.len()
    );
}
