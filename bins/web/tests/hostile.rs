//! The hostile-input campaign (issue 15): generated requests against every route of the web,
//! with hostile path segments, query values, headers, forms and JSON bodies, from an anonymous
//! caller, a reader and an admin holding a valid CSRF token. None may get a 5xx or panic; every
//! refusal says why; and no table changes (a checksum of each, taken before and after).
//! The figures go to `docs/reliability.md`; `HOSTILE_CASES` sets how many inputs per family.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::http::Method;
use common::app::{TestApp, Who, send, spawn_app};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sentinel_web::auth::{ROLE_ADMIN, ROLE_READER};
use serde_json::{Value, json};

/// Strings chosen to break parsers, SQL, paths, templates and spreadsheets.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("'; DROP TABLE jobs; --".to_string()),
        Just("../../../etc/passwd".to_string()),
        Just("%00%2e%2e%2f".to_string()),
        Just("<script>alert(1)</script>".to_string()),
        Just("=HYPERLINK(\"http://evil.example\")".to_string()),
        Just("{{ 7*7 }}{% raw %}".to_string()),
        Just("\u{202e}\u{0000}\u{ffff}".to_string()),
        Just("-1".to_string()),
        Just("18446744073709551616".to_string()),
        Just("NaN".to_string()),
        Just(String::new()),
        "a{4000,6000}",
        "[\\PC]{1,40}",
        "[ -~]{1,60}",
    ]
}

/// A path segment as a client would send it (percent-encoded where needed).
fn segment() -> impl Strategy<Value = String> {
    hostile_text().prop_map(|s| {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    })
}

fn encoded(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// JSON bodies no route may accept: not JSON, not an object, too deep, or wrong types.
fn hostile_json() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        hostile_text().prop_map(Value::from),
    ];
    let wrong_types = (leaf.clone(), leaf.clone(), leaf.clone()).prop_map(|(a, b, c)| {
        json!({"name": [a], "job_type": {"x": b}, "cron_expr": [c], "enabled": "maybe", "config": 7})
    });
    prop_oneof![
        hostile_text(),
        leaf.prop_map(|v| v.to_string()),
        wrong_types.prop_map(|v| v.to_string()),
        (1usize..3000).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
        Just("{\"name\": \"x\",".to_string()),
        hostile_text().prop_map(|s| json!({"job_type": s, "name": s}).to_string()),
        hostile_text().prop_map(|s| json!({"cron_expr": s, "enabled": "yes"}).to_string()),
    ]
}

/// Form bodies no route may accept.
fn hostile_form() -> impl Strategy<Value = Vec<(String, String)>> {
    let field = prop_oneof![
        Just("name"),
        Just("job_type"),
        Just("cron_expr"),
        Just("enabled"),
        Just("config"),
        Just("job_id"),
        Just("return_to"),
    ];
    (
        hostile_text(),
        prop::collection::vec((field, hostile_text()), 0..6),
    )
        .prop_map(|(bad_type, fields)| {
            // Always one field no form accepts, so nothing valid slips through by chance.
            let mut out = vec![
                ("job_type".to_string(), format!("not-a-type-{bad_type}")),
                ("cron_expr".to_string(), format!("{bad_type} * * *")),
            ];
            out.extend(fields.into_iter().map(|(k, v)| (k.to_string(), v)));
            out
        })
}

#[derive(Debug, Clone)]
enum Caller {
    Anonymous,
    Reader,
    Admin,
    /// A cookie that names no session, and a token that matches nothing.
    Forged(String),
}

fn caller() -> impl Strategy<Value = Caller> {
    prop_oneof![
        Just(Caller::Anonymous),
        Just(Caller::Reader),
        Just(Caller::Admin),
        hostile_text().prop_map(Caller::Forged),
    ]
}

#[derive(Debug, Clone)]
struct Hostile {
    method: Method,
    path: String,
    caller: Caller,
    content_type: String,
    body: Option<String>,
}

const READ_ROUTES: [&str; 10] = [
    "/analytics",
    "/api/analytics",
    "/jobs",
    "/api/jobs",
    "/runs",
    "/api/runs",
    "/admin",
    "/api/admin",
    "/api/cron-preview",
    "/api/graph/site-access",
];

