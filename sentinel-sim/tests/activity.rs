//! The activity model (`/_sim/activity`): changes arrive steadily, most in a few drives, and
//! each counts as read once a delta round of its drive that started after it completes.

mod common;

use std::time::Duration;

use common::start_profile;
use sentinel_sim::Profile;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_crowd_into_few_drives_and_count_as_read_once_a_later_round_returns_them() {
    // A simulated minute per real second.
    let s = start_profile(Profile::Small, 120, |c| c.time_scale = 60.0).await;
    let r = s
        .post(
            "/_sim/activity",
            json!({"changesPerHour": 7200, "hotExponent": 1.1}),
        )
        .await;
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = s.get("/_sim/activity").await;
    let made = before["changes"].as_u64().expect("changes");
    // 7,200 an hour is 2 a simulated second: about 180 in 90 simulated seconds.
    assert!((90..=300).contains(&made), "{before}");
    assert_eq!(before["read"], 0, "no round has run: {before}");
    let drives = before["drives"].as_u64().expect("drives");
    assert!(drives > 100, "{before}");
    // Evenly spread, the busiest 1% of the drives would take about 1% of the changes.
    let top = before["topDrivesShare"].as_f64().expect("share");
    assert!(top > 0.2, "a few drives take most changes: {before}");

    // A full round of every drive: every change made before it started is read.
    let drive_ids: Vec<String> = s
        .dump("drives")
        .await
        .iter()
        .filter_map(|d| d["id"].as_str().map(String::from))
        .collect();
    for d in &drive_ids {
        s.follow(&format!("/v1.0/drives/{d}/root/delta"), &[]).await;
    }
    let after = s.get("/_sim/activity").await;
    let read = after["read"].as_u64().expect("read");
    assert!(
        read >= made,
        "every change before the rounds is read: {after}"
    );
    let rounds_took = after["simulatedSecs"].as_f64().expect("secs")
        - before["simulatedSecs"].as_f64().expect("secs");
    assert!(
        after["unreadAgeSecs"]["max"].as_f64().expect("age") <= rounds_took,
        "only changes made during the rounds may be unread: {after}"
    );
    let median = after["delaySecs"]["median"].as_f64().expect("median");
    assert!(
        median > 0.0 && median <= after["simulatedSecs"].as_f64().expect("secs"),
        "{after}"
    );

    // Stopping the model ends the account.
    let r = s.post("/_sim/activity", json!({"changesPerHour": 0})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        s.get("/_sim/activity").await["model"],
        serde_json::Value::Null
    );
}

#[tokio::test]
async fn activity_settings_out_of_range_are_refused_saying_what_to_fix() {
    let s = common::start(121, |_| {}).await;
    for (body, says) in [
        (
            json!({"changesPerHour": -1}),
            "changesPerHour must be between 0 and 1000000",
        ),
        (
            json!({"changesPerHour": 10, "hotExponent": 9}),
            "hotExponent must be between 0 and 5",
        ),
        (
            json!({"changesPerHour": 10, "drives": 3}),
            "expected {\"changesPerHour\": N",
        ),
    ] {
        let r = s.post("/_sim/activity", body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        let reply: serde_json::Value = r.json().await.expect("json");
        let msg = reply["error"].as_str().unwrap_or_default();
        assert!(msg.contains(says), "{body}: {msg}");
    }
}
