//! The worker's control API: Entra-issued bearer tokens checked against the tenant's JWKS,
//! operations on jobs, audit; and the real `serve` binary running a job and stopping on SIGTERM.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use sentinel_graph::identity::TokenValidator;
use sentinel_sim::Profile;
use sentinel_testkit::spawn_sim_with;
use sentinel_worker::api::{ApiState, router};
use serde_json::{Value, json};
use uuid::Uuid;

struct Api {
    url: String,
    http: reqwest::Client,
}

async fn serve_api(db: &TestDb, validator: TokenValidator, own_app_id: &str) -> Api {
    let state = ApiState {
        own_app_id: own_app_id.to_string(),
        store: sentinel_store::Store::from_pool(db.pool.clone()),
        jobs: db.pool.clone(),
        validator: Arc::new(validator),
        worker_id: "test-worker".into(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    Api {
        url,
        http: reqwest::Client::new(),
    }
}

/// A tenant, a migrated database, the control API over them, and a valid token for it.
async fn api_with_a_token(seed: u64) -> (sentinel_sim::RunningSim, TestDb, Api, String) {
    let sim = spawn_sim(Profile::Tiny, seed).await;
    let db = create_db().await;
    sentinel_store::Store::from_pool(db.pool.clone())
        .migrate()
        .await
        .expect("migrate");
    let client_id = sim.state.config.client_id.clone();
    let tid = sim.state.read_tenant().tenant_id.clone();
    let api = serve_api(
        &db,
        TokenValidator::new(&sim.url(), &tid, &client_id),
        &client_id,
    )
    .await;
    let good = token(&sim, &format!("api://{client_id}/.default")).await;
    (sim, db, api, good)
}

async fn token(sim: &sentinel_sim::RunningSim, scope: &str) -> String {
    let tid = sim.state.read_tenant().tenant_id.clone();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", sim.state.config.client_id.as_str()),
        ("client_secret", sim.state.config.client_secret.as_str()),
        ("scope", scope),
    ];
    let v: Value = reqwest::Client::new()
        .post(format!("{}/{tid}/oauth2/v2.0/token", sim.url()))
        .form(&form)
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    v["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(
            method.parse().expect("method"),
            format!("{}{path}", self.url),
        );
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .json(&b)
                .header("x-sentinel-actor-upn", "admin@contoso.example")
                .header("x-sentinel-actor-oid", "oid-1");
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_valid_tokens_for_our_app_reach_the_control_api() {
    let sim = spawn_sim(Profile::Tiny, 201).await;
    let db = create_db().await;
    sentinel_store::Store::from_pool(db.pool.clone())
        .migrate()
        .await
        .expect("migrate");
    let tid = sim.state.read_tenant().tenant_id.clone();
    let client_id = sim.state.config.client_id.clone();
    let validator = || {
        let mut v = TokenValidator::new(&sim.url(), &tid, &client_id);
        v.leeway_secs = 0;
        v
    };
    let api = serve_api(&db, validator(), "").await;
    // The API tells a refused caller nothing more; the validator says why it refused.
    let check = validator();
    let why = async |token: &str| check.validate(token).await.err().unwrap_or_default();
    let refused = |b: &Value| {
        b["error"] == "a valid bearer token with the app role Sentinel.Worker.Invoke is required"
    };
    let good = token(&sim, &format!("api://{client_id}/.default")).await;

    let (status, body) = api.call("GET", "/health", None, None).await;
    assert_eq!(
        (status, body["database"].as_str()),
        (200, Some("reachable")),
        "health needs no token"
    );
    assert_eq!(
        api.call("GET", "/jobs/status", Some(&good), None).await.0,
        200
    );
    assert_eq!(
        api.call("GET", "/jobs/status", None, None).await.0,
        401,
        "no token"
    );

    let graph = token(&sim, "https://graph.microsoft.com/.default").await;
    let (s, b) = api.call("GET", "/jobs/status", Some(&graph), None).await;
    assert_eq!((s, refused(&b)), (401, true), "wrong audience: {b}");
    assert!(why(&graph).await.contains("Audience"));

    let parts: Vec<&str> = good.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("claims");
    claims["roles"] = json!(["Sentinel.Worker.Invoke", "Everything.Else"]);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    let (s, b) = api.call("GET", "/jobs/status", Some(&tampered), None).await;
    assert_eq!((s, refused(&b)), (401, true), "tampered: {b}");
    assert!(why(&tampered).await.contains("Signature"));
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{none_header}.{}.", parts[1]);
    let (s, b) = api.call("GET", "/jobs/status", Some(&unsigned), None).await;
    assert_eq!(s, 401, "unsigned: {b}");

    // A token signed by the right key for the right tenant but from another issuer.
    let mut forged: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("claims");
    forged["iss"] = json!(format!("https://sts.example.net/{tid}/"));
    let forged = sentinel_sim::entra::sign(
        &serde_json::from_value::<sentinel_sim::entra::Claims>(forged).expect("claims"),
    )
    .expect("sign");
    let (s, b) = api.call("GET", "/jobs/status", Some(&forged), None).await;
    assert_eq!((s, refused(&b)), (401, true), "wrong issuer: {b}");
    assert!(why(&forged).await.contains("Issuer"));

    control(&sim, "/_sim/auth", json!({"token_lifetime_secs": 1})).await;
    let short = token(&sim, &format!("api://{client_id}/.default")).await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (s, b) = api.call("GET", "/jobs/status", Some(&short), None).await;
    assert_eq!((s, refused(&b)), (401, true), "expired: {b}");
    assert!(why(&short).await.contains("Expired"));
    db.drop_db().await;
}

/// Tokens for an app's own API are v1 (`iss` `https://sts.windows.net/{tid}/`, `aud`
/// `api://{client}`) unless the manifest sets `requestedAccessTokenVersion: 2` (Entra "Access
/// tokens"); the tenant may be configured by its domain. The worker takes all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_and_v2_tokens_of_our_app_are_accepted_with_the_tenant_by_id_or_domain() {
    let db = create_db().await;
    sentinel_store::Store::from_pool(db.pool.clone())
        .migrate()
        .await
        .expect("migrate");
    for version in [1u8, 2] {
        let sim = spawn_sim_with(Profile::Tiny, 203, |c| c.api_token_version = version).await;
        let (tid, domain) = {
            let t = sim.state.read_tenant();
            (t.tenant_id.clone(), t.domain.clone())
        };
        let client_id = sim.state.config.client_id.clone();
        let t = token(&sim, &format!("api://{client_id}/.default")).await;
        let parts: Vec<&str> = t.split('.').collect();
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64"))
            .expect("claims");
        let want_iss = if version == 1 {
            format!("https://sts.windows.net/{tid}/")
        } else {
            format!("{}/{tid}/v2.0", sim.url())
        };
        assert_eq!(claims["iss"], want_iss.as_str(), "v{version}: {claims}");
        for tenant in [tid.as_str(), domain.as_str()] {
            let api = serve_api(
                &db,
                TokenValidator::new(&sim.url(), tenant, &client_id),
                &client_id,
            )
            .await;
            let (s, b) = api.call("GET", "/jobs/status", Some(&t), None).await;
            assert_eq!(s, 200, "v{version} token, tenant given as {tenant}: {b}");
        }
    }
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_operations_answer_clearly_and_are_audited() {
    let (_sim, db, api, t) = api_with_a_token(202).await;
    let job = Uuid::new_v4();
    sqlx::query("INSERT INTO jobs (job_id, job_type, tenant_id) VALUES ($1, 'refresh_mv', 't')")
        .bind(job)
        .execute(&db.pool)
        .await
        .expect("job");

    let (s, b) = api
        .call(
            "POST",
            "/jobs/run-now",
            Some(&t),
            Some(json!({"job_id": Uuid::new_v4()})),
        )
        .await;
    assert_eq!(s, 404);
    assert!(
        b["error"].as_str().unwrap_or_default().contains("no job"),
        "{b}"
    );
    let (s, b) = api
        .call("POST", "/jobs/run-now", Some(&t), Some(json!({"job": "x"})))
        .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(
        api.call(
            "POST",
            "/jobs/run-now",
            Some(&t),
            Some(json!({"job_id": job}))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        api.call(
            "POST",
            "/jobs/pause",
            Some(&t),
            Some(json!({"job_id": job}))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        api.call(
            "POST",
            "/jobs/run-now",
            Some(&t),
            Some(json!({"job_id": job}))
        )
        .await
        .0,
        409,
        "paused jobs do not run"
    );
    assert_eq!(
        api.call(
            "POST",
            "/jobs/resume",
            Some(&t),
            Some(json!({"job_id": job}))
        )
        .await
        .0,
        200
    );
    let (s, status) = api.call("GET", "/jobs/status", Some(&t), None).await;
    assert_eq!(s, 200);
    assert_eq!(status["jobs"][0]["paused"], false);

    // Another app the tenant granted the worker role may run jobs, but it cannot act in a
    // user's name: its actor headers are not believed, and it is audited as itself.
    let mut other: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(t.split('.').nth(1).expect("payload"))
            .expect("b64"),
    )
    .expect("claims");
    other["appid"] = json!("22222222-0000-0000-0000-000000000002");
    other["azp"] = json!("22222222-0000-0000-0000-000000000002");
    other["oid"] = json!("sp-of-the-other-app");
    let other = sentinel_sim::entra::sign(
        &serde_json::from_value::<sentinel_sim::entra::Claims>(other).expect("claims"),
    )
    .expect("sign");
    let (s, b) = api
        .call(
            "POST",
            "/jobs/run-now",
            Some(&other),
            Some(json!({"job_id": job})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (oid, upn, name): (Option<String>, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT actor_oid, actor_upn, actor_name FROM audit_events ORDER BY occurred_at DESC LIMIT 1",
    )
    .fetch_one(&db.pool)
    .await
    .expect("audit");
    assert_eq!(
        (oid.as_deref(), upn, name.as_deref()),
        (
            Some("sp-of-the-other-app"),
            None,
            Some("app 22222222-0000-0000-0000-000000000002")
        ),
        "another app is audited as itself, whatever its headers say"
    );
    let audited: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT action, actor_upn FROM audit_events ORDER BY occurred_at")
            .fetch_all(&db.pool)
            .await
            .expect("audit");
    assert_eq!(
        audited.len(),
        6,
        "every control call is audited: {audited:?}"
    );
    assert!(
        audited[..5]
            .iter()
            .all(|(_, upn)| upn.as_deref() == Some("admin@contoso.example")),
        "the web's calls are audited as the user it names: {audited:?}"
    );
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_a_requested_job_and_stops_cleanly_on_sigterm() {
    let sim = spawn_sim(Profile::Tiny, 203).await;
    let db = create_db().await;
    let port = sentinel_testkit::free_port();
    let mut child = worker_command(&sim, &db, &["serve"])
        .env("WORKER_API_ADDR", format!("127.0.0.1:{port}"))
        .env("SCHEDULER_POLL_SECONDS", "1")
        .spawn()
        .expect("spawn worker");
    sentinel_testkit::wait_for(
        &format!("http://127.0.0.1:{port}/health"),
        Duration::from_secs(60),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let job = Uuid::new_v4();
    sqlx::query("INSERT INTO jobs (job_id, job_type, tenant_id, run_requested_at) VALUES ($1, 'refresh_mv', 't', now())")
        .bind(job)
        .execute(&db.pool)
        .await
        .expect("job");
    let status = loop {
        let s: Option<String> = sqlx::query_scalar(
            "SELECT status FROM job_runs WHERE job_id = $1 AND status <> 'running'",
        )
        .bind(job)
        .fetch_optional(&db.pool)
        .await
        .expect("runs");
        if let Some(s) = s {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the requested run never finished"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status, "success");
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(exit.success(), "SIGTERM ends the worker cleanly: {exit:?}");
    db.drop_db().await;
}

/// The hostile-input campaign on the control API: generated paths, tokens, headers and bodies.
/// None gets a 5xx; every refusal says why (a refused token only that one is required); no
/// table changes.
#[test]
fn hostile_calls_to_the_control_api_are_refused_clearly_and_change_nothing() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (sim, db, api, good) = rt.block_on(api_with_a_token(204));
    let checksum = || {
        rt.block_on(async {
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT md5(concat((SELECT string_agg(j::text, ',' ORDER BY j::text) FROM jobs j), \
                 (SELECT string_agg(r::text, ',' ORDER BY r::text) FROM job_runs r), \
                 (SELECT string_agg(a::text, ',' ORDER BY a::text) FROM audit_events a)))",
            )
            .fetch_one(&db.pool)
            .await
            .expect("checksum")
        })
    };
    let before = checksum();

    let text = prop_oneof![
        Just("'; DROP TABLE jobs; --".to_string()),
        Just("00000000-0000-0000-0000-00000000000g".to_string()),
        Just("{\"job_id\":".to_string()),
        "[ -~]{0,80}",
        "[\\PC]{0,20}",
    ];
    let body = prop_oneof![
        text.clone(),
        text.clone().prop_map(|s| json!({"job_id": s}).to_string()),
        any::<i64>().prop_map(|n| json!({"job_id": n}).to_string()),
        text.clone()
            .prop_map(|s| json!({"job_id": Uuid::nil(), "extra": s}).to_string()),
        (1usize..2000).prop_map(|n| "[".repeat(n)),
    ];
    let path = prop_oneof![
        Just("/jobs/run-now".to_string()),
        Just("/jobs/pause".to_string()),
        Just("/jobs/resume".to_string()),
        Just("/jobs/status".to_string()),
        "[a-z/%.]{1,30}".prop_map(|s| format!("/jobs/{s}")),
    ];
    // A caller: none, a valid token, a token with a byte changed, or junk.
    let auth = prop_oneof![
        Just(None),
        Just(Some(good.clone())),
        (0..good.len()).prop_map({
            let good = good.clone();
            move |i| {
                let mut t = good.clone().into_bytes();
                t[i] = if t[i] == b'A' { b'B' } else { b'A' };
                Some(String::from_utf8_lossy(&t).into_owned())
            }
        }),
        "[!-~]{0,200}".prop_map(Some),
    ];
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<u16, u32>::new());
    let mut config = Config::with_cases(
        std::env::var("HOSTILE_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(120),
    );
    config.failure_persistence = None;
    TestRunner::new(config)
        .run(&(path, body, auth), |(path, body, auth)| {
            let (status, reply) = rt.block_on(async {
                let mut req = api
                    .http
                    .post(format!("{}{path}", api.url))
                    .header("content-type", "application/json")
                    .body(body.clone());
                if let Some(t) = &auth {
                    req = req.header("authorization", format!("Bearer {t}"));
                }
                let r = req.send().await.expect("request");
                (r.status().as_u16(), r.text().await.unwrap_or_default())
            });
            *statuses.lock().expect("lock").entry(status).or_default() += 1;
            prop_assert!(status < 500, "{path} {body:?} got {status}: {reply}");
            if auth.as_deref() != Some(good.as_str()) {
                prop_assert!(status == 401 || status == 404 || status == 405, "{status}");
            }
            if status >= 400 {
                prop_assert!(reply.len() > 10, "{status}: {reply:?}");
            }
            Ok(())
        })
        .expect("hostile control calls");
    assert_eq!(before, checksum(), "a hostile call changed a table");
    println!(
        "hostile control API calls: {:?}",
        statuses.into_inner().expect("lock")
    );
    drop(sim);
    rt.block_on(db.drop_db());
}