/// GET pages with hostile ids in the path.
fn hostile_paths() -> impl Strategy<Value = Hostile> {
    let path = prop_oneof![
        segment().prop_map(|s| format!("/sites/{s}")),
        segment().prop_map(|s| format!("/api/sites/{s}")),
        segment().prop_map(|s| format!("/drives/{s}")),
        (segment(), segment()).prop_map(|(d, i)| format!("/drives/{d}/items/{i}")),
        (segment(), segment()).prop_map(|(d, i)| format!("/api/drives/{d}/items/{i}?live=1")),
        segment().prop_map(|s| format!("/jobs/{s}")),
        segment().prop_map(|s| format!("/api/jobs/{s}")),
        segment().prop_map(|s| format!("/{s}")),
    ];
    (path, caller()).prop_map(|(path, caller)| Hostile {
        method: Method::GET,
        path,
        caller,
        content_type: String::new(),
        body: None,
    })
}

/// GET lists and live endpoints with hostile query values.
fn hostile_queries() -> impl Strategy<Value = Hostile> {
    let key = prop_oneof![
        Just("page"),
        Just("per_page"),
        Just("filter"),
        Just("format"),
        Just("include_deleted"),
        Just("job_id"),
        Just("status"),
        Just("cron"),
        Just("drive_id"),
        Just("item_id"),
        Just("site_id"),
        Just("preview_cron"),
    ];
    (
        prop::sample::select(&READ_ROUTES[..]),
        prop::collection::vec((key, hostile_text()), 1..4),
        caller(),
    )
        .prop_map(|(route, pairs, caller)| {
            let query: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{k}={}", encoded(v)))
                .collect();
            Hostile {
                method: Method::GET,
                path: format!("{route}?{}", query.join("&")),
                caller,
                content_type: String::new(),
                body: None,
            }
        })
}

/// Changes with hostile bodies (JSON or form), as any caller, with a valid CSRF token when the
/// caller has a session: refused by validation, never by luck.
fn hostile_changes(job: String, schedule: String) -> impl Strategy<Value = Hostile> {
    let form_job = job.clone();
    let json_target = prop_oneof![
        Just((Method::POST, "/api/jobs".to_string())),
        Just((Method::PUT, format!("/api/jobs/{job}"))),
        Just((Method::POST, format!("/api/jobs/{job}/schedules"))),
        Just((Method::PUT, format!("/api/schedules/{schedule}"))),
        segment().prop_map(|s| (Method::PUT, format!("/api/jobs/{s}"))),
        segment().prop_map(|s| (Method::DELETE, format!("/api/schedules/{s}"))),
        segment().prop_map(|s| (Method::POST, format!("/api/admin/jobs/{s}/run-now"))),
        segment().prop_map(move |s| (Method::POST, format!("/api/admin/jobs/{job}/{s}"))),
    ];
    let form_target = prop_oneof![
        Just("/jobs".to_string()),
        Just(format!("/jobs/{form_job}")),
        Just(format!("/jobs/{form_job}/schedules")),
        Just(format!("/schedules/{schedule}")),
        segment().prop_map(|s| format!("/jobs/{s}/delete")),
        segment().prop_map(|s| format!("/schedules/{s}/delete")),
        segment().prop_map(|s| format!("/jobs/{s}/enabled")),
    ];
    let json_change =
        (json_target, hostile_json(), caller()).prop_map(|((method, path), body, caller)| {
            Hostile {
                method,
                path,
                caller,
                content_type: "application/json".into(),
                body: Some(body),
            }
        });
    let form_change = (form_target, hostile_form(), caller()).prop_map(|(path, fields, caller)| {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &fields {
            form.append_pair(k, v);
        }
        Hostile {
            method: Method::POST,
            path,
            caller,
            content_type: "application/x-www-form-urlencoded".into(),
            body: Some(form.finish()),
        }
    });
    let content_type = prop_oneof![
        Just("application/json; charset=utf-7".to_string()),
        Just("multipart/form-data; boundary=x".to_string()),
        Just("text/plain".to_string()),
        "[!-~]{1,60}",
    ];
    let odd_type =
        (content_type, hostile_json(), caller()).prop_map(|(ct, body, caller)| Hostile {
            method: Method::POST,
            path: "/api/jobs".into(),
            caller,
            content_type: ct,
            body: Some(body),
        });
    prop_oneof![json_change, form_change, odd_type]
}

