//! Throttling, transient failures, broken responses, auth refresh and `$batch`,
//! against the simulated tenant over real HTTP.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use futures::future::join_all;
use sentinel_graph::{BatchRequest, GraphError, SecretString};
use serde_json::{Value, json};

async fn requests(t: &TestTenant) -> Vec<Value> {
    t.get("/_sim/requests")
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_429_pauses_every_request_for_its_retry_after() {
    let t = spawn_tenant(21, |_| {}).await;
    let drives = t.drive_ids().await;
    t.faults(json!({"next": {"429": 1}, "retry_after_secs": 2}))
        .await;
    let started = Instant::now();
    // Eight concurrent callers: one gets the 429, all must hold off until it expires.
    let calls = drives.iter().take(8).map(|d| t.client.drive(d));
    for r in join_all(calls).await {
        r.expect("every call succeeds after the wait");
    }
    assert!(started.elapsed() >= Duration::from_secs(2));
    let log = requests(&t).await;
    let throttled = log
        .iter()
        .find(|r| r["status"] == 429)
        .expect("a 429 was sent");
    let at = throttled["at_ms"].as_u64().expect("time");
    let during_wait: Vec<&Value> = log
        .iter()
        .filter(|r| {
            let x = r["at_ms"].as_u64().unwrap_or(0);
            x > at + 50 && x < at + 1_950
        })
        .collect();
    assert!(
        during_wait.is_empty(),
        "requests reached the tenant during Retry-After: {during_wait:?}"
    );
    assert_eq!(t.client.stats().throttled, 1);
}

#[tokio::test]
async fn a_503_with_retry_after_is_waited_out() {
    let t = spawn_tenant(22, |_| {}).await;
    let drive = t.drive_ids().await.remove(0);
    t.faults(json!({"next": {"503": 2}, "retry_after_secs": 1}))
        .await;
    let started = Instant::now();
    t.client
        .drive(&drive)
        .await
        .expect("succeeds after two 503s");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited both Retry-After periods"
    );
}

