//! Policies through the real `sentinel-worker sync`: the violations of each rule are exactly what
//! the simulator's ground truth says breaks it; after users share more, the new violations (and
//! only those) reach a webhook, through failures retried with backoff, each attempt audited; a
//! scan that changes nothing alerts nothing.

mod common;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use common::*;
use sentinel_alerts::{AlertSender, AlertSettings};
use sentinel_sim::Profile;
use sentinel_store::{PageRequest, PolicyRule, Store, ViolationsQuery, WebhookFormat};
use serde_json::{Value, json};

type Key = (String, String);

/// (drive, permission) of the anyone links, (edit, no expiry), and (drive, permission) of the
/// grants that reach a disabled account, from the simulator's own permissions.
async fn truth_links_and_disabled(
    sim: &sentinel_sim::RunningSim,
) -> (BTreeSet<Key>, BTreeSet<Key>, BTreeSet<Key>) {
    let disabled: HashSet<String> = dump(sim, "users")
        .await
        .iter()
        .filter(|u| u["accountEnabled"] == json!(false))
        .filter_map(|u| u["id"].as_str().map(String::from))
        .collect();
    let (mut edit, mut no_expiry, mut held) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for row in dump(sim, "permissions").await {
        let p = &row["permission"];
        let key = (
            row["driveId"].as_str().unwrap_or_default().to_string(),
            p["id"].as_str().unwrap_or_default().to_string(),
        );
        let roles: Vec<&str> = p["roles"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if p["link"]["scope"] == json!("anonymous") {
            if p["link"]["type"] != json!("createOnly")
                && (roles.contains(&"write") || roles.contains(&"owner"))
            {
                edit.insert(key.clone());
            }
            if p.get("expirationDateTime").is_none() {
                no_expiry.insert(key.clone());
            }
        }
        let mut users: Vec<&str> = p["grantedToV2"]["user"]["id"]
            .as_str()
            .into_iter()
            .collect();
        if let Some(ids) = p["grantedToIdentitiesV2"].as_array() {
            users.extend(ids.iter().filter_map(|i| i["user"]["id"].as_str()));
        }
        if users.iter().any(|u| disabled.contains(*u)) {
            held.insert(key);
        }
    }
    (edit, no_expiry, held)
}

/// Open violations of `rule`, as (drive, permission) or (drive, item) for the audience rule.
async fn violated(store: &Store, tenant: &str, rule: PolicyRule) -> BTreeSet<Key> {
    let q = ViolationsQuery {
        rule: Some(rule),
        ..ViolationsQuery::default()
    };
    let req = PageRequest {
        per_page: 10_000,
        ..PageRequest::default()
    };
    let page = store
        .violations(tenant, &q, &req)
        .await
        .expect("violations");
    assert!(page.rows.iter().all(|v| v.rule == rule));
    let past = PageRequest { page: 1, ..req };
    let past = store
        .violations(tenant, &q, &past)
        .await
        .expect("a page past the end");
    assert_eq!(
        (past.rows.len(), past.total),
        (0, page.total),
        "a page past the last still says how many there are"
    );
    page.rows
        .iter()
        .map(|v| {
            let second = match rule {
                PolicyRule::AudienceOver => v.item_id.clone(),
                _ => v.permission_id.clone().expect("a permission"),
            };
            (v.drive_id.clone(), second)
        })
        .collect()
}

async fn audited(db: &TestDb, action: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = $1")
        .bind(action)
        .fetch_one(&db.pool)
        .await
        .expect("audit")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn violations_match_the_truth_and_new_ones_reach_a_webhook_once_through_retries() {
    let sim = spawn_sim(Profile::Small, 151).await;
    let db = create_db().await;
    let tenant = sim.state.read_tenant().tenant_id.clone();
    let store = Store::from_pool(db.pool.clone());
    let args = ["--permissions", "hierarchical"];
    assert_synced(&sync(&sim, &db, &args).await).await;

    // Every rule on its defaults: each finds exactly what the truth says breaks it.
    let (edit, no_expiry, held) = truth_links_and_disabled(&sim).await;
    for (rule, truth) in [
        (PolicyRule::AnyoneLinkEdit, &edit),
        (PolicyRule::AnyoneLinkNoExpiry, &no_expiry),
        (PolicyRule::DisabledUserGrant, &held),
    ] {
        assert!(!truth.is_empty(), "the tenant has some {rule}");
        let found = violated(&store, &tenant, rule).await;
        assert_eq!(&found, truth, "{rule}");
    }

    // The audience rule, at a threshold the admin sets: the median audience of the items
    // holding permissions, so that some are over it and some are not.
    let inheriting: HashSet<Key> = dump(&sim, "permissions")
        .await
        .iter()
        .filter(|r| !r["inheritedFrom"].is_null())
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (s("driveId"), s("itemId"))
        })
        .collect();
    let readers: HashMap<Key, usize> = dump(&sim, "audience")
        .await
        .iter()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (
                (s("driveId"), s("itemId")),
                sentinel_testkit::truth::ids(&a["readers"]).len(),
            )
        })
        .filter(|(k, n)| *n > 0 && !inheriting.contains(k))
        .collect();
    let mut sizes: Vec<usize> = readers.values().copied().collect();
    sizes.sort_unstable();
    let threshold = sizes[sizes.len() / 2];
    store
        .set_policy(
            &tenant,
            PolicyRule::AudienceOver,
            true,
            Some(threshold as i32),
            Some("test"),
        )
        .await
        .expect("set policy");
    store.refresh_violations(&tenant).await.expect("refresh");
    let over: BTreeSet<Key> = readers
        .iter()
        .filter(|(_, n)| **n > threshold)
        .map(|(k, _)| k.clone())
        .collect();
    assert!(!over.is_empty() && over.len() < readers.len());
    assert_eq!(
        violated(&store, &tenant, PolicyRule::AudienceOver).await,
        over,
        "items whose audience is over {threshold}"
    );
    // Switched off, a rule has no open violations.
    store
        .set_policy(
            &tenant,
            PolicyRule::AnyoneLinkEdit,
            false,
            None,
            Some("test"),
        )
        .await
        .expect("set policy");
    let r = store.refresh_violations(&tenant).await.expect("refresh");
    assert_eq!(r.resolved, edit.len() as u64);
    assert!(
        violated(&store, &tenant, PolicyRule::AnyoneLinkEdit)
            .await
            .is_empty()
    );

    // A webhook that fails twice, then accepts; users share more, and a scan sees it.
    let receiver = sentinel_testkit::webhook::Receiver::start(2).await;
    store
        .add_webhook(&tenant, &receiver.url, WebhookFormat::Json, Some("test"))
        .await
        .expect("webhook");
    let before_new = store.now().await.expect("now");
    control(
        &sim,
        "/_sim/mutate",
        json!({"count": 60, "kinds": ["share"]}),
    )
    .await;
    assert_synced(&sync(&sim, &db, &args).await).await;
    let new: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT rule, subject_key FROM policy_violations WHERE resolved_at IS NULL AND detected_at > $1",
    )
    .bind(before_new)
    .fetch_all(&db.pool)
    .await
    .expect("new violations")
    .into_iter()
    .collect();
    let (_, no_expiry_after, _) = truth_links_and_disabled(&sim).await;
    let opened: BTreeSet<Key> = no_expiry_after.difference(&no_expiry).cloned().collect();
    assert!(!opened.is_empty(), "the users shared with anyone");
    for (drive, permission) in &opened {
        assert!(
            new.contains(&(
                "anyone_link_no_expiry".to_string(),
                format!("{drive}/{permission}")
            )),
            "a new anyone link without expiry is a new violation"
        );
    }

    let settings = AlertSettings {
        first_retry: Duration::from_millis(200),
        max_attempts: 5,
        timeout: Duration::from_secs(5),
    };
    let sender = AlertSender::new(store.clone(), &settings).expect("sender");
    for _ in 0..100 {
        sender.send_due().await.expect("send");
        if !receiver.accepted().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 1, "one batch, delivered once");
    let body = &accepted[0];
    assert!(
        body["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Princeton Sentinel: ")),
        "Teams and Slack show `text`: {body}"
    );
    let delivered: BTreeSet<(String, String)> = body["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|v| {
            (
                v["rule"].as_str().unwrap_or_default().to_string(),
                v["subject_key"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        delivered, new,
        "the alert carries the new violations, and only those"
    );
    assert_eq!(receiver.requests(), 3);
    assert_eq!(audited(&db, "alert.retrying").await, 2);
    assert_eq!(audited(&db, "alert.delivered").await, 1);
    let webhooks = store.webhooks(&tenant).await.expect("webhooks");
    assert_eq!(webhooks[0].delivered, new.len() as i64);
    assert_eq!((webhooks[0].pending, webhooks[0].failed), (0, 0));

    // A scan that finds nothing new alerts nothing.
    assert_synced(&sync(&sim, &db, &args).await).await;
    assert_eq!(sender.send_due().await.expect("send"), 0);
    assert_eq!(receiver.requests(), 3);
    db.drop_db().await;
}
