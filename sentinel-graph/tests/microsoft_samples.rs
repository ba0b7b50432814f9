//! Microsoft's own samples (`tests/fixtures/microsoft/samples.json`, each with its Learn page)
//! replayed by a fixture server to the client: what the client makes of them is what the pages'
//! prose says, not what our simulator happens to send.

mod common;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use common::*;
use futures::TryStreamExt;
use sentinel_graph::models::Site;
use sentinel_graph::{BatchRequest, GraphClient};
use serde_json::Value;

fn sample(name: &str) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/microsoft/samples.json"
    );
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("samples")).expect("JSON");
    let sample = doc["samples"][name].clone();
    assert!(
        sample["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("https://learn.microsoft.com/")),
        "{name} names its page"
    );
    sample
}

/// The sample as an HTTP answer: its status, its headers and its body, as printed.
fn answer(sample: &Value) -> Response {
    let status =
        StatusCode::from_u16(sample["status"].as_u64().unwrap_or(200) as u16).expect("a status");
    let mut r = (status, axum::Json(sample["body"].clone())).into_response();
    for (k, v) in sample["headers"].as_object().into_iter().flatten() {
        let (Ok(k), Some(Ok(v))) = (
            HeaderName::try_from(k.as_str()),
            v.as_str().map(HeaderValue::from_str),
        ) else {
            panic!("header {k}: {v}");
        };
        r.headers_mut().insert(k, v);
    }
    r
}