#[tokio::test]
async fn throttling_beyond_the_patience_limit_is_a_typed_error() {
    let t = spawn_tenant(23, |_| {}).await;
    let drive = t.drive_ids().await.remove(0);
    let client = client_for(&t.sim, |c| c.max_throttle_wait = Duration::from_secs(2));
    t.faults(json!({"rates": {"429": 1.0}, "retry_after_secs": 1}))
        .await;
    let err = client.drive(&drive).await.expect_err("gives up");
    assert!(
        matches!(err, GraphError::Throttled { status: 429, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn connection_resets_and_server_errors_are_retried() {
    let t = spawn_tenant(24, |_| {}).await;
    let drive = t.drive_ids().await.remove(0);
    t.faults(json!({"next": {"reset": 2, "500": 2}})).await;
    let d = t
        .client
        .drive(&drive)
        .await
        .expect("succeeds after retries");
    assert_eq!(d.id, drive);
    let stats = t.get("/_sim/stats").await;
    assert_eq!(stats["faults_injected"]["Reset"], 2);
    assert_eq!(stats["faults_injected"]["Internal"], 2);
}

#[tokio::test]
async fn malformed_json_is_retried_then_reported_as_a_bad_response() {
    let t = spawn_tenant(25, |_| {}).await;
    let drive = t.drive_ids().await.remove(0);
    t.faults(json!({"next": {"malformed": 1}})).await;
    t.client
        .drive(&drive)
        .await
        .expect("a single truncated body is retried");
    assert_eq!(t.client.stats().retries, 1);

    t.faults(json!({"rates": {"malformed": 1.0}})).await;
    let err = t.client.drive(&drive).await.expect_err("always truncated");
    assert!(matches!(err, GraphError::BadResponse(_)), "{err}");
}

#[tokio::test]
async fn tokens_are_refreshed_before_expiry_and_once_after_a_401() {
    let t = spawn_tenant(26, |_| {}).await;
    let drive = t.drive_ids().await.remove(0);
    t.post("/_sim/auth", json!({"token_lifetime_secs": 2}))
        .await;
    t.client.drive(&drive).await.expect("first call");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    t.client.drive(&drive).await.expect("second call");
    let stats = t.get("/_sim/stats").await;
    assert_eq!(stats["tokens_issued"], 2, "refreshed ahead of expiry");
    assert!(
        stats["by_endpoint"]["/v1.0/drives/{drive_id}"]
            .get("401")
            .is_none(),
        "no 401 seen: {stats}"
    );

    t.post(
        "/_sim/auth",
        json!({"token_lifetime_secs": 3599, "revoke": true}),
    )
    .await;
    t.client.drive(&drive).await.expect("refreshed after a 401");
    let stats = t.get("/_sim/stats").await;
    assert_eq!(stats["by_endpoint"]["/v1.0/drives/{drive_id}"]["401"], 1);
    assert_eq!(stats["tokens_issued"], 3);
}

#[tokio::test]
async fn a_wrong_secret_is_an_auth_error_naming_the_cause() {
    let t = spawn_tenant(27, |_| {}).await;
    let client = client_for(&t.sim, |c| {
        c.client_secret = SecretString::from("wrong".to_string())
    });
    let err = client.drive("b!anything").await.expect_err("refused");
    match err {
        GraphError::Auth(msg) => assert!(msg.contains("invalid_client"), "{msg}"),
        other => panic!("expected an auth error, got {other}"),
    }
}

#[tokio::test]
async fn missing_onedrive_is_none_and_missing_drive_is_not_found() {
    let t = spawn_tenant(28, |_| {}).await;
    let users = t.dump("users").await;
    let without = users
        .iter()
        .find(|u| u["hasDrive"] == false)
        .expect("an unlicensed user");
    let with = users
        .iter()
        .find(|u| u["hasDrive"] == true)
        .expect("a licensed user");
    assert!(
        t.client
            .user_drive(without["id"].as_str().expect("id"))
            .await
            .expect("no error")
            .is_none()
    );
    assert!(
        t.client
            .user_drive(with["id"].as_str().expect("id"))
            .await
            .expect("drive")
            .is_some()
    );
    let err = t.client.drive("b!doesnotexist").await.expect_err("404");
    assert!(matches!(err, GraphError::NotFound { .. }), "{err}");
    let err = t
        .client
        .drive("../users")
        .await
        .expect_err("rejected before sending");
    assert!(matches!(err, GraphError::InvalidArgument(_)), "{err}");
}

/// A batch request for the permissions of each of `items` (the simulator's dump), by item id.
fn permission_requests(t: &TestTenant, items: &[Value]) -> Vec<BatchRequest> {
    items
        .iter()
        .map(|i| {
            let path = t
                .client
                .item_permissions_path(
                    i["driveId"].as_str().expect("d"),
                    i["id"].as_str().expect("i"),
                )
                .expect("path");
            BatchRequest::get(i["id"].as_str().expect("id"), path)
        })
        .collect()
}

#[tokio::test]
async fn batch_retries_inner_throttling_and_matches_results_by_id() {
    let t = spawn_tenant(29, |_| {}).await;
    let items: Vec<Value> = t.dump("items").await.into_iter().take(45).collect();
    let requests = permission_requests(&t, &items);
    t.faults(json!({"next": {"429": 3}, "retry_after_secs": 1}))
        .await;
    let started = Instant::now();
    let responses = t.client.batch(requests.clone()).await.expect("batch");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited the inner Retry-After"
    );
    assert_eq!(responses.len(), requests.len());
    for (req, resp) in requests.iter().zip(&responses) {
        assert_eq!(req.id, resp.id, "results come back in request order");
        assert_eq!(resp.status, 200, "{resp:?}");
        let direct = t
            .client
            .item_permissions(
                items
                    .iter()
                    .find(|i| i["id"] == req.id.as_str())
                    .and_then(|i| i["driveId"].as_str())
                    .expect("d"),
                &req.id,
            )
            .await
            .expect("direct");
        let ids: Vec<&str> = resp.body["value"]
            .as_array()
            .expect("value")
            .iter()
            .filter_map(|p| p["id"].as_str())
            .collect();
        assert_eq!(
            ids,
            direct.iter().map(|p| p.id.as_str()).collect::<Vec<_>>()
        );
    }
    // The three inner 429s were resent once each, in a further envelope.
    let stats = t.get("/_sim/stats").await;
    let perms = &stats["by_endpoint"]["/v1.0/drives/{drive_id}/items/{item_id}/permissions"];
    assert_eq!(perms["429"], 3, "{stats}");
    // Three chunks, plus one resend per chunk that had a throttled request (1 to 3).
    let envelopes = stats["by_endpoint"]["/v1.0/$batch"]["200"]
        .as_u64()
        .expect("count");
    assert!((4..=6).contains(&envelopes), "{stats}");
}

/// Inner requests fail with 500 as outer ones do, and are as transient (Graph best practices,
/// "Handling expected errors"): resent with back-off, up to `max_retries` times each. Found by
/// the fault campaign (docs/reliability.md): without it a 10% fault rate left permissions unread.
#[tokio::test]
async fn batch_resends_inner_server_errors_and_gives_up_after_max_retries() {
    let t = spawn_tenant(30, |_| {}).await;
    let items: Vec<Value> = t.dump("items").await.into_iter().take(5).collect();
    let requests = permission_requests(&t, &items);
    t.faults(json!({"next": {"500": 3}})).await;
    let responses = t.client.batch(requests.clone()).await.expect("batch");
    assert!(
        responses.iter().all(|r| r.status == 200),
        "three inner 500s resent: {responses:?}"
    );
    // A request that keeps failing comes back with its 500 after max_retries resends.
    let patient = client_for(&t.sim, |c| c.max_retries = 2);
    t.faults(json!({"next": {"500": 3}})).await;
    let one = patient.batch(requests[..1].to_vec()).await.expect("batch");
    assert_eq!(one[0].status, 500, "given up after two resends");
    t.faults(json!({"next": {}})).await;
}

#[tokio::test]
async fn ru_accounting_matches_what_the_tenant_charged() {
    let t = spawn_tenant(30, |_| {}).await;
    let drives = t.drive_ids().await;
    let mut replica = Replica::default();
    replica
        .sync(&t.client, &drives, &Default::default())
        .await
        .expect("round");
    let first = drives[0].clone();
    let some_item = replica.items.keys().next().expect("item").clone();
    let drive_of_item = replica.items[&some_item]
        .parent_reference
        .as_ref()
        .and_then(|p| p.drive_id.clone())
        .expect("drive");
    t.client
        .item_permissions(&drive_of_item, &some_item)
        .await
        .expect("perms");
    t.client.drive(&first).await.expect("drive");
    let batch: Vec<BatchRequest> = replica
        .items
        .values()
        .take(25)
        .map(|i| {
            BatchRequest::get(
                i.id.clone(),
                t.client
                    .item_permissions_path(
                        i.parent_reference
                            .as_ref()
                            .and_then(|p| p.drive_id.as_deref())
                            .expect("d"),
                        &i.id,
                    )
                    .expect("path"),
            )
        })
        .collect();
    t.client.batch(batch).await.expect("batch");
    let charged = t.get("/_sim/stats").await["ru_spent"].as_u64().expect("ru");
    assert_eq!(t.client.ru_spent(), charged);
    assert!(charged > 25 * 5);
}

/// Spends three budget windows' worth of RU (`drive` GETs, 1 RU each) with 16 callers at once.
async fn spend_three_windows(t: &TestTenant, budget: u32) -> u64 {
    spend(t, budget as usize * 3).await
}

#[tokio::test]
async fn a_client_paced_to_the_budget_is_not_throttled() {
    // A budget minute lasts a second (time compressed 60x) and holds 200 RU.
    let budget = 200;
    let scaled = |c: &mut sentinel_sim::SimConfig| {
        c.ru_per_minute = budget;
        c.time_scale = 60.0;
    };
    let t = spawn_tenant(31, scaled).await;
    let t = TestTenant {
        client: client_for(&t.sim, |c| {
            c.ru_per_minute = budget;
            c.budget_time_scale = 60.0;
            c.max_concurrency = 16;
        }),
        ..t
    };
    assert_eq!(spend_three_windows(&t, budget).await, 0);

    // The same client unaware that the tenant's minute is a second sends a minute's budget
    // at once and collides.
    let t = spawn_tenant(31, scaled).await;
    let t = TestTenant {
        client: client_for(&t.sim, |c| {
            c.ru_per_minute = budget * 60;
            c.max_concurrency = 16;
        }),
        ..t
    };
    assert!(spend_three_windows(&t, budget).await > 0);
}

/// SharePoint budgets hold per minute and per 24 hours ("Avoid getting throttled or blocked in
/// SharePoint Online": 1,250 RU/min and 1.2M RU/24 h in the smallest band). A client pacing to
/// both is never throttled; one pacing to the minute alone runs into the day's budget.
#[tokio::test]
async fn a_client_paced_to_the_daily_budget_is_not_throttled() {
    // A budget day lasts 20 s (time compressed 4,320x) and holds 300 RU; its minute holds as
    // much, so only the day binds.
    let day = 300;
    let scaled = |c: &mut sentinel_sim::SimConfig| {
        c.ru_per_minute = day;
        c.ru_per_day = Some(day);
        c.time_scale = 4_320.0;
    };
    let t = spawn_tenant(33, scaled).await;
    let t = TestTenant {
        client: client_for(&t.sim, |c| {
            c.ru_per_minute = day;
            c.ru_per_day = Some(day);
            c.budget_time_scale = 4_320.0;
            c.max_concurrency = 16;
        }),
        ..t
    };
    let started = std::time::Instant::now();
    let day_and_a_half = (day + day / 2) as usize;
    // Compressed 4,320x, a request's latency on a loaded machine is simulated minutes; the
    // client counts each spend from when its answer came (after Graph charged it), so latency
    // can only make it more careful, never collide.
    let paced = spend(&t, day_and_a_half).await;
    assert_eq!(paced, 0, "requests throttled while paced to the day");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(18),
        "more than a day's budget takes at least a day: {:?}",
        started.elapsed()
    );

    // Paced to the minute alone (the day taken as 960 minutes), the client collides.
    let t = spawn_tenant(33, scaled).await;
    let t = TestTenant {
        client: client_for(&t.sim, |c| {
            c.ru_per_minute = day;
            c.budget_time_scale = 4_320.0;
            c.max_concurrency = 16;
            c.max_throttle_wait = std::time::Duration::from_secs(60);
        }),
        ..t
    };
    let unpaced = spend(&t, day_and_a_half).await;
    assert!(
        unpaced > paced,
        "{unpaced} throttled unpaced against {paced} paced"
    );
}

/// Spends `n` RU (`drive` GETs, 1 RU each) with 16 callers at once; returns the 429s and 503s.
async fn spend(t: &TestTenant, n: usize) -> u64 {
    let drives = t.drive_ids().await;
    let calls = (0..n).map(|k| t.client.drive(&drives[k % drives.len()]));
    let results = futures::stream::iter(calls)
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    for r in results {
        r.expect("every call succeeds");
    }
    t.get("/_sim/stats").await["throttled"]
        .as_u64()
        .expect("throttled count")
}
