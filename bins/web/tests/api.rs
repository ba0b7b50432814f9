//! The dashboard's HTTP surface without a browser: who may call what, bad input, headers.

mod common;

use common::{Stack, signed_in};
use sentinel_sim::Profile;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_out_callers_get_nothing_but_health_and_sign_in() {
    let stack = Stack::start(Profile::Tiny, 21).await;
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let health = anon
        .get(format!("{}/health", stack.url))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    for page in ["/analytics", "/jobs", "/runs", "/admin", "/sites/x"] {
        let r = anon
            .get(format!("{}{page}", stack.url))
            .send()
            .await
            .expect("page");
        assert_eq!(r.status(), 303, "{page}");
        let to = r.headers()["location"].to_str().expect("location");
        assert!(to.starts_with("/auth/login?return_to="), "{page} -> {to}");
    }
    for api in [
        "/api/analytics",
        "/api/jobs",
        "/api/graph/site-access?siteId=x",
    ] {
        let r = anon
            .get(format!("{}{api}", stack.url))
            .send()
            .await
            .expect("api");
        assert_eq!(r.status(), 401, "{api}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"], "sign in first");
    }
    let r = anon
        .post(format!("{}/api/jobs", stack.url))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
    // Sign-in refuses a callback that no sign-in in this browser started.
    let r = anon
        .get(format!("{}/auth/callback?code=abc&state=forged", stack.url))
        .send()
        .await
        .expect("callback");
    assert_eq!(r.status(), 400);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_validates_input_and_sets_security_headers() {
    let stack = Stack::start(Profile::Tiny, 22).await;
    let (client, csrf) = signed_in(&stack.url, 0).await;
    let base = &stack.url;

    let page = client
        .get(format!("{base}/analytics"))
        .send()
        .await
        .expect("page");
    let h = page.headers();
    let csp = h["content-security-policy"].to_str().expect("csp");
    assert!(
        csp.contains("script-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let body = page.text().await.expect("html");
    assert!(!body.contains("<script"), "no script at all");

    // Ids that could change which Graph path is called are refused before any call.
    let calls_before: Vec<Value> = reqwest::get(format!("{}/_sim/requests", stack.sim().url()))
        .await
        .expect("log")
        .json()
        .await
        .expect("json");
    for (query, what) in [
        ("driveId=b!x&itemId=..", "item"),
        ("driveId=a/b&itemId=1", "drive"),
        ("driveId=a&itemId=1?x=1", "item"),
        ("driveId=a&itemId=1%23frag", "item"),
        ("driveId=a%2F..%2Fusers&itemId=1", "drive"),
        ("itemId=1", "driveId is required"),
    ] {
        let r = client
            .get(format!("{base}/api/graph/drive-item-permissions?{query}"))
            .send()
            .await
            .expect("live");
        assert_eq!(r.status(), 400, "{query}");
        let body: Value = r.json().await.expect("json");
        let msg = body["error"].as_str().expect("message");
        assert!(msg.contains(what), "{query}: {msg}");
    }
    let r = client
        .get(format!("{base}/api/graph/site-access?siteId=..%2Fsites"))
        .send()
        .await
        .expect("site");
    assert_eq!(r.status(), 400);
    let calls_after: Vec<Value> = reqwest::get(format!("{}/_sim/requests", stack.sim().url()))
        .await
        .expect("log")
        .json()
        .await
        .expect("json");
    let graph_calls = |log: &[Value]| {
        log.iter()
            .filter(|r| {
                r["path"]
                    .as_str()
                    .is_some_and(|p| p.contains("/v1.0/drives/") || p.contains("/v1.0/sites/"))
            })
            .count()
    };
    assert_eq!(
        graph_calls(&calls_after),
        graph_calls(&calls_before),
        "no Graph call for a bad id"
    );

    // An unknown item is Graph's 404, said as such.
    let r = client
        .get(format!(
            "{base}/api/graph/drive-item-permissions?driveId=nope&itemId=nope"
        ))
        .send()
        .await
        .expect("live");
    assert_eq!(r.status(), 404);

    // Job CRUD through the API, with clear errors for bad input.
    let post = |body: Value| {
        client
            .post(format!("{base}/api/jobs"))
            .header("x-csrf-token", &csrf)
            .json(&body)
            .send()
    };
    let r = post(
        serde_json::json!({"job_type": "graph_ingest", "config": {"permission_mode": "sideways"}}),
    )
    .await
    .expect("post");
    assert_eq!(r.status(), 400);
    let msg = r.json::<Value>().await.expect("json")["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("permission_mode") || msg.contains("sideways"),
        "{msg}"
    );
    let r = post(serde_json::json!({"job_type": "mine_bitcoin"}))
        .await
        .expect("post");
    assert_eq!(r.status(), 400);
    let r = post(serde_json::json!({"job_type": "refresh_mv", "name": "views"}))
        .await
        .expect("post");
    assert_eq!(r.status(), 201);
    let job: Value = r.json().await.expect("json");
    let job_id = job["job_id"].as_str().expect("id").to_string();
    let r = client
        .post(format!("{base}/api/jobs/{job_id}/schedules"))
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({"cron_expr": "*/10 * * * MON-FRI"}))
        .send()
        .await
        .expect("schedule");
    assert_eq!(r.status(), 201);
    let s: Value = r.json().await.expect("json");
    assert_eq!(s["upcoming"].as_array().map(Vec::len), Some(5));
    let r = client
        .post(format!("{base}/api/jobs/{job_id}/schedules"))
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({"cron_expr": "* * *"}))
        .send()
        .await
        .expect("schedule");
    assert_eq!(r.status(), 400);
    let r = client
        .get(format!("{base}/api/cron-preview?expr=0+0+31+2+*"))
        .send()
        .await
        .expect("preview");
    assert_eq!(r.status(), 400, "February 31st never comes");
    let msg = r.json::<Value>().await.expect("json")["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.contains("never fires"), "{msg}");
    let r = client
        .get(format!("{base}/runs?status=exploded"))
        .send()
        .await
        .expect("runs");
    assert_eq!(r.status(), 400);
    let r = client
        .get(format!("{base}/runs?job_id=not-a-uuid"))
        .send()
        .await
        .expect("runs");
    assert_eq!(r.status(), 400);

    // A finished run says what it skipped, and why (a locked site does not fail a scan).
    sqlx::query(
        "INSERT INTO job_runs (run_id, job_id, finished_at, status, progress) VALUES ($1, $2::uuid, now(), 'success', $3)",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(&job_id)
    .bind(serde_json::json!({
        "skipped_sites": {"contoso.sharepoint.com,1,2": "403 accessDenied: Access denied."},
        "skipped_drives": {"users/u1/drive": "403 accessDenied"},
    }))
    .execute(&stack.db.pool)
    .await
    .expect("run");
    let html = client
        .get(format!("{base}/runs?job_id={job_id}"))
        .send()
        .await
        .expect("runs")
        .text()
        .await
        .expect("html");
    assert!(
        html.contains("Skipped 1 site")
            && html.contains("1 drive")
            && html.contains("403 accessDenied: Access denied."),
        "{html}"
    );

    // Tables download as CSV.
    let r = client
        .get(format!("{base}/jobs?format=csv"))
        .send()
        .await
        .expect("csv");
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = r.text().await.expect("text");
    assert!(csv.starts_with("job_id,name,job_type"));
    assert!(csv.contains(&job_id) && csv.contains("*/10 * * * MON-FRI"));

    let r = client
        .delete(format!("{base}/api/jobs/{job_id}"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 204);
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_events WHERE entity_id IN ($1, (SELECT max(entity_id) FROM audit_events WHERE action = 'schedule.create')) ORDER BY occurred_at")
        .bind(&job_id)
        .fetch_all(&stack.db.pool)
        .await
        .expect("audit");
    assert_eq!(actions, ["job.create", "schedule.create", "job.delete"]);
    stack.stop().await;
}

#[test]
fn a_missing_or_malformed_variable_stops_start_up_with_one_line_naming_it() {
    for (unset, set, name) in [
        ("WEB_PUBLIC_URL", None, "WEB_PUBLIC_URL"),
        (
            "",
            Some(("WORKER_API_URL", "worker:8081")),
            "WORKER_API_URL",
        ),
        ("", Some(("WEB_ADDR", "everywhere")), "WEB_ADDR"),
        ("ENTRA_CLIENT_SECRET", None, "ENTRA_CLIENT_SECRET"),
    ] {
        let mut c = std::process::Command::new(common::WEB_BIN);
        c.env_clear()
            .env(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/postgres",
            )
            .env("ENTRA_TENANT_ID", "t")
            .env("ENTRA_CLIENT_ID", "c")
            .env("ENTRA_CLIENT_SECRET", "s")
            .env("WEB_PUBLIC_URL", "http://localhost:8080")
            .env_remove(unset);
        if let Some((k, v)) = set {
            c.env(k, v);
        }
        let out = c.output().expect("run sentinel-web");
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(name), "{err}");
    }
}