/// Serves `respond(n, method, path)` for the n-th request (from 0) and records when each came.
async fn fixture_server(
    respond: impl Fn(usize, &Method, &str) -> Response + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<(Instant, String)>>>) {
    let seen: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let log = seen.clone();
    let respond = Arc::new(respond);
    let app = Router::new().fallback(move |method: Method, uri: axum::http::Uri| {
        let (log, respond) = (log.clone(), respond.clone());
        async move {
            let n = {
                let mut log = log.lock().expect("log");
                log.push((Instant::now(), format!("{method} {}", uri.path())));
                log.len() - 1
            };
            respond(n, &method, uri.path())
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (format!("http://{addr}/v1.0"), seen)
}

async fn client_against(graph_root: &str) -> (TestTenant, GraphClient) {
    // The simulator only issues the token; every Graph call goes to the fixture server.
    let tenant = spawn_tenant(41, |_| {}).await;
    let client = client_for(&tenant.sim, |c| {
        c.graph_base_url = graph_root.parse().expect("url");
    });
    (tenant, client)
}

/// learn.microsoft.com/graph/throttling, "Sample response": `Retry-After: 2.128`. The client
/// must wait those 2.128 s, not take the value for missing and back off for 1 s.
#[tokio::test]
async fn the_throttling_sample_is_waited_out_to_the_millisecond() {
    let throttled = sample("throttling-429");
    let (root, seen) = fixture_server(move |n, _, _| {
        if n == 0 {
            answer(&throttled)
        } else {
            axum::Json(serde_json::json!({"id": "b!sample", "driveType": "business"}))
                .into_response()
        }
    })
    .await;
    let (_tenant, client) = client_against(&root).await;
    let drive = client
        .drive("b!sample")
        .await
        .expect("the drive, after the wait");
    assert_eq!(drive.id, "b!sample");
    let seen = seen.lock().expect("log");
    assert_eq!(seen.len(), 2, "one 429, one retry: {seen:?}");
    let gap = seen[1].0 - seen[0].0;
    assert!(
        gap >= Duration::from_millis(2128),
        "resent after {gap:?}, before the 2.128 s Graph asked"
    );
}

/// learn.microsoft.com/graph/json-batching, "Example JSON batch response": each request gets
/// its own answer, matched by `id` ("Individual responses might appear in a different order":
/// served here in reverse), and a 403 or 405 inside a 200 envelope is that request's own failure,
/// not retried and not the batch's.
#[tokio::test]
async fn the_batching_sample_answers_each_request_by_its_id() {
    let batch = sample("json-batching-response");
    let mut body = batch.clone();
    if let Some(r) = body["body"]["responses"].as_array_mut() {
        r.reverse();
    }
    let (root, seen) = fixture_server(move |_, _, _| answer(&body)).await;
    let (_tenant, client) = client_against(&root).await;
    let requests: Vec<BatchRequest> = batch["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .map(|r| {
            BatchRequest::get(
                r["id"].as_str().expect("id"),
                r["url"].as_str().expect("url"),
            )
        })
        .collect();
    let responses = client.batch(requests).await.expect("the batch");
    let got: Vec<(&str, u16, bool)> = responses
        .iter()
        .map(|r| (r.id.as_str(), r.status, r.is_success()))
        .collect();
    assert_eq!(
        got,
        [
            ("1", 200, true),
            ("2", 403, false),
            ("3", 403, false),
            ("4", 405, false),
            ("5", 200, true)
        ]
    );
    assert_eq!(responses[4].body["@odata.count"], 36);
    assert_eq!(
        responses[2].body["error"]["code"],
        "Authorization_RequestDenied"
    );
    assert_eq!(
        responses[0]
            .headers
            .get("x-ms-resource-unit")
            .map(String::as_str),
        Some("1"),
        "inner headers are kept (names compared without case)"
    );
    assert_eq!(
        seen.lock().expect("log").len(),
        1,
        "failures inside the batch are not resent"
    );
}

/// learn.microsoft.com/graph/api/site-list-subsites, the response example: sites with `name` and
/// no `displayName` or `siteCollection`; ids keep the collection's GUID.
#[tokio::test]
async fn the_subsites_sample_lists_both_subsites_with_what_it_prints() {
    let listed = sample("list-subsites");
    let (root, seen) = fixture_server(move |_, _, _| answer(&listed)).await;
    let (_tenant, client) = client_against(&root).await;
    let subsites = client
        .subsites("contoso.sharepoint.com,da60e844-ba1d-49bc-b4d4-d5e36bae9019,2c4bd24f-5b8c-4d1e-b5a2-ae3de5f5c1a7")
        .await
        .expect("subsites");
    let got: Vec<(&str, Option<&str>, Option<&str>)> = subsites
        .iter()
        .map(|s| (s.id.as_str(), s.name.as_deref(), s.display_name.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "contoso.sharepoint.com,da60e844-ba1d-49bc-b4d4-d5e36bae9019,712a596e-90a1-49e3-9b48-bfa80bee8740",
                Some("Team A Subsite"),
                None
            ),
            (
                "contoso.sharepoint.com,da60e844-ba1d-49bc-b4d4-d5e36bae9019,0271110f-634f-4300-a841-3a8a2e851851",
                Some("Team B Subsite"),
                None
            )
        ]
    );
    let seen = seen.lock().expect("log");
    assert!(
        seen[0].1.ends_with("/sites"),
        "GET /sites/{{site-id}}/sites: {seen:?}"
    );
}

/// learn.microsoft.com/graph/api/drive-get, the response example (`GET /users/{id}/drive` is one
/// of the requests it answers): a OneDrive with its owner and a quota that prints no `used`.
#[tokio::test]
async fn the_drive_sample_is_a_users_onedrive_with_owner_and_quota_as_printed() {
    let printed = sample("drive-get");
    let (root, seen) = fixture_server(move |_, _, _| answer(&printed)).await;
    let (_tenant, client) = client_against(&root).await;
    let drive = client
        .user_drive("efee1b77-fb3b-4f65-99d6-274c11914d12")
        .await
        .expect("the drive")
        .expect("a OneDrive, not 'none'");
    assert_eq!(
        drive.id,
        "b!t18F8ybsHUq1z3LTz8xvZqP8zaSWjkFNhsME-Fepo75dTf9vQKfeRblBZjoSQrd7"
    );
    assert_eq!(drive.drive_type.as_deref(), Some("business"));
    let owner = drive.owner.and_then(|o| o.user).expect("owner.user");
    assert_eq!(
        (owner.id.as_deref(), owner.display_name.as_deref()),
        (
            Some("efee1b77-fb3b-4f65-99d6-274c11914d12"),
            Some("Ryan Gregg")
        )
    );
    let quota = drive.quota.expect("quota");
    assert_eq!(
        (quota.total, quota.remaining, quota.deleted, quota.used),
        (Some(1099511627776), Some(1099447353539), Some(256938), None),
        "an absent `used` stays unknown, not 0"
    );
    assert_eq!(quota.state.as_deref(), Some("normal"));
    let seen = seen.lock().expect("log");
    assert_eq!(
        seen[0].1, "GET /v1.0/users/efee1b77-fb3b-4f65-99d6-274c11914d12/drive",
        "{seen:?}"
    );
}

/// learn.microsoft.com/graph/api/site-getallsites, the response example: three site
/// collections and a nextLink that names the function `oneDrive.getAllSites`, not the URL that was
/// requested. The client follows the link as given (its last page here is composed: an empty
/// `value` and no nextLink) and keeps what its model does not read in `raw`.
#[tokio::test]
async fn the_all_sites_sample_is_followed_by_its_own_next_link() {
    // The printed link points at Graph; here Graph is the fixture server, known once it listens.
    let graph_root = Arc::new(OnceLock::<String>::new());
    let printed = sample("site-getallsites").to_string();
    let known = graph_root.clone();
    let (root, seen) = fixture_server(move |n, _, _| {
        if n == 0 {
            let here = known.get().expect("the root is set before the first call");
            let first = printed.replace("https://graph.microsoft.com/v1.0", here);
            answer(&serde_json::from_str(&first).expect("JSON"))
        } else {
            axum::Json(serde_json::json!({"value": []})).into_response()
        }
    })
    .await;
    graph_root.set(root.clone()).expect("set once");
    let (_tenant, client) = client_against(&root).await;
    let pages: Vec<Vec<Site>> = client.all_sites().try_collect().await.expect("every page");
    let sites: Vec<(&str, Option<&str>, Option<&str>)> = pages
        .iter()
        .flatten()
        .map(|s| {
            (
                s.name.as_deref().unwrap_or_default(),
                s.web_url.as_deref(),
                s.display_name.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        sites,
        [
            ("Root Site", Some("https://contoso.sharepoint.com"), None),
            (
                "Site A",
                Some("https://contoso.sharepoint.com/sites/siteA"),
                None
            ),
            (
                "Site B",
                Some("https://contoso.sharepoint.com/sites/siteB"),
                None
            )
        ]
    );
    assert_eq!(
        pages[0][0].raw["siteCollection"]["dataLocationCode"], "NAM",
        "what the model does not read is kept"
    );
    let seen: Vec<String> = seen
        .lock()
        .expect("log")
        .iter()
        .map(|s| s.1.clone())
        .collect();
    assert_eq!(
        seen,
        [
            "GET /v1.0/sites/getAllSites",
            "GET /v1.0/sites/oneDrive.getAllSites"
        ]
    );
}
