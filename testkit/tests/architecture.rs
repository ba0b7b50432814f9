//! The code map of ARCHITECTURE.md, checked against every crate's `Cargo.toml` (rust-analyzer
//! keeps such checks in its tidy tests). An arrow the map does not draw fails here, before it
//! can spread: add the crate to the map (and to ARCHITECTURE.md) deliberately, or drop the arrow.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Command;

use serde_json::Value;

/// A crate, the workspace crates it may use, and the outside crates it must not.
struct Place {
    name: &'static str,
    may_use: &'static [&'static str],
    never: &'static [&'static str],
}

/// Libraries never use anyhow (ripgrep's rule); the binaries reach Postgres only through the
/// store and the scheduler, so they never name sqlx.
const CODE_MAP: &[Place] = &[
    // Knows nothing of Postgres, the pipeline or the simulator.
    Place {
        name: "sentinel-graph",
        may_use: &[],
        never: &["sqlx", "axum", "anyhow"],
    },
    // Knows nothing of HTTP or Graph.
    Place {
        name: "sentinel-store",
        may_use: &[],
        never: &["reqwest", "axum", "oauth2", "anyhow"],
    },
    // Knows nothing of Graph; owns the jobs tables.
    Place {
        name: "sentinel-sched",
        may_use: &["sentinel-store"],
        never: &["reqwest", "axum", "anyhow"],
    },
    // Where Graph meets the store, through their types: no SQL of its own.
    Place {
        name: "sentinel-pipeline",
        may_use: &["sentinel-graph", "sentinel-store", "sentinel-sched"],
        never: &["sqlx", "axum", "reqwest", "anyhow"],
    },
    // Sends alerts for the store's violations: HTTP, but nothing of Graph; no SQL of its own.
    Place {
        name: "sentinel-alerts",
        may_use: &["sentinel-store"],
        never: &["sqlx", "axum", "anyhow"],
    },
    // Graph's stand-in shares no code with our client or store.
    Place {
        name: "sentinel-sim",
        may_use: &[],
        never: &["sqlx", "anyhow"],
    },
    Place {
        name: "sentinel-web",
        may_use: &[
            "sentinel-graph",
            "sentinel-store",
            "sentinel-sched",
            "sentinel-pipeline",
        ],
        never: &["sqlx"],
    },
    Place {
        name: "sentinel-worker",
        may_use: &[
            "sentinel-graph",
            "sentinel-store",
            "sentinel-sched",
            "sentinel-pipeline",
            "sentinel-alerts",
        ],
        never: &["sqlx"],
    },
    // Embedding the crates as a developer would: the public client and pipeline.
    Place {
        name: "sentinel-examples",
        may_use: &["sentinel-graph", "sentinel-pipeline"],
        never: &["sqlx"],
    },
    Place {
        name: "sentinel-testkit",
        // `truth.rs` puts the simulator's ground truth in the store's shapes.
        may_use: &["sentinel-sim", "sentinel-store"],
        never: &[],
    },
    Place {
        name: "sentinel-benches",
        may_use: &["sentinel-sim", "sentinel-store", "sentinel-testkit"],
        never: &[],
    },
];

/// Every arrow of `metadata` (cargo metadata's JSON) the map does not allow, said in a line.
fn violations(metadata: &Value) -> Vec<String> {
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let workspace: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let mut found = Vec::new();
    for p in &packages {
        let name = p["name"].as_str().unwrap_or("?");
        let Some(place) = CODE_MAP.iter().find(|c| c.name == name) else {
            found.push(format!("{name} is not on the code map"));
            continue;
        };
        // Dev-dependencies are the tests' business; the map is about what ships.
        let deps = p["dependencies"].as_array().cloned().unwrap_or_default();
        for dep in deps.iter().filter(|d| d["kind"].is_null()) {
            let dep = dep["name"].as_str().unwrap_or("?");
            if workspace.contains(&dep) && !place.may_use.contains(&dep) {
                found.push(format!(
                    "{name} depends on {dep}, which the code map does not allow"
                ));
            }
            if place.never.contains(&dep) {
                found.push(format!("{name} depends on {dep}, which it must never use"));
            }
        }
    }
    found
}

fn workspace_metadata() -> Value {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("metadata JSON")
}

#[test]
fn every_crate_depends_only_on_what_the_code_map_allows() {
    let metadata = workspace_metadata();
    let names: Vec<&str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for place in CODE_MAP {
        assert!(
            names.contains(&place.name),
            "{} is gone: update the map",
            place.name
        );
    }
    assert_eq!(violations(&metadata), Vec::<String>::new());
}

#[test]
fn an_arrow_against_the_map_is_caught() {
    let mut metadata = workspace_metadata();
    let add = |metadata: &mut Value, crate_name: &str, dep: &str| {
        let packages = metadata["packages"].as_array_mut().expect("packages");
        let p = packages
            .iter_mut()
            .find(|p| p["name"] == crate_name)
            .expect("crate");
        p["dependencies"]
            .as_array_mut()
            .expect("deps")
            .push(serde_json::json!({"name": dep, "kind": null}));
    };
    add(&mut metadata, "sentinel-store", "sentinel-graph");
    add(&mut metadata, "sentinel-web", "sqlx");
    add(&mut metadata, "sentinel-sched", "anyhow");
    assert_eq!(
        violations(&metadata),
        [
            "sentinel-store depends on sentinel-graph, which the code map does not allow",
            "sentinel-sched depends on anyhow, which it must never use",
            "sentinel-web depends on sqlx, which it must never use",
        ]
    );
}
