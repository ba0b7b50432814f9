//! Each behaviour of shared/graph-behaviour.md that the simulator reproduces.

mod common;

use std::collections::{HashMap, HashSet};

use common::*;
use serde_json::{Value, json};

fn assert_graph_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert!(
        body["error"]["innerError"]["request-id"].is_string(),
        "{body}"
    );
}

async fn first_drive(s: &Sim) -> String {
    s.dump("drives").await[0]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

#[tokio::test]
async fn get_all_sites_pages_with_skiptoken_and_caps_top() {
    let s = start(1, |c| c.profile = sentinel_sim::Profile::Small).await;
    let (sites, _) = s.follow("/v1.0/sites/getAllSites?$top=7", &[]).await;
    let collections = s.dump("sites").await;
    let collections = collections.iter().filter(|x| x["parentId"].is_null());
    assert_eq!(sites.len(), collections.count());
    let page = s.get("/v1.0/sites/getAllSites?$top=5000").await;
    assert!(page["value"].as_array().expect("value").len() <= 1000);
    assert!(
        page["@odata.nextLink"]
            .as_str()
            .is_none_or(|l| l.contains("$skiptoken="))
    );
    // site-getallsites' response example: the next page is `sites/oneDrive.getAllSites?$skiptoken=`.
    let first = s.get("/v1.0/sites/getAllSites?$top=2").await;
    let next = first["@odata.nextLink"].as_str().expect("a next page");
    assert!(
        next.contains("/v1.0/sites/oneDrive.getAllSites?$skiptoken="),
        "{next}"
    );
    let bad = s.get_raw("/v1.0/sites/getAllSites?$top=zero", &[]).await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_stale_drive_token_answers_410_with_a_location_that_restarts_the_round() {
    let s = start(2, |_| {}).await;
    let drive = first_drive(&s).await;
    let (_, delta) = s
        .follow(&format!("/v1.0/drives/{drive}/root/delta"), &[])
        .await;
    s.http
        .post(s.url("/_sim/expire-tokens"))
        .send()
        .await
        .expect("expire");
    let r = s.get_raw(&delta.expect("deltaLink"), &[]).await;
    assert_eq!(r.status(), 410);
    let location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let body: Value = r.json().await.expect("json");
    let code = body["error"]["code"].as_str().expect("code");
    assert!(
        [
            "resyncChangesApplyDifferences",
            "resyncChangesUploadDifferences",
            "resyncRequired"
        ]
        .contains(&code),
        "{code}"
    );
    let (items, delta) = s.follow(&location, &[]).await;
    assert!(delta.is_some());
    let live = s
        .dump("items")
        .await
        .iter()
        .filter(|i| i["driveId"] == drive.as_str())
        .count();
    assert_eq!(
        items.len(),
        live,
        "the Location link enumerates the drive again"
    );
    // A forged token is as invalid as an old one.
    let forged = s
        .get_raw(
            &format!("/v1.0/drives/{drive}/root/delta?token=forged"),
            &[],
        )
        .await;
    assert_eq!(forged.status(), 410);
}

/// "you will receive a BadRequest response with the error code syncStateNotFound" (Microsoft 365
/// Developer Blog, "Duration of change tracking tokens for identity and education resources");
/// the 410 reported in microsoft-graph-docs-contrib #7897 is a mode.
#[tokio::test]
async fn a_stale_directory_token_answers_400_sync_state_not_found_without_location() {
    for (gone, status) in [(false, 400), (true, 410)] {
        let s = start(3, |c| c.directory_expiry_gone = gone).await;
        let (_, delta) = s.follow("/v1.0/users/delta", &[]).await;
        s.http
            .post(s.url("/_sim/expire-tokens"))
            .send()
            .await
            .expect("expire");
        let r = s.get_raw(&delta.expect("deltaLink"), &[]).await;
        assert_eq!(r.status(), status, "directory_expiry_gone = {gone}");
        assert!(r.headers().get("location").is_none());
        assert_graph_error(&r.json().await.expect("json"), "syncStateNotFound");
    }
}

#[tokio::test]
async fn directory_delta_rejects_top_and_expand() {
    let s = start(4, |_| {}).await;
    for q in ["$top=5", "$expand=members"] {
        let r = s.get_raw(&format!("/v1.0/groups/delta?{q}"), &[]).await;
        assert_eq!(r.status(), 400, "{q}");
    }
}

#[tokio::test]
async fn soft_deleted_users_appear_as_removed_even_in_a_full_round() {
    let s = start(5, |_| {}).await;
    let id = {
        let mut t = s.sim.state.write_tenant();
        let seq = t.next_seq();
        t.users[5].state = sentinel_sim::tenant::Lifecycle::SoftDeleted;
        t.users[5].version = seq;
        t.users[5].id.clone()
    };
    let (users, _) = s
        .follow("/v1.0/users/delta?$select=displayName,userType", &[])
        .await;
    let u = users
        .iter()
        .find(|u| u["id"] == id.as_str())
        .expect("reported");
    assert_eq!(u["@removed"]["reason"], "changed");
    let other = users
        .iter()
        .find(|u| u.get("@removed").is_none())
        .expect("a live user");
    let keys: HashSet<&str> = other
        .as_object()
        .expect("obj")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        HashSet::from(["id", "displayName", "userType"]),
        "$select narrows the properties"
    );
}

#[tokio::test]
async fn a_large_group_is_split_over_several_entries_and_merges_to_its_members() {
    let s = start(6, |c| c.profile = sentinel_sim::Profile::Small).await;
    let (gid, want) = {
        let mut t = s.sim.state.write_tenant();
        let seq = t.next_seq();
        let users = t.users.len();
        let g = &mut t.groups[0];
        g.members = (0..users.min(250))
            .map(|u| sentinel_sim::tenant::MemberEntry {
                member: sentinel_sim::tenant::MemberRef::User(u),
                seq,
                removed: false,
            })
            .collect();
        g.version = seq;
        let ids: HashSet<String> = (0..users.min(250)).map(|u| t.users[u].id.clone()).collect();
        (t.groups[0].id.clone(), ids)
    };
    let (groups, _) = s
        .follow("/v1.0/groups/delta?$select=displayName,members", &[])
        .await;
    let entries: Vec<&Value> = groups.iter().filter(|g| g["id"] == gid.as_str()).collect();
    assert!(
        entries.len() >= 3,
        "250 members arrive over several entries, got {}",
        entries.len()
    );
    let got: HashSet<String> = entries
        .iter()
        .flat_map(|g| g["members@delta"].as_array().cloned().unwrap_or_default())
        .map(|m| m["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn sites_delta_reports_deleted_sites_and_token_latest_is_empty() {
    let s = start(7, |_| {}).await;
    let latest = s.get("/v1.0/sites/delta?token=latest").await;
    assert_eq!(latest["value"].as_array().expect("value").len(), 0);
    let link = latest["@odata.deltaLink"]
        .as_str()
        .expect("deltaLink")
        .to_string();
    let id = {
        let mut t = s.sim.state.write_tenant();
        let seq = t.next_seq();
        t.sites[0].deleted = true;
        t.sites[0].version = seq;
        t.sites[0].id.clone()
    };
    let (changes, _) = s.follow(&link, &[]).await;
    assert_eq!(
        changes,
        vec![json!({"id": id, "deleted": {"state": "deleted"}})]
    );
    let gone = s.get_raw(&format!("/v1.0/sites/{id}"), &[]).await;
    assert_eq!(gone.status(), 404);
    assert_graph_error(&gone.json().await.expect("json"), "itemNotFound");
}

#[tokio::test]
async fn unlicensed_users_have_no_onedrive() {
    let s = start(8, |_| {}).await;
    let users = s.dump("users").await;
    let without = users
        .iter()
        .find(|u| u["hasDrive"] == false)
        .expect("unlicensed user");
    let r = s
        .get_raw(
            &format!("/v1.0/users/{}/drive", without["id"].as_str().expect("id")),
            &[],
        )
        .await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn delta_rejects_expand_permissions_and_never_returns_paths() {
    let s = start(9, |_| {}).await;
    let drive = first_drive(&s).await;
    let r = s
        .get_raw(
            &format!("/v1.0/drives/{drive}/root/delta?$expand=permissions"),
            &[],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_graph_error(&r.json().await.expect("json"), "notSupported");
    let (items, _) = s
        .follow(&format!("/v1.0/drives/{drive}/root/delta"), &[])
        .await;
    assert!(
        items
            .iter()
            .all(|i| i["parentReference"].get("path").is_none())
    );
}

#[tokio::test]
async fn permissions_look_like_sharepoint_and_support_if_none_match() {
    let s = start(10, |c| c.profile = sentinel_sim::Profile::Small).await;
    let perms = s.dump("permissions").await;
    let eeeu = perms
        .iter()
        .find(|p| {
            p["permission"]["grantedToV2"]["siteUser"]["loginName"]
                .as_str()
                .is_some_and(|l| l.contains("spo-grid-all-users"))
        })
        .expect("an Everyone-except-external-users grant");
    assert!(
        eeeu["permission"]["grantedToV2"]["siteUser"]["loginName"]
            .as_str()
            .expect("login")
            .ends_with(&s.tenant_id)
    );
    let anon = perms
        .iter()
        .find(|p| p["permission"]["link"]["scope"] == "anonymous")
        .expect("an anonymous link");
    assert!(
        anon["permission"]["link"]["webUrl"]
            .as_str()
            .expect("url")
            .starts_with("https://")
    );
    assert!(
        perms
            .iter()
            .all(|p| p["permission"].get("inheritedFrom").is_none()),
        "SharePoint does not return inheritedFrom"
    );
    let site_group = perms
        .iter()
        .find(|p| p["permission"]["grantedToV2"]["siteGroup"].is_object())
        .expect("site group");
    let path = format!(
        "/v1.0/drives/{}/items/{}/permissions",
        site_group["driveId"].as_str().expect("d"),
        site_group["itemId"].as_str().expect("i")
    );
    let first = s.get_raw(&path, &[]).await;
    let etag = first.headers()["etag"].to_str().expect("etag").to_string();
    let again = s.get_raw(&path, &[("If-None-Match", &etag)]).await;
    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn budget_exhaustion_answers_429_with_retry_after_and_rate_limit_headers() {
    let s = start(11, |c| c.ru_per_minute = 20).await;
    let drive = first_drive(&s).await;
    let mut saw_headers = false;
    let mut throttled = None;
    for _ in 0..25 {
        let r = s.get_raw(&format!("/v1.0/drives/{drive}"), &[]).await;
        if r.status() == 429 {
            throttled = Some(r);
            break;
        }
        saw_headers |= r.headers().contains_key("ratelimit-remaining");
    }
    assert!(
        saw_headers,
        "RateLimit-* headers appear past 80% of the budget"
    );
    let r = throttled.expect("throttled within the budget");
    // Seconds with a fraction, as the throttling page's sample (`Retry-After: 2.128`); the
    // RateLimit-Reset beside it counts whole seconds and is never the shorter wait.
    let header = |name: &str| r.headers()[name].to_str().expect("h").to_string();
    let retry: f64 = header("retry-after").parse().expect("seconds");
    assert!(
        header("retry-after")
            .split_once('.')
            .is_some_and(|(_, f)| f.len() == 3),
        "{}",
        header("retry-after")
    );
    assert!(retry > 0.0 && retry <= 60.0, "{retry}");
    let reset: u64 = header("ratelimit-reset").parse().expect("whole seconds");
    assert!(reset as f64 >= retry, "{reset} < {retry}");
    // The accounting says so: the most RU in one sliding minute, over the budget it was held to
    // (what the fleet bench checks, per tenant, to be never over).
    let stats: Value = s.get("/_sim/stats").await;
    assert_eq!(stats["sharepoint_ru_per_minute"], 20);
    assert!(
        stats["sharepoint_peak_minute_ru"].as_u64().expect("peak") > 20,
        "{stats}"
    );
    // The directory has a budget of its own.
    assert_eq!(s.get_raw("/v1.0/users/delta", &[]).await.status(), 200);
    // Throttled requests still count, and an app that ignores Retry-After gets blocked with 503s.
    let before = s
        .http
        .get(s.url("/_sim/stats"))
        .send()
        .await
        .expect("stats")
        .json::<Value>()
        .await
        .expect("json")["ru_spent"]
        .as_u64()
        .expect("ru");
    let mut statuses = Vec::new();
    for _ in 0..15 {
        statuses.push(
            s.get_raw(&format!("/v1.0/drives/{drive}"), &[])
                .await
                .status()
                .as_u16(),
        );
    }
    let after = s
        .http
        .get(s.url("/_sim/stats"))
        .send()
        .await
        .expect("stats")
        .json::<Value>()
        .await
        .expect("json")["ru_spent"]
        .as_u64()
        .expect("ru");
    assert_eq!(after - before, 15, "every throttled request was charged");
    assert_eq!(statuses.last(), Some(&503), "{statuses:?}");
}

/// An injected 429 is the throttling page's sample (learn.microsoft.com/graph/throttling, "Sample
/// response"): `TooManyRequests`, the inner error's `code` and `status` as strings, and
/// `Retry-After` with a fraction.
#[tokio::test]
async fn an_injected_429_is_shaped_as_the_throttling_sample() {
    let s = start(14, |_| {}).await;
    let drive = first_drive(&s).await;
    let set = s
        .post(
            "/_sim/faults",
            json!({"next": {"429": 1}, "retry_after_secs": 2.128}),
        )
        .await;
    assert!(set.status().is_success());
    let r = s.get_raw(&format!("/v1.0/drives/{drive}"), &[]).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2.128");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert_eq!(body["error"]["message"], "Please retry again later.");
    assert_eq!(
        (
            &body["error"]["innerError"]["code"],
            &body["error"]["innerError"]["status"]
        ),
        (&json!("429"), &json!("429"))
    );
    assert!(body["error"]["innerError"]["request-id"].is_string());
}

#[tokio::test]
async fn batch_limits_and_per_request_throttling() {
    let s = start(12, |c| c.ru_per_minute = 30).await;
    let items = s.dump("items").await;
    let reqs: Vec<Value> = items
        .iter()
        .take(21)
        .enumerate()
        .map(|(n, i)| json!({"id": n.to_string(), "method": "GET", "url": format!("/drives/{}/items/{}/permissions", i["driveId"].as_str().expect("d"), i["id"].as_str().expect("i"))}))
        .collect();
    let too_many = s.post("/v1.0/$batch", json!({"requests": reqs})).await;
    assert_eq!(too_many.status(), 400);
    let r = s
        .post("/v1.0/$batch", json!({"requests": reqs[..10]}))
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    let responses = body["responses"].as_array().expect("responses");
    let statuses: HashMap<String, u64> = responses
        .iter()
        .map(|r| {
            (
                r["id"].as_str().expect("id").to_string(),
                r["status"].as_u64().expect("s"),
            )
        })
        .collect();
    assert_eq!(statuses.len(), 10);
    // 30 RU buys six permission reads at 5 RU; the rest are throttled one by one.
    assert_eq!(
        statuses.values().filter(|&&s| s == 200).count(),
        6,
        "{statuses:?}"
    );
    for r in responses.iter().filter(|r| r["status"] == 429) {
        assert!(r["headers"]["retry-after"].is_string(), "{r}");
    }
}

/// A server error inside a batch is the inner request's, as throttling is: the envelope answers
/// 200 and the failed request carries 500 with a Graph error body (json-batching: each response
/// has its own status; best practices, "Handling expected errors": 5xx are transient).
#[tokio::test]
async fn a_server_error_inside_a_batch_is_the_inner_requests_own() {
    let s = start(13, |_| {}).await;
    let items = s.dump("items").await;
    let reqs: Vec<Value> = items
        .iter()
        .take(3)
        .enumerate()
        .map(|(n, i)| json!({"id": n.to_string(), "method": "GET", "url": format!("/drives/{}/items/{}/permissions", i["driveId"].as_str().expect("d"), i["id"].as_str().expect("i"))}))
        .collect();
    let set = s.post("/_sim/faults", json!({"next": {"500": 1}})).await;
    assert!(set.status().is_success());
    let r = s.post("/v1.0/$batch", json!({"requests": reqs})).await;
    assert_eq!(r.status(), 200, "the envelope is not the one that fails");
    let body: Value = r.json().await.expect("json");
    let failed: Vec<&Value> = body["responses"]
        .as_array()
        .expect("responses")
        .iter()
        .filter(|r| r["status"] == 500)
        .collect();
    assert_eq!(failed.len(), 1, "{body}");
    assert!(failed[0]["body"]["error"]["code"].is_string(), "{body}");
}

#[tokio::test]
async fn deterministic_from_the_seed() {
    let a = start(42, |_| {}).await;
    let b = start(42, |_| {}).await;
    let c = start(43, |_| {}).await;
    let ma = sentinel_sim::control::manifest(&a.sim.state);
    let mb = sentinel_sim::control::manifest(&b.sim.state);
    let mc = sentinel_sim::control::manifest(&c.sim.state);
    assert_eq!(ma, mb);
    assert_eq!(a.dump("permissions").await, b.dump("permissions").await);
    assert_ne!(ma.tenant_id, mc.tenant_id);
}

#[tokio::test]
async fn a_request_without_a_valid_token_is_401_with_graphs_error_shape() {
    let s = start(13, |_| {}).await;
    let r = s
        .http
        .get(s.url("/v1.0/sites/getAllSites"))
        .bearer_auth("not-a-jwt")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 401);
    assert_graph_error(&r.json().await.expect("json"), "InvalidAuthenticationToken");
    // A token for another audience (the worker API) is not a Graph token.
    let api = s
        .app_token(&format!("api://{}/.default", s.sim.state.config.client_id))
        .await;
    let r = s
        .http
        .get(s.url("/v1.0/sites/getAllSites"))
        .bearer_auth(api["access_token"].as_str().expect("t"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn mutations_can_be_limited_to_some_kinds_of_change() {
    let s = start(9, |c| c.profile = sentinel_sim::Profile::Small).await;
    let r = s
        .post(
            "/_sim/mutate",
            json!({"count": 40, "kinds": ["rename", "modify"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.expect("json");
    assert_eq!(report["applied"], 40, "{report}");
    let kinds: HashSet<&str> = report["by_kind"]
        .as_object()
        .expect("by_kind")
        .keys()
        .map(String::as_str)
        .collect();
    assert!(
        kinds.is_subset(&HashSet::from(["rename", "modify"])) && !kinds.is_empty(),
        "{report}"
    );
    let before = s.dump("items").await;
    let r = s
        .post(
            "/_sim/mutate",
            json!({"count": 5, "kinds": ["rename", "teleport"]}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let body = r.text().await.expect("text");
    assert!(body.contains("teleport"), "{body}");
    assert_eq!(
        s.dump("items").await,
        before,
        "a refused request changes nothing"
    );
}
