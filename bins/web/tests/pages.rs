//! The dashboard's pages and API in-process, one behaviour a test: the real router over a
//! database of its own, a fake worker, requests through `oneshot`.

mod common;

use axum::http::{Method, StatusCode};
use common::app::{TestApp, get, spawn_app};
use sentinel_store::Store;
use sentinel_web::auth::{ROLE_ADMIN, ROLE_READER};
use serde_json::json;

/// Runs `check` with a fresh app, dropping its database even when `check` fails.
async fn with_app<F: AsyncFnOnce(&TestApp)>(check: F) {
    let app = spawn_app().await;
    check(&app).await;
    app.db.drop_db().await;
}

#[tokio::test]
async fn one_handler_serves_the_page_the_json_and_the_csv() {
    with_app(async |app| {
        let admin = app.sign_in(ROLE_ADMIN).await;
        let r = app
            .call(
                Method::POST,
                "/api/jobs",
                &admin,
                Some(json!({"name": "Nightly \"scan\"", "job_type": "refresh_mv"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

        let page = app.get("/jobs", Some(&admin)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.header("content-type").starts_with("text/html"));
        assert!(
            page.body.contains("Nightly &quot;scan&quot;"),
            "escaped in HTML"
        );

        let api = app.get("/api/jobs", Some(&admin)).await;
        assert!(api.header("content-type").starts_with("application/json"));
        assert_eq!(api.json()["jobs"][0]["name"], "Nightly \"scan\"");

        let csv = app.get("/jobs?format=csv", Some(&admin)).await;
        assert!(csv.header("content-type").starts_with("text/csv"));
        let mut lines = csv.body.lines();
        assert!(
            lines
                .next()
                .is_some_and(|h| h.starts_with("job_id,name,job_type"))
        );
        assert!(
            lines
                .next()
                .is_some_and(|row| row.contains("\"Nightly \"\"scan\"\"\""))
        );
    })
    .await;
}

#[tokio::test]
async fn a_broken_database_is_said_plainly_and_its_error_text_stays_in_the_log() {
    with_app(async |app| {
        let reader = app.sign_in(ROLE_ADMIN).await;
        // A schema that lost its tables: Postgres's message names them.
        sqlx::raw_sql(
            "ALTER TABLE mv_msgraph_inventory_summary RENAME TO summary_gone; \
             ALTER TABLE audit_events RENAME TO audit_gone",
        )
        .execute(&app.db.pool)
        .await
        .expect("break the schema");
        for path in ["/analytics", "/admin", "/api/analytics", "/api/admin"] {
            let r = app.get(path, Some(&reader)).await;
            assert_eq!(
                r.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{path}: {}",
                r.body
            );
            assert!(
                r.body.contains("the database did not answer"),
                "{path}: {}",
                r.body
            );
            for leak in ["mv_msgraph", "audit_events", "relation", "does not exist"] {
                assert!(!r.body.contains(leak), "{path} shows '{leak}': {}", r.body);
            }
        }
        assert_eq!(
            app.get("/api/admin", Some(&reader)).await.json()["error"]
                .as_str()
                .map(|m| m.starts_with("the database did not answer")),
            Some(true),
            "the API says it in JSON"
        );

        // A database that does not answer at all: the same, for pages, JSON and CSV.
        let down = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(std::time::Duration::from_secs(2))
            .connect_lazy("postgres://sentinel:hunter2@127.0.0.1:1/sentinel")
            .expect("lazy pool");
        let router = app.with_store(Store::from_pool(down));
        for path in ["/runs", "/api/jobs", "/jobs?format=csv", "/sites/x"] {
            let r = get(&router, path, Some(&reader)).await;
            assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
            assert!(
                !r.body.contains("hunter2") && !r.body.contains("127.0.0.1:1"),
                "{path}: {}",
                r.body
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_bad_form_shows_the_page_again_and_bad_json_gets_a_400() {
    with_app(async |app| {
        let admin = app.sign_in(ROLE_ADMIN).await;
        let r = app
            .post_form(
                "/jobs",
                &admin,
                &[
                    ("csrf_token", &admin.csrf),
                    ("name", "typo"),
                    ("job_type", "graph_ingest"),
                    ("config", "{\"mode\": "),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.header("content-type").starts_with("text/html"));
        assert!(r.body.contains("config is not valid JSON"), "{}", r.body);
        assert!(
            r.body.contains("{&quot;mode&quot;: "),
            "the text typed is kept"
        );

        let r = app
            .call(
                Method::POST,
                "/api/jobs",
                &admin,
                Some(json!({"job_type": "refresh_mv", "config": {"x": 1}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            r.json()["error"],
            "refresh_mv config: unknown field `x`, there are no fields"
        );

        let r = app
            .call(
                Method::POST,
                "/api/jobs",
                &admin,
                Some(json!({"job_typ": "x"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(
            r.json()["error"]
                .as_str()
                .is_some_and(|m| m.contains("job_typ"))
        );
        assert_eq!(
            app.get("/api/jobs", Some(&admin)).await.json()["jobs"],
            json!([])
        );
    })
    .await;
}

#[tokio::test]
async fn forms_and_the_api_change_the_same_schedules_and_each_change_is_audited() {
    with_app(async |app| {
        let admin = app.sign_in(ROLE_ADMIN).await;
        let r = app
            .post_form(
                "/jobs",
                &admin,
                &[
                    ("csrf_token", &admin.csrf),
                    ("job_type", "refresh_mv"),
                    ("enabled", "on"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let job_page = r.header("location").to_string();
        let job_id = job_page.trim_start_matches("/jobs/").to_string();

        // Added by the form, changed by the API, refused by the form with the job shown again.
        let r = app
            .post_form(
                &format!("/jobs/{job_id}/schedules"),
                &admin,
                &[
                    ("csrf_token", &admin.csrf),
                    ("cron_expr", "0 3 * * *"),
                    ("enabled", "on"),
                ],
            )
            .await;
        assert_eq!(
            (r.status, r.header("location")),
            (StatusCode::SEE_OTHER, job_page.as_str())
        );
        let job = app
            .get(&format!("/api/jobs/{job_id}"), Some(&admin))
            .await
            .json();
        let schedule = job["schedules"][0]["schedule_id"]
            .as_str()
            .expect("id")
            .to_string();
        let r = app
            .call(
                Method::PUT,
                &format!("/api/schedules/{schedule}"),
                &admin,
                Some(json!({"cron_expr": "30 4 * * 1", "enabled": false})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.json()["upcoming"].as_array().map(Vec::len), Some(5));
        let r = app
            .post_form(
                &format!("/schedules/{schedule}"),
                &admin,
                &[
                    ("csrf_token", &admin.csrf),
                    ("cron_expr", "61 * * * *"),
                    ("job_id", &job_id),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains("id=\"job-title\""), "the job page, again");
        let job = app
            .get(&format!("/api/jobs/{job_id}"), Some(&admin))
            .await
            .json();
        assert_eq!(
            job["schedules"][0]["cron_expr"], "30 4 * * 1",
            "the refused change changed nothing"
        );
        assert_eq!(job["schedules"][0]["enabled"], false);

        // Deleted by the form: back to the job's page.
        let r = app
            .post_form(
                &format!("/schedules/{schedule}/delete"),
                &admin,
                &[("csrf_token", &admin.csrf)],
            )
            .await;
        assert_eq!(
            (r.status, r.header("location")),
            (StatusCode::SEE_OTHER, job_page.as_str())
        );
        let r = app
            .call(
                Method::DELETE,
                &format!("/api/schedules/{schedule}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.json()["error"], format!("no schedule {schedule}"));

        let audit = app
            .store
            .recent_audit_events(&app.tenant(), 10)
            .await
            .expect("audit");
        let actions: Vec<&str> = audit.iter().rev().map(|a| a.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "job.create",
                "schedule.create",
                "schedule.update",
                "schedule.delete"
            ]
        );
        assert!(
            audit
                .iter()
                .all(|a| a.actor_upn.as_deref() == Some("Sentinel.Admin@contoso.example"))
        );
    })
    .await;
}

#[tokio::test]
async fn changes_need_the_admin_role_and_the_csrf_token() {
    with_app(async |app| {
        let reader = app.sign_in(ROLE_READER).await;
        let admin = app.sign_in(ROLE_ADMIN).await;
        let r = app
            .post_form(
                "/jobs",
                &reader,
                &[("csrf_token", &reader.csrf), ("job_type", "refresh_mv")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.body.contains("needs the Sentinel.Admin role"));
        let r = app
            .post_form(
                "/jobs",
                &admin,
                &[("csrf_token", "forged"), ("job_type", "refresh_mv")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.body.contains("CSRF"));
        let r = app
            .post_form("/jobs", &admin, &[("job_type", "refresh_mv")])
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "no token at all");
        assert_eq!(
            app.get("/api/jobs", Some(&admin)).await.json()["jobs"],
            json!([])
        );
        assert!(
            app.store
                .recent_audit_events(&app.tenant(), 5)
                .await
                .expect("audit")
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn the_workers_refusals_are_passed_on_and_its_failures_are_not_detailed() {
    with_app(async |app| {
        let admin = app.sign_in(ROLE_ADMIN).await;
        // Only a job of the tenant shown reaches the worker: a job id of no tenant is not found.
        let stranger = uuid::Uuid::new_v4();
        let r = app
            .call(
                Method::POST,
                &format!("/api/admin/jobs/{stranger}/pause"),
                &admin,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let created = app
            .call(
                Method::POST,
                "/api/jobs",
                &admin,
                Some(json!({"job_type": "refresh_mv"})),
            )
            .await;
        let job: uuid::Uuid = created.json()["job_id"]
            .as_str()
            .expect("id")
            .parse()
            .expect("uuid");
        let r = app
            .call(
                Method::POST,
                &format!("/api/admin/jobs/{job}/pause"),
                &admin,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            app.worker.calls.lock().expect("lock").clone(),
            vec![("pause".to_string(), job)]
        );
        let r = app
            .post_form(
                &format!("/admin/jobs/{job}/run-now"),
                &admin,
                &[("csrf_token", &admin.csrf)],
            )
            .await;
        assert_eq!(
            (r.status, r.header("location")),
            (StatusCode::SEE_OTHER, "/admin")
        );
        let r = app
            .call(
                Method::POST,
                &format!("/api/admin/jobs/{job}/explode"),
                &admin,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        app.worker
            .fail_with(Some(409), "job is paused: resume it first");
        let r = app
            .call(
                Method::POST,
                &format!("/api/admin/jobs/{job}/run-now"),
                &admin,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(r.json()["error"], "job is paused: resume it first");

        app.worker.fail_with(
            Some(401),
            "InvalidSignature: key 3f2a not in the JWKS of login.example",
        );
        let r = app
            .call(
                Method::POST,
                &format!("/api/admin/jobs/{job}/run-now"),
                &admin,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_GATEWAY);
        assert!(!r.body.contains("JWKS"), "{}", r.body);
        let page = app.get("/admin", Some(&admin)).await;
        assert_eq!(
            page.status,
            StatusCode::OK,
            "the admin page is for a broken worker too"
        );
        assert!(
            page.body.contains("the worker answered 401"),
            "{}",
            page.body
        );
        assert!(!page.body.contains("JWKS"));

        app.worker
            .fail_with(None, "tcp connect error: 10.0.0.7:8081 refused");
        let page = app.get("/api/admin", Some(&admin)).await.json();
        assert_eq!(
            page["worker_health_error"],
            "the worker is unreachable; the cause is in the web's log"
        );
    })
    .await;
}

#[tokio::test]
async fn unknown_paths_and_bad_queries_are_refused_in_the_callers_format() {
    with_app(async |app| {
        let reader = app.sign_in(ROLE_READER).await;
        let r = app.get("/nowhere", Some(&reader)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(
            r.body.contains("id=\"error-message\""),
            "a page: {}",
            r.body
        );
        let r = app.get("/api/nowhere", Some(&reader)).await;
        assert_eq!(r.json()["error"], "nothing at /api/nowhere");
        let r = app.get("/api/runs?status=stuck", Some(&reader)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            r.json()["error"],
            "status must be one of running, success, failed, got 'stuck'"
        );
        let r = app.get("/api/sites/x?sort=size", Some(&reader)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            r.json()["error"],
            "sort must be one of name, audience, got 'size'"
        );
        let r = app
            .get(
                "/api/jobs/00000000-0000-0000-0000-000000000000",
                Some(&reader),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(
            r.header("x-frame-options"),
            "DENY",
            "errors carry the security headers"
        );
        let r = app.get("/api/jobs", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.json()["error"], "sign in first");
    })
    .await;
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_no_script() {
    with_app(async |app| {
        let reader = app.sign_in(ROLE_READER).await;
        let page = app.get("/analytics", Some(&reader)).await;
        assert_eq!(page.status, StatusCode::OK);
        let csp = page.header("content-security-policy");
        assert!(
            csp.contains("script-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        // Forms post here; the only other origin a submission may be redirected to is Entra's
        // (sign-out ends there).
        assert!(
            csp.contains(&format!("form-action 'self' {};", app.sim.url())),
            "{csp}"
        );
        assert_eq!(page.header("x-frame-options"), "DENY");
        assert_eq!(page.header("x-content-type-options"), "nosniff");
        assert_eq!(page.header("cache-control"), "no-store");
        assert_eq!(page.header("strict-transport-security"), "max-age=31536000");
        assert!(!page.body.contains("<script"), "no script at all");
    })
    .await;
}

/// The live panel's ids become Graph path segments: one that could change the path is refused
/// before any call, and an unknown item is Graph's 404.
#[tokio::test]
async fn live_ids_are_checked_before_any_graph_call() {
    with_app(async |app| {
        let reader = app.sign_in(ROLE_READER).await;
        let graph_calls = async || {
            let log: Vec<serde_json::Value> =
                reqwest::get(format!("{}/_sim/requests", app.sim.url()))
                    .await
                    .expect("log")
                    .json()
                    .await
                    .expect("json");
            log.iter()
                .filter(|r| {
                    r["route"].as_str().is_some_and(|p| {
                        p.starts_with("/v1.0/drives/") || p.starts_with("/v1.0/sites/")
                    })
                })
                .count()
        };
        let before = graph_calls().await;
        for (query, what) in [
            ("driveId=b!x&itemId=..", "item"),
            ("driveId=a/b&itemId=1", "drive"),
            ("driveId=a&itemId=1?x=1", "item"),
            ("driveId=a&itemId=1%23frag", "item"),
            ("driveId=a%2F..%2Fusers&itemId=1", "drive"),
            ("itemId=1", "driveId is required"),
        ] {
            let r = app
                .get(
                    &format!("/api/graph/drive-item-permissions?{query}"),
                    Some(&reader),
                )
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
            let msg = r.json()["error"].as_str().unwrap_or_default().to_string();
            assert!(msg.contains(what), "{query}: {msg}");
        }
        let r = app
            .get("/api/graph/site-access?siteId=..%2Fsites", Some(&reader))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(graph_calls().await, before, "no Graph call for a bad id");

        // Well-formed ids of something the scans never saw: not Graph's to answer.
        let r = app
            .get(
                "/api/graph/drive-item-permissions?driveId=nope&itemId=nope",
                Some(&reader),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(r.body.contains("in the cache"), "{}", r.body);
        let r = app
            .get("/api/graph/site-access?siteId=nope", Some(&reader))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(
            graph_calls().await,
            before,
            "no Graph call for what is not cached"
        );

        let (drive, item) = app.cache_an_item().await;
        let r = app
            .get(
                &format!("/api/graph/drive-item-permissions?driveId={drive}&itemId={item}"),
                Some(&reader),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(
            graph_calls().await > before,
            "a cached item is asked of Graph"
        );
    })
    .await;
}

#[tokio::test]
async fn jobs_schedules_and_filters_refuse_bad_input_saying_what_to_fix() {
    with_app(async |app| {
        let admin = app.sign_in(ROLE_ADMIN).await;
        let post = async |body: serde_json::Value| {
            app.call(Method::POST, "/api/jobs", &admin, Some(body))
                .await
        };
        let r =
            post(json!({"job_type": "graph_ingest", "config": {"permission_mode": "sideways"}}))
                .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(
            r.json()["error"]
                .as_str()
                .is_some_and(|m| m.starts_with("graph_ingest config: unknown variant `sideways`")),
            "{}",
            r.body
        );
        let r = post(json!({"job_type": "mine_bitcoin"})).await;
        assert_eq!(
            r.json()["error"],
            "unknown job type 'mine_bitcoin': use one of graph_ingest, refresh_mv"
        );
        let r = post(json!({"job_type": "refresh_mv"})).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let job = r.json()["job_id"].as_str().expect("id").to_string();
        let r = app
            .call(
                Method::POST,
                &format!("/api/jobs/{job}/schedules"),
                &admin,
                Some(json!({"cron_expr": "* * *"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = app
            .get("/api/cron-preview?expr=0+0+31+2+*", Some(&admin))
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "February 31st never comes"
        );
        assert!(r.body.contains("never fires"), "{}", r.body);
        for bad in ["/runs?status=exploded", "/runs?job_id=not-a-uuid"] {
            let r = app.get(bad, Some(&admin)).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(r.body.contains("id=\"error-message\""), "{bad}: a page");
        }
        let r = app
            .call(
                Method::PUT,
                "/api/jobs/not-a-uuid",
                &admin,
                Some(json!({"job_type": "refresh_mv"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    })
    .await;
}

/// A locked site does not fail a scan: the finished run says what it skipped, and why.
#[tokio::test]
async fn a_finished_run_says_what_it_skipped() {
    with_app(async |app| {
        let admin = app.sign_in(ROLE_ADMIN).await;
        let r = app
            .call(
                Method::POST,
                "/api/jobs",
                &admin,
                Some(json!({"job_type": "refresh_mv"})),
            )
            .await;
        let job = r.json()["job_id"].as_str().expect("id").to_string();
        sqlx::query(
            "INSERT INTO job_runs (run_id, job_id, finished_at, status, progress) \
             VALUES ($1, $2::uuid, now(), 'success', $3)",
        )
        .bind(uuid::Uuid::new_v4())
        .bind(&job)
        .bind(json!({
            "skipped_sites": {"contoso.sharepoint.com,1,2": "403 accessDenied: Access denied."},
            "skipped_drives": {"users/u1/drive": "403 accessDenied"},
        }))
        .execute(&app.db.pool)
        .await
        .expect("run");
        let html = app
            .get(&format!("/runs?job_id={job}"), Some(&admin))
            .await
            .body;
        assert!(
            html.contains("Skipped 1 site")
                && html.contains("1 drive")
                && html.contains("403 accessDenied: Access denied."),
            "{html}"
        );
        let api = app
            .get(&format!("/api/runs?job_id={job}"), Some(&admin))
            .await
            .json();
        assert_eq!(api["runs"][0]["status"], "success");
        assert_eq!(api["total"], 1);
    })
    .await;
}

/// Anyone who can name a file or a job chooses what lands in an admin's spreadsheet.
#[tokio::test]
async fn a_csv_download_never_hands_a_spreadsheet_a_formula() {
    with_app(async |app| {
        let admin = app.sign_in(ROLE_ADMIN).await;
        let name = "=HYPERLINK(\"https://evil.example\",\"Open\")";
        let r = app
            .call(
                Method::POST,
                "/api/jobs",
                &admin,
                Some(json!({"name": name, "job_type": "refresh_mv"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let csv = app.get("/jobs?format=csv", Some(&admin)).await.body;
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let row = reader.records().next().expect("a row").expect("record");
        assert_eq!(&row[1], format!("'{name}"), "{csv}");
        // The JSON is data, not a spreadsheet: it keeps the name as given.
        assert_eq!(
            app.get("/api/jobs", Some(&admin)).await.json()["jobs"][0]["name"],
            name
        );
    })
    .await;
}

/// A slow query cannot hold a connection for ever: past the statement timeout it is cancelled
/// and the page says so (here a lock another session holds makes the query wait).
#[tokio::test]
async fn a_query_past_the_statement_timeout_is_stopped_and_said_so() {
    with_app(async |app| {
        let reader = app.sign_in(ROLE_READER).await;
        let store =
            Store::connect_with_timeout(&app.db.url, 2, std::time::Duration::from_millis(300))
                .await
                .expect("store");
        let router = app.with_store(store);
        let mut holder = app.db.pool.begin().await.expect("tx");
        sqlx::raw_sql("LOCK TABLE job_runs IN ACCESS EXCLUSIVE MODE")
            .execute(&mut *holder)
            .await
            .expect("lock");
        let started = std::time::Instant::now();
        let r = get(&router, "/runs", Some(&reader)).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
        assert!(r.body.contains("took too long"), "{}", r.body);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "stopped at the timeout, not at the lock's release"
        );
        holder.rollback().await.expect("release");
        let r = get(&router, "/runs", Some(&reader)).await;
        assert_eq!(r.status, StatusCode::OK, "fine once the lock is gone");
    })
    .await;
}

/// The audit trail, job configurations and the worker's address are for admins.
#[tokio::test]
async fn readers_neither_see_nor_open_the_admin_page() {
    with_app(async |app| {
        let reader = app.sign_in(ROLE_READER).await;
        for path in ["/admin", "/api/admin"] {
            let r = app.get(path, Some(&reader)).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
            assert!(r.body.contains("Sentinel.Admin"), "{path}: {}", r.body);
        }
        let page = app.get("/jobs", Some(&reader)).await.body;
        assert!(
            !page.contains("id=\"nav-admin\""),
            "no admin link for a reader"
        );
        let admin = app.sign_in(ROLE_ADMIN).await;
        let page = app.get("/jobs", Some(&admin)).await.body;
        assert!(page.contains("id=\"nav-admin\""));
        assert_eq!(app.get("/admin", Some(&admin)).await.status, StatusCode::OK);
    })
    .await;
}

/// Over https the sign-in cookie is `__Host-` prefixed: Secure, for the whole host, and not
/// settable by a sibling subdomain (the session cookie is named the same way).
#[tokio::test]
async fn over_https_cookies_are_host_bound_and_secure() {
    with_app(async |app| {
        let r = get(&app.over_https(), "/auth/login", None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let cookie = r.header("set-cookie");
        assert!(cookie.starts_with("__Host-sentinel_signin="), "{cookie}");
        assert!(
            cookie.contains("Secure") && cookie.contains("Path=/") && cookie.contains("HttpOnly"),
            "{cookie}"
        );
        assert!(!cookie.contains("Domain"), "{cookie}");
        assert_eq!(
            sentinel_web::session_cookie(true),
            "__Host-sentinel_session"
        );
    })
    .await;
}

/// A browser that only starts a sign-in stores nothing: anonymous requests cannot fill the
/// session table (a session row is written once the callback proves the state).
#[tokio::test]
async fn starting_a_sign_in_stores_no_session() {
    with_app(async |app| {
        let sessions = async || -> i64 {
            sqlx::query_scalar("SELECT count(*) FROM tower_sessions.session")
                .fetch_one(&app.db.pool)
                .await
                .expect("count")
        };
        let before = sessions().await;
        for _ in 0..200 {
            let r = app.get("/auth/login?return_to=/runs", None).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER);
        }
        assert_eq!(
            sessions().await,
            before,
            "200 sign-ins started, no row written"
        );
        // A callback without the cookie its sign-in set is refused.
        let r = app.get("/auth/callback?code=c&state=s", None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(sessions().await, before);
    })
    .await;
}

/// One reader scripting the live panel spends their share of the app's Graph budget, not the
/// scans': past it they are told to wait, and another reader still has theirs.
#[tokio::test]
async fn a_reader_spending_the_live_budget_is_stopped_at_their_share() {
    with_app(async |app| {
        let (drive, item) = app.cache_an_item().await;
        let path = format!("/api/graph/drive-item-permissions?driveId={drive}&itemId={item}");
        let reader = app.sign_in(ROLE_READER).await;
        // A permissions read costs 5 RU; a user's share is 60 RU a minute.
        let per_minute = sentinel_web::live_budget::PER_USER_RU_PER_MINUTE / 5;
        for k in 0..per_minute {
            assert_eq!(
                app.get(&path, Some(&reader)).await.status,
                StatusCode::OK,
                "call {k}"
            );
        }
        let r = app.get(&path, Some(&reader)).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
        assert!(
            r.json()["error"]
                .as_str()
                .is_some_and(|m| m.starts_with("your share")),
            "{}",
            r.body
        );
        let other = app.sign_in(ROLE_READER).await;
        assert_eq!(app.get(&path, Some(&other)).await.status, StatusCode::OK);
        // The item page's live panel says so too, and still shows the cache.
        let page = app
            .get(
                &format!("/drives/{drive}/items/{item}?live=1"),
                Some(&reader),
            )
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("id=\"live-error\""), "{}", page.body);
        assert!(page.body.contains("your share"));
    })
    .await;
}

/// An anyone link that can edit, without expiry, as a scan stores it.
fn anyone_edit_link(id: &str) -> sentinel_store::PermissionRow {
    sentinel_store::PermissionRow {
        permission_id: id.into(),
        roles: vec!["write".into()],
        link_type: Some("edit".into()),
        link_scope: Some("anonymous".into()),
        link_url_sha256: Some("sha".into()),
        link_prevents_download: None,
        has_password: None,
        expires_at: None,
        invitation_email: None,
        inherited_from_id: None,
        raw_json: json!({"id": id}),
        grants: vec![],
    }
}

/// `/changes`: an anyone link a scan found shows as opened with its age, in the page, the JSON
/// and the CSV; a guest grant that went away shows as removed; bad filters are 400s that say
/// what to send.
#[tokio::test]
async fn changes_show_exposure_opened_and_removed_in_every_format() {
    with_app(async |app| {
        let reader = app.sign_in(ROLE_READER).await;
        let (drive, item) = app.cache_an_item().await;
        let tenant = app.sim.state.read_tenant().tenant_id.clone();
        let link = anyone_edit_link("anyone-1");
        let guest = sentinel_store::PermissionRow {
            permission_id: "guest-1".into(),
            roles: vec!["read".into()],
            link_type: None,
            link_scope: None,
            link_url_sha256: None,
            grants: vec![sentinel_store::GrantRow {
                grantee_key: "user:g1".into(),
                grantee_type: "user".into(),
                grantee_id: Some("g1".into()),
                display_name: Some("Gail Guest".into()),
                email: Some("gail@partner.example".into()),
                login_name: None,
                is_external: true,
                is_everyone: false,
                is_everyone_except_external: false,
            }],
            ..link.clone()
        };
        let on = |perms| sentinel_store::ItemPermissions {
            drive_id: drive.clone(),
            item_id: item.clone(),
            permissions: perms,
        };
        app.store
            .replace_item_permissions(&tenant, &[on(vec![link.clone(), guest])])
            .await
            .expect("first scan");
        app.store
            .replace_item_permissions(&tenant, &[on(vec![link])])
            .await
            .expect("second scan: the guest lost access");

        let api = app.get("/api/changes?days=1", Some(&reader)).await;
        assert_eq!(api.status, StatusCode::OK, "{}", api.body);
        let changes = api.json()["changes"]["rows"].clone();
        let summary: Vec<(String, String)> = changes
            .as_array()
            .expect("rows")
            .iter()
            .map(|c| (c["change"].to_string(), c["kind"].to_string()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("\"removed\"".to_string(), "\"external_grant\"".to_string()),
                ("\"opened\"".to_string(), "\"anyone_link\"".to_string()),
                // The item now holds permissions of its own.
                (
                    "\"opened\"".to_string(),
                    "\"unique_permissions\"".to_string()
                ),
            ],
            "newest first: {changes}"
        );
        assert_eq!(changes[1]["open_days"], 0);
        assert_eq!(changes[0]["grantee"], "Gail Guest");

        let page = app.get("/changes?change=opened", Some(&reader)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body.contains("data-kind=\"anyone_link\""),
            "{}",
            page.body
        );
        assert!(
            !page.body.contains("Gail Guest"),
            "removed rows are filtered out"
        );
        let item_page = app
            .get(&format!("/drives/{drive}/items/{item}"), Some(&reader))
            .await;
        assert!(
            item_page.body.contains("open for 0 days"),
            "{}",
            item_page.body
        );

        let csv = app
            .get("/changes?format=csv&kind=external_grant", Some(&reader))
            .await;
        let lines: Vec<&str> = csv.body.lines().collect();
        assert!(lines[0].starts_with("change,kind,at,first_seen_at,removed_at,open_days"));
        assert_eq!(lines.len(), 2, "{}", csv.body);
        assert!(lines[1].starts_with("removed,external_grant,"));

        for (query, says) in [
            ("kind=anyone", "kind must be one of anyone_link"),
            ("change=closed", "change must be one of opened, removed"),
            ("since=last+week", "since must be a date"),
            ("days=0", "days must be a whole number from 1 to 3650"),
        ] {
            let r = app
                .get(&format!("/api/changes?{query}"), Some(&reader))
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
            assert!(
                r.json()["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with(says)),
                "{query}: {}",
                r.body
            );
        }
    })
    .await;
}

/// `/people` and `/people/{id}`: a member granted one item directly is listed with what they
/// reach, their page names the item and the way in, the CSV has the same rows, and an unknown
/// person or a bad filter is refused saying what to send.
#[tokio::test]
async fn people_show_what_each_person_reaches_and_how() {
    with_app(async |app| {
        let reader = app.sign_in(ROLE_READER).await;
        let (drive, item) = app.cache_an_item().await;
        let tenant = app.sim.state.read_tenant().tenant_id.clone();
        app.store
            .upsert_drives(
                &tenant,
                &[sentinel_store::DriveRow {
                    id: drive.clone(),
                    site_id: None,
                    owner_user_id: None,
                    name: Some("Ann's files".into()),
                    drive_type: Some("business".into()),
                    web_url: None,
                    quota_total: None,
                    quota_used: None,
                    created_at: None,
                    raw_json: json!({"id": drive}),
                }],
            )
            .await
            .expect("the library");
        let user = |id: &str, name: &str, guest: bool, enabled: bool| sentinel_store::UserRow {
            id: id.into(),
            display_name: Some(name.into()),
            user_principal_name: Some(format!("{id}@contoso.example")),
            mail: None,
            user_type: Some(if guest { "Guest" } else { "Member" }.into()),
            is_guest: guest,
            account_enabled: Some(enabled),
            department: None,
            has_license: None,
            created_at: None,
            raw_json: json!({"id": id}),
        };
        app.store
            .apply_users_page(
                &tenant,
                &[
                    user("ann", "Ann Member", false, true),
                    user("gus", "Gus Guest", true, true),
                    user("dan", "Dan Disabled", false, false),
                ],
                &[],
                None,
            )
            .await
            .expect("users");
        let grant = |id: &str| sentinel_store::GrantRow {
            grantee_key: format!("user:{id}"),
            grantee_type: "user".into(),
            grantee_id: Some(id.into()),
            display_name: None,
            email: None,
            login_name: None,
            is_external: false,
            is_everyone: false,
            is_everyone_except_external: false,
        };
        let direct = sentinel_store::PermissionRow {
            permission_id: "direct-1".into(),
            roles: vec!["write".into()],
            link_type: None,
            link_scope: None,
            link_url_sha256: None,
            link_prevents_download: None,
            has_password: None,
            expires_at: None,
            invitation_email: None,
            inherited_from_id: None,
            raw_json: json!({"id": "direct-1"}),
            grants: vec![grant("ann"), grant("dan")],
        };
        app.store
            .replace_item_permissions(
                &tenant,
                &[sentinel_store::ItemPermissions {
                    drive_id: drive.clone(),
                    item_id: item.clone(),
                    permissions: vec![direct],
                }],
            )
            .await
            .expect("scan");
        // What the scan's refresh_mv does after it: store everyone's reach.
        app.store
            .refresh_audiences_if_due()
            .await
            .expect("reach stored");

        let api = app.get("/api/people", Some(&reader)).await;
        assert_eq!(api.status, StatusCode::OK, "{}", api.body);
        let rows = api.json()["people"]["rows"].clone();
        let reach = |id: &str| {
            rows.as_array()
                .expect("rows")
                .iter()
                .find(|r| r["person_id"] == id)
                .map(|r| (r["items_read"].clone(), r["items_write"].clone()))
        };
        assert_eq!(rows[0]["person_id"], "ann", "broadest first: {rows}");
        assert_eq!(reach("ann"), Some((json!(1), json!(1))));
        assert_eq!(reach("gus"), Some((json!(0), json!(0))));
        assert_eq!(
            reach("dan"),
            Some((json!(0), json!(0))),
            "a disabled account reaches nothing"
        );

        // A page past the end is empty, and still says how many there are.
        let past = app.get("/api/people?page=9", Some(&reader)).await.json();
        assert_eq!(
            (
                past["people"]["rows"].clone(),
                past["people"]["total"].clone()
            ),
            (json!([]), json!(rows.as_array().expect("rows").len())),
            "{past}"
        );

        let guests = app.get("/api/people?kind=guest", Some(&reader)).await;
        assert_eq!(guests.json()["people"]["total"], 1, "{}", guests.body);
        let disabled = app.get("/people?disabled=1", Some(&reader)).await;
        assert!(
            disabled.body.contains("Dan Disabled") && !disabled.body.contains("Ann Member"),
            "{}",
            disabled.body
        );

        let page = app.get("/people/ann", Some(&reader)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(
            page.body.contains(&format!("data-item-id=\"{item}\"")),
            "{}",
            page.body
        );
        assert!(
            page.body.contains(">direct<"),
            "the way in is named: {}",
            page.body
        );
        let csv = app.get("/people/ann?format=csv", Some(&reader)).await;
        let lines: Vec<&str> = csv.body.lines().collect();
        assert!(lines[0].starts_with(
            "site_name,drive_name,path,name,is_folder,items,can_read,can_write,routes"
        ));
        assert_eq!(lines.len(), 2, "{}", csv.body);
        assert!(
            lines[1].ends_with(&format!("{drive},{item}")),
            "{}",
            csv.body
        );

        // Once the scan's audiences are stored, the item is the largest audience, in every format.
        app.store
            .refresh_audiences(&tenant)
            .await
            .expect("audiences");
        let largest = app.get("/api/audiences", Some(&reader)).await;
        let top = largest.json()["audiences"]["rows"][0].clone();
        assert_eq!(
            (top["item_id"].as_str(), top["readers"].as_i64()),
            (Some(item.as_str()), Some(1)),
            "{}",
            largest.body
        );
        let page = app.get("/audiences", Some(&reader)).await;
        assert!(
            page.body
                .contains(&format!("data-item-id=\"{item}\" data-readers=\"1\"")),
            "{}",
            page.body
        );
        let csv = app.get("/audiences?format=csv", Some(&reader)).await;
        assert!(
            csv.body.starts_with("readers,writers,guest_readers"),
            "{}",
            csv.body
        );
        assert_eq!(csv.body.lines().count(), 2);
        // A filter on the path keeps the item, or leaves nothing (and a total of nothing).
        let name = top["name"].as_str().expect("name").to_string();
        let part = &name[..name.len().min(4)];
        let found = app
            .get(&format!("/api/audiences?q={part}"), Some(&reader))
            .await
            .json();
        assert_eq!(found["audiences"]["total"], 1, "{found}");
        let none = app
            .get("/api/audiences?q=zzz-no-such-path", Some(&reader))
            .await
            .json();
        assert_eq!(none["audiences"]["total"], 0, "{none}");
        let past = app.get("/api/audiences?page=9", Some(&reader)).await.json();
        assert_eq!(
            (
                past["audiences"]["rows"].clone(),
                past["audiences"]["total"].clone()
            ),
            (json!([]), json!(1)),
            "a page past the end still counts: {past}"
        );
        assert_eq!(none["audiences"]["rows"], json!([]));

        let unknown = app.get("/api/people/nobody", Some(&reader)).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        assert!(
            unknown.json()["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("no person 'nobody'"))
        );
        let bad = app.get("/api/analytics?sort=size", Some(&reader)).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(
            bad.json()["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("sort must be one of exposure, audience"))
        );
        let bad = app.get("/api/people?kind=robot", Some(&reader)).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(
            bad.json()["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("kind must be one of member, guest, external"))
        );
    })
    .await;
}

/// `/policies` and `/violations`: an anyone link that can edit breaks two rules; an admin
/// switching one off (a form) or tuning the audience rule (the API) recomputes the violations at
/// once, audited; webhooks are for admins only, their URLs checked; bad input says what to fix.
#[tokio::test]
async fn policies_and_violations_in_every_format_and_changed_by_admins_only() {
    with_app(async |app| {
        let reader = app.sign_in(ROLE_READER).await;
        let admin = app.sign_in(ROLE_ADMIN).await;
        let (drive, item) = app.cache_an_item().await;
        let tenant = app.sim.state.read_tenant().tenant_id.clone();
        let link = anyone_edit_link("anyone-edit");
        app.store
            .replace_item_permissions(
                &tenant,
                &[sentinel_store::ItemPermissions {
                    drive_id: drive.clone(),
                    item_id: item.clone(),
                    permissions: vec![link],
                }],
            )
            .await
            .expect("a scan");
        app.store
            .refresh_violations(&tenant)
            .await
            .expect("violations");

        let rules = |v: &serde_json::Value| -> Vec<String> {
            let mut r: Vec<String> = v["violations"]["rows"]
                .as_array()
                .expect("rows")
                .iter()
                .map(|x| x["rule"].as_str().unwrap_or_default().to_string())
                .collect();
            r.sort();
            r
        };
        let api = app.get("/api/violations", Some(&reader)).await;
        assert_eq!(api.status, StatusCode::OK, "{}", api.body);
        assert_eq!(
            rules(&api.json()),
            ["anyone_link_edit", "anyone_link_no_expiry"]
        );
        assert_eq!(api.json()["violations"]["rows"][0]["item_id"], json!(item));
        let page = app
            .get("/violations?rule=anyone_link_edit", Some(&reader))
            .await;
        assert_eq!(page.body.matches("class=\"violation-row\"").count(), 1);
        let csv = app.get("/violations?format=csv", Some(&reader)).await;
        assert!(csv.body.starts_with("rule,rule_title,detail,site_name"));
        assert_eq!(csv.body.lines().count(), 3, "{}", csv.body);

        // Readers see the rules, not the webhooks, and change nothing.
        let page = app.get("/policies", Some(&reader)).await;
        assert_eq!(page.body.matches("class=\"policy-row\"").count(), 7);
        assert!(!page.body.contains("add-webhook"));
        assert!(app.get("/api/policies", Some(&reader)).await.json()["webhooks"].is_null());
        let r = app
            .post_form(
                "/policies/anyone_link_edit",
                &reader,
                &[("csrf_token", &reader.csrf)],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);

        // The admin switches the edit rule off with the form: its violation is resolved.
        let r = app
            .post_form(
                "/policies/anyone_link_edit",
                &admin,
                &[("csrf_token", &admin.csrf)],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let api = app.get("/api/violations", Some(&reader)).await.json();
        assert_eq!(rules(&api), ["anyone_link_no_expiry"]);
        let policies = app.get("/api/policies", Some(&admin)).await.json();
        let edit = &policies["policies"][0];
        assert_eq!(
            (edit["rule"].as_str(), edit["enabled"].as_bool()),
            (Some("anyone_link_edit"), Some(false))
        );

        // Thresholds through the API; bad ones and unknown rules are refused.
        let r = app
            .call(
                Method::PUT,
                "/api/policies/audience_over",
                &admin,
                Some(json!({"enabled": true, "threshold": 0})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        for (path, body, status, says) in [
            (
                "/api/policies/audience_over",
                json!({"enabled": true, "threshold": -3}),
                400,
                "threshold must be",
            ),
            (
                "/api/policies/no_such_rule",
                json!({"enabled": true}),
                404,
                "no_such_rule",
            ),
            (
                "/api/policies/audience_over",
                json!({"enabled": "yes"}),
                400,
                "enabled",
            ),
        ] {
            let r = app.call(Method::PUT, path, &admin, Some(body)).await;
            assert_eq!(r.status.as_u16(), status, "{path}: {}", r.body);
            assert!(r.body.contains(says), "{path}: {}", r.body);
        }
        let r = app
            .post_form(
                "/policies/audience_over",
                &admin,
                &[
                    ("csrf_token", &admin.csrf),
                    ("enabled", "on"),
                    ("threshold", "many"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

        // Webhooks: checked, listed for admins, removed; every change audited.
        for (body, says) in [
            (json!({"url": "ftp://example.com/x"}), "url must be an http"),
            (json!({"url": "not a url"}), "url is not a URL"),
            (json!({"url": "https://"}), "url is not a URL"),
            (
                json!({"url": "https://hooks.example.com/x", "format": "email"}),
                "format must be one of json, slack, teams",
            ),
        ] {
            let r = app
                .call(Method::POST, "/api/webhooks", &admin, Some(body.clone()))
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
            assert!(
                r.json()["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with(says)),
                "{body}: {}",
                r.body
            );
        }
        let r = app
            .post_form(
                "/policies/webhooks",
                &admin,
                &[
                    ("csrf_token", &admin.csrf),
                    ("url", "https://hooks.example.com/T1/B2/secret"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let policies = app.get("/api/policies", Some(&admin)).await.json();
        let id = policies["webhooks"][0]["webhook_id"]
            .as_str()
            .expect("id")
            .to_string();
        assert_eq!(
            policies["webhooks"][0]["url"],
            "https://hooks.example.com/T1/B2/secret"
        );
        let page = app.get("/policies", Some(&admin)).await.body;
        assert!(
            page.contains(&format!("data-webhook-id=\"{id}\"")),
            "{page}"
        );
        let r = app
            .call(Method::DELETE, &format!("/api/webhooks/{id}"), &admin, None)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = app
            .call(Method::DELETE, &format!("/api/webhooks/{id}"), &admin, None)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let actions: Vec<String> = app
            .store
            .recent_audit_events(&app.tenant(), 20)
            .await
            .expect("audit")
            .into_iter()
            .map(|e| e.action)
            .collect();
        for action in ["policy.update", "webhook.create", "webhook.delete"] {
            assert!(
                actions.iter().any(|a| a == action),
                "{action} in {actions:?}"
            );
        }
        assert!(
            !app.store
                .recent_audit_events(&app.tenant(), 20)
                .await
                .expect("audit")
                .iter()
                .any(|e| e.details.0.to_string().contains("secret")),
            "the webhook's URL stays out of the audit trail"
        );
    })
    .await;
}

#[tokio::test]
async fn drives_say_how_long_ago_they_were_read_and_analytics_sums_it_up() {
    with_app(async |app| {
        let tenant = app.tenant();
        // Three readable drives read 5, 50 and 500 minutes ago, one never read whole, and a
        // skipped one (kept as last read, left out of the figure).
        for (id, ago, skipped) in [
            ("d-5", Some(5), None),
            ("d-50", Some(50), None),
            ("d-500", Some(500), None),
            ("d-new", None, None),
            ("d-locked", Some(10_000), Some("403 accessDenied")),
        ] {
            sqlx::query(
                "INSERT INTO msgraph_drives (tenant_id, id, name, raw_json, checked_at, skipped_reason) \
                 VALUES ($1, $2, $2, '{}', now() - make_interval(mins => $3), $4)",
            )
            .bind(&tenant)
            .bind(id)
            .bind(ago)
            .bind(skipped)
            .execute(&app.db.pool)
            .await
            .expect("drive");
        }
        let reader = app.sign_in(ROLE_READER).await;
        let page = app.get("/drives/d-50", Some(&reader)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("checked 50 min ago"), "{}", page.body);
        let page = app.get("/drives/d-new", Some(&reader)).await;
        assert!(page.body.contains("not read whole yet"), "{}", page.body);

        let page = app.get("/analytics", Some(&reader)).await;
        assert!(
            page.body.contains("half of the 4 readable drives were checked within the last 50 min")
                && page.body.contains("the stalest 8.3 h ago")
                && page.body.contains("1 not read whole yet"),
            "{}",
            page.body
        );
        let api = app.get("/api/analytics", Some(&reader)).await.json();
        let f = &api["posture"]["freshness"];
        assert_eq!((f["drives"].as_i64(), f["never_read"].as_i64()), (Some(4), Some(1)), "{api}");
    })
    .await;
}
