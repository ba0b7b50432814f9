//! How the client survives behaviours of real Graph that our simulator did not show before:
//! each test names its source (see docs/graph-conformance.md for the simulator's side).

mod common;

use std::collections::HashSet;

use axum::Router;
use axum::extract::Query;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use common::*;
use futures::StreamExt;
use sentinel_graph::{DeltaEvent, DeltaStart, DriveDeltaOptions, GraphClient};
use serde_json::json;

async fn users_round(
    client: &GraphClient,
    start: DeltaStart,
) -> (
    Vec<DeltaEvent<sentinel_graph::models::User>>,
    HashSet<String>,
) {
    let mut events = Vec::new();
    let mut live = HashSet::new();
    let mut s = client.users_delta(start, &["displayName"]);
    while let Some(ev) = s.next().await {
        let ev = ev.expect("the round survives");
        match &ev {
            DeltaEvent::Page(page) => page.iter().filter(|u| u.removed.is_none()).for_each(|u| {
                live.insert(u.id.clone());
            }),
            DeltaEvent::Resync { .. } => live.clear(),
            DeltaEvent::Complete { .. } => {}
        }
        events.push(ev);
    }
    (events, live)
}

/// An expired directory token answers "a BadRequest response with the error code
/// syncStateNotFound" (Microsoft 365 Developer Blog, 2020-07-03), or 410 as once reported
/// (microsoft-graph-docs-contrib #7897): either way the round starts again from scratch,
/// instead of keeping the stored link and failing every later run.
#[tokio::test]
async fn an_expired_directory_token_restarts_the_round_from_scratch() {
    for gone in [false, true] {
        let t = spawn_tenant(31, |c| c.directory_expiry_gone = gone).await;
        let (events, _) = users_round(&t.client, DeltaStart::Scratch).await;
        let Some(DeltaEvent::Complete { delta_link }) = events.last().cloned() else {
            panic!("a complete first round");
        };
        t.post("/_sim/expire-tokens", json!({})).await;
        let (events, live) = users_round(&t.client, DeltaStart::Link(delta_link)).await;
        assert!(
            matches!(&events[0], DeltaEvent::Resync { code } if code == "syncStateNotFound"),
            "gone = {gone}: {:?}",
            events.first()
        );
        assert!(matches!(events.last(), Some(DeltaEvent::Complete { .. })));
        let truth: HashSet<String> = t
            .dump("users")
            .await
            .iter()
            .map(|u| u["id"].as_str().expect("id").to_string())
            .collect();
        assert_eq!(
            live, truth,
            "the full round after the restart is the tenant"
        );
    }
}

/// A 410's `Location` that points outside the Graph root the client sends its token to cannot
/// be followed (the token stays home); the round starts from scratch instead of failing every
/// run on the same stored link.
#[tokio::test]
async fn a_410_location_outside_the_graph_root_restarts_from_scratch() {
    let tenant = spawn_tenant(32, |_| {}).await;
    let app = Router::new().route(
        "/v1.0/drives/{drive}/root/delta",
        get(|Query(q): Query<std::collections::HashMap<String, String>>| async move {
            if q.get("token").is_some_and(|t| t == "stale") {
                let body = json!({"error": {"code": "resyncChangesApplyDifferences", "message": "resync"}});
                return (
                    StatusCode::GONE,
                    [(header::LOCATION, "https://elsewhere.example/v1.0/drives/b!d/root/delta?token=x")],
                    axum::Json(body),
                )
                    .into_response();
            }
            axum::Json(json!({
                "value": [{"id": "root-id", "name": "root", "root": {}, "folder": {"childCount": 0}}],
                "@odata.deltaLink": "/v1.0/drives/b!d/root/delta?token=fresh",
            }))
            .into_response()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    let client = client_for(&tenant.sim, |c| {
        c.graph_base_url = format!("http://{addr}/v1.0").parse().expect("url");
    });
    let stale = format!("http://{addr}/v1.0/drives/b!d/root/delta?token=stale");
    let mut stream = client
        .drive_delta(
            "b!d",
            DeltaStart::Link(stale),
            &DriveDeltaOptions::default(),
        )
        .expect("stream");
    let mut events = Vec::new();
    while let Some(ev) = stream.next().await {
        events.push(ev.expect("no error: the round restarts from scratch"));
    }
    assert!(matches!(events[0], DeltaEvent::Resync { .. }), "{events:?}");
    assert!(
        matches!(events.last(), Some(DeltaEvent::Complete { delta_link }) if delta_link.ends_with("token=fresh")),
        "{events:?}"
    );
}