/// A checksum of every table's rows (sessions aside: a request may extend its own).
async fn checksum(app: &TestApp) -> String {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables \
         WHERE schemaname = 'public' ORDER BY 1",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("tables");
    let mut sums = Vec::new();
    for t in tables {
        let sum: Option<String> = sqlx::query_scalar(&format!(
            "SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM {t} x"
        ))
        .fetch_one(&app.db.pool)
        .await
        .expect("checksum");
        sums.push(format!("{t}:{}", sum.unwrap_or_default()));
    }
    sums.join(" ")
}

#[test]
fn hostile_input_gets_a_clear_refusal_and_changes_nothing() {
    let cases: u32 = std::env::var("HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(110);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (app, reader, admin, job, schedule) = rt.block_on(async {
        let app = spawn_app().await;
        let admin = app.sign_in(ROLE_ADMIN).await;
        let reader = app.sign_in(ROLE_READER).await;
        let created = app
            .call(
                Method::POST,
                "/api/jobs",
                &admin,
                Some(json!({"name": "nightly", "job_type": "refresh_mv"})),
            )
            .await
            .json();
        let job = created["job_id"].as_str().expect("job id").to_string();
        let added = app
            .call(
                Method::POST,
                &format!("/api/jobs/{job}/schedules"),
                &admin,
                Some(json!({"cron_expr": "0 3 * * *"})),
            )
            .await
            .json();
        let schedule = added["schedule_id"]
            .as_str()
            .expect("schedule id")
            .to_string();
        (app, reader, admin, job, schedule)
    });
    let before = rt.block_on(checksum(&app));
    let statuses: Mutex<BTreeMap<u16, u32>> = Mutex::default();

    let check = |h: Hostile| -> Result<(), TestCaseError> {
        let forged;
        let who: Option<&Who> = match &h.caller {
            Caller::Anonymous => None,
            Caller::Reader => Some(&reader),
            Caller::Admin => Some(&admin),
            Caller::Forged(junk) => {
                // As an HTTP client can send them: header values are visible ASCII.
                forged = Who {
                    cookie: format!("sentinel_session={}", encoded(junk)),
                    csrf: encoded(junk),
                };
                Some(&forged)
            }
        };
        let body = h.body.clone().map(|b| (h.content_type.clone(), b));
        let reply = rt.block_on(send(
            &app.router,
            h.method.clone(),
            &h.path,
            who.map(|w| w.cookie.as_str()),
            who.map(|w| w.csrf.as_str()),
            body,
        ));
        *statuses
            .lock()
            .expect("lock")
            .entry(reply.status.as_u16())
            .or_default() += 1;
        prop_assert!(
            !reply.status.is_server_error(),
            "{h:?} got {}: {}",
            reply.status,
            reply.body
        );
        if h.method != Method::GET {
            prop_assert!(
                reply.status.is_client_error(),
                "a hostile change was not refused: {h:?} got {}: {}",
                reply.status,
                reply.body
            );
        }
        if reply.status.is_client_error() {
            prop_assert!(
                reply.body.trim().len() > 10,
                "a refusal without a reason: {h:?} got {}: {:?}",
                reply.status,
                reply.body
            );
        }
        Ok(())
    };

    let runner = || {
        let mut config = Config::with_cases(cases);
        config.failure_persistence = None;
        TestRunner::new(config)
    };
    runner()
        .run(&hostile_paths(), check)
        .expect("hostile paths");
    runner()
        .run(&hostile_queries(), check)
        .expect("hostile queries");
    runner()
        .run(&hostile_changes(job, schedule), check)
        .expect("hostile changes");

    let after = rt.block_on(checksum(&app));
    assert_eq!(before, after, "a hostile request changed a table");
    let statuses = statuses.into_inner().expect("lock");
    let total: u32 = statuses.values().sum();
    assert!(total >= 3 * cases, "{total} requests sent");
    // The campaign's figures, for docs/reliability.md.
    println!("hostile inputs: {total}; by status: {statuses:?}");
    rt.block_on(app.db.drop_db());
}
