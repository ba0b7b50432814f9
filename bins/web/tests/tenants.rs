//! Two tenants in one database: each page, API call, CSV, job, run and audit event shows the
//! tenant looked at, a reader granted one tenant sees nothing of the other, and admins switch.

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::http::{Method, StatusCode};
use common::app::{TestApp, Who, spawn_app};
use sentinel_pipeline::{GraphIngestConfig, Progress, run_graph_ingest, run_refresh_mv};
use sentinel_sim::{Profile, RunningSim};
use sentinel_testkit::{SimTenant, graph_vars, lookup, spawn_sim};
use sentinel_web::auth::{ROLE_ADMIN, ROLE_READER};
use serde_json::{Value, json};
use uuid::Uuid;

/// Reads `sim`'s tenant into the app's database, as a worker's scan does.
async fn scan(app: &TestApp, sim: &RunningSim) {
    let graph = sentinel_graph::GraphConfig::from_lookup(lookup(graph_vars(sim))).expect("graph");
    let tenant = sim.state().read_tenant().tenant_id.clone();
    let job = GraphIngestConfig::default();
    let client = sentinel_pipeline::tenant_client(&app.store, &graph, &tenant, &job)
        .await
        .expect("client");
    run_graph_ingest(
        &client,
        &app.store,
        &tenant,
        &job,
        Arc::new(Progress::default()),
        Arc::new(AtomicBool::new(false)),
    )
    .await
    .expect("scan");
    run_refresh_mv(&app.store, Some(tenant.as_str()))
        .await
        .expect("views");
}

async fn ids(app: &TestApp, sql: &str, tenant: &str) -> Vec<String> {
    let mut v: Vec<String> = sqlx::query_scalar(sql)
        .bind(tenant)
        .fetch_all(&app.db.pool)
        .await
        .expect(sql);
    v.sort();
    v
}

fn people_ids(reply: &Value) -> Vec<String> {
    let mut v: Vec<String> = reply["people"]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["person_id"].as_str().expect("id").to_string())
        .collect();
    v.sort();
    v
}

async fn create_job(app: &TestApp, admin: &Who, path: &str, name: &str) -> Uuid {
    let r = app
        .call(
            Method::POST,
            path,
            admin,
            Some(json!({"name": name, "job_type": "refresh_mv"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.json()["job_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_granted_one_tenant_sees_nothing_of_the_other() {
    let app = spawn_app().await;
    let other_sim = spawn_sim(Profile::Tiny, 8).await;
    let (home, other) = (
        app.tenant(),
        other_sim.state.read_tenant().tenant_id.clone(),
    );
    assert_ne!(home, other);
    // Added by an admin (`sentinel-worker tenants add`), then scanned.
    app.store
        .register_tenant(&other, Some("Fabrikam"))
        .await
        .expect("register");
    scan(&app, &app.sim).await;
    scan(&app, &other_sim).await;
    let people_of = async |t: &str| {
        ids(
            &app,
            "SELECT person_id FROM person_reach WHERE tenant_id = $1",
            t,
        )
        .await
    };
    let (home_people, other_people) = (people_of(&home).await, people_of(&other).await);
    assert!(!home_people.is_empty() && !other_people.is_empty());

    // An admin sees the deployment's own tenant first, and switches with ?tenant=.
    let admin = app.sign_in(ROLE_ADMIN).await;
    let page = app.get("/analytics", Some(&admin)).await;
    assert!(
        page.body.contains("id=\"tenant-switcher\""),
        "two tenants: a switcher"
    );
    let everyone = "/api/people?per_page=10000";
    assert_eq!(
        people_ids(&app.get(everyone, Some(&admin)).await.json()),
        home_people
    );
    let home_job = create_job(&app, &admin, "/api/jobs", "home job").await;
    let switched = app
        .get(
            &format!("/api/people?per_page=10000&tenant={other}"),
            Some(&admin),
        )
        .await;
    assert_eq!(people_ids(&switched.json()), other_people);
    // The choice is kept for the session: what comes next is the other tenant's.
    assert_eq!(
        people_ids(&app.get(everyone, Some(&admin)).await.json()),
        other_people
    );
    let other_job = create_job(&app, &admin, "/api/jobs", "other job").await;
    for (job, tenant) in [(home_job, &home), (other_job, &other)] {
        let (stored, audited): (String, Option<String>) = sqlx::query_as(
            "SELECT j.tenant_id, a.tenant_id FROM jobs j JOIN audit_events a \
             ON a.entity_id = j.job_id::text AND a.action = 'job.create' WHERE j.job_id = $1",
        )
        .bind(job)
        .fetch_one(&app.db.pool)
        .await
        .expect("job");
        assert_eq!((&stored, audited.as_ref()), (tenant, Some(tenant)));
        sqlx::query(
            "INSERT INTO job_runs (run_id, job_id, status, finished_at) VALUES ($1, $2, 'success', now())",
        )
        .bind(Uuid::new_v4())
        .bind(job)
        .execute(&app.db.pool)
        .await
        .expect("run");
    }
    let admin_view = app.get("/api/admin", Some(&admin)).await.json();
    let audited: Vec<&str> = admin_view["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .filter_map(|e| e["entity_id"].as_str())
        .collect();
    assert!(audited.contains(&other_job.to_string().as_str()));
    assert!(
        !audited.contains(&home_job.to_string().as_str()),
        "the audit trail shown is the tenant's"
    );

    // A reader granted the other tenant only.
    app.store
        .grant_reader(&other, "Sentinel.Reader@contoso.example")
        .await
        .expect("grant");
    let reader = app.sign_in(ROLE_READER).await;
    let page = app.get("/analytics", Some(&reader)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Fabrikam"), "the one tenant, by name");
    assert!(
        !page.body.contains("id=\"tenant-switcher\""),
        "nothing to switch to"
    );
    assert_eq!(
        people_ids(&app.get(everyone, Some(&reader)).await.json()),
        other_people
    );
    let csv = app
        .get("/people?format=csv&per_page=10000", Some(&reader))
        .await;
    assert!(csv.header("content-type").starts_with("text/csv"));
    assert!(
        home_people
            .iter()
            .filter(|p| !other_people.contains(p))
            .all(|p| !csv.body.contains(p.as_str())),
        "no person of the other tenant in the CSV"
    );
    let asked = app
        .get(&format!("/api/people?tenant={home}"), Some(&reader))
        .await;
    assert_eq!(asked.status, StatusCode::NOT_FOUND);
    assert!(asked.body.contains("no tenant"), "{}", asked.body);

    // The home tenant's objects, by their ids, are not found; the other tenant's are.
    let site_of = async |t: &str| {
        ids(
            &app,
            "SELECT id FROM msgraph_sites WHERE tenant_id = $1 AND deleted_at IS NULL",
            t,
        )
        .await
        .remove(0)
    };
    let (home_site, other_site) = (site_of(&home).await, site_of(&other).await);
    let get = async |path: String| app.get(&path, Some(&reader)).await.status;
    assert_eq!(
        get(format!("/api/sites/{home_site}")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(format!("/api/sites/{other_site}")).await,
        StatusCode::OK
    );
    let home_person = home_people
        .iter()
        .find(|p| !other_people.contains(p))
        .expect("one");
    assert_eq!(
        get(format!("/api/people/{home_person}")).await,
        StatusCode::NOT_FOUND
    );

    // Jobs and runs: the other tenant's only.
    let jobs = app.get("/api/jobs", Some(&reader)).await.json();
    let listed: Vec<&str> = jobs["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|j| j["job_id"].as_str())
        .collect();
    assert_eq!(listed, [other_job.to_string()]);
    assert_eq!(
        get(format!("/api/jobs/{home_job}")).await,
        StatusCode::NOT_FOUND
    );
    let runs = app.get("/api/runs", Some(&reader)).await.json();
    assert_eq!(runs["total"], 1);
    assert_eq!(runs["runs"][0]["job_id"], other_job.to_string());
    // An admin on the other tenant cannot reach the home tenant's job by its id either.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/jobs/{home_job}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    other_sim.shutdown().await;
    app.db.drop_db().await;
}

#[tokio::test]
async fn admins_see_each_tenants_consent_and_link_and_disable_a_tenant_audited() {
    let app = spawn_app().await;
    let other = "fabrikam.onmicrosoft.com";
    app.store
        .register_tenant(other, Some("Fabrikam"))
        .await
        .expect("register");
    app.store
        .record_consent(other, Err("AADSTS650051: consent is missing"))
        .await
        .expect("consent");
    let admin = app.sign_in(ROLE_ADMIN).await;
    let page = app.get("/admin", Some(&admin)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("AADSTS650051: consent is missing"),
        "{}",
        page.body
    );
    let api = app.get("/api/admin", Some(&admin)).await.json();
    let row = api["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .find(|t| t["tenant_id"] == other)
        .cloned()
        .expect("the other tenant");
    assert_eq!(row["consent_state"], "missing");
    let link = url::Url::parse(row["consent_url"].as_str().expect("link")).expect("a URL");
    assert_eq!(link.path(), format!("/{other}/v2.0/adminconsent"));
    let query: std::collections::HashMap<_, _> = link.query_pairs().into_owned().collect();
    let graph =
        sentinel_graph::GraphConfig::from_lookup(lookup(graph_vars(&app.sim))).expect("graph");
    assert_eq!(query["client_id"], graph.client_id);
    assert_eq!(query["scope"], "https://graph.microsoft.com/.default");
    assert!(query["redirect_uri"].ends_with("/signed-out"), "{link}");

    // Readers may not; without the CSRF token nobody may.
    let reader = app.sign_in(ROLE_READER).await;
    let path = format!("/admin/tenants/{other}/disable");
    let r = app
        .post_form(&path, &reader, &[("csrf_token", &reader.csrf)])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.post_form(&path, &admin, &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        app.store
            .tenant(other)
            .await
            .expect("tenant")
            .expect("row")
            .enabled
    );

    let r = app
        .post_form(&path, &admin, &[("csrf_token", &admin.csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        !app.store
            .tenant(other)
            .await
            .expect("tenant")
            .expect("row")
            .enabled
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'tenant.disable' AND tenant_id = $1 AND entity_id = $1",
    )
    .bind(other)
    .fetch_one(&app.db.pool)
    .await
    .expect("audit");
    assert_eq!(audited, 1);
    let r = app.get("/admin/tenants/nowhere/enable", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = app
        .call(
            Method::POST,
            "/api/admin/tenants/nowhere.example/enable",
            &admin,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    app.db.drop_db().await;
}

/// Admins add a tenant from the page (as `sentinel-worker tenants add` does): its name and
/// band kept, its hourly scan scheduled, the addition audited with it; a tenant that cannot be
/// an Entra tenant, a band out of range and a second addition are refused, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_add_a_tenant_with_its_scan_and_bad_ones_are_refused() {
    let app = spawn_app().await;
    let admin = app.sign_in(ROLE_ADMIN).await;
    let reader = app.sign_in(ROLE_READER).await;
    let other = "fabrikam.onmicrosoft.com";
    let jobs_of = |tenant: &'static str| {
        let pool = app.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT job_type FROM jobs WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_all(&pool)
                .await
                .expect("jobs")
        }
    };

    let page = app.get("/admin", Some(&admin)).await;
    assert!(page.body.contains(r#"id="add-tenant""#), "{}", page.body);
    let r = app
        .call(
            Method::POST,
            "/api/admin/tenants",
            &reader,
            Some(json!({"tenant_id": other})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "readers may not");
    for (body, says) in [
        (
            json!({"tenant_id": "contoso.example/oauth2?x"}),
            "a tenant is its id (a GUID) or its domain",
        ),
        (json!({"tenant_id": other, "band": 9}), "band is 1"),
    ] {
        let r = app
            .call(Method::POST, "/api/admin/tenants", &admin, Some(body))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(r.body.contains(says), "{}", r.body);
    }
    assert!(
        app.store.tenant(other).await.expect("tenant").is_none(),
        "nothing added"
    );

    let r = app
        .post_form(
            "/admin/tenants",
            &admin,
            &[
                ("csrf_token", &admin.csrf),
                ("tenant_id", &format!(" {other} ")),
                ("name", "Fabrikam"),
                ("band", "2"),
                ("scan", "on"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let added = app
        .store
        .tenant(other)
        .await
        .expect("tenant")
        .expect("added");
    assert_eq!(
        (added.name.as_deref(), added.budget_band, added.enabled),
        (Some("Fabrikam"), Some(2), true)
    );
    assert_eq!(
        jobs_of(other).await,
        vec!["graph_ingest".to_string()],
        "its scan"
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'tenant.add' AND tenant_id = $1",
    )
    .bind(other)
    .fetch_one(&app.db.pool)
    .await
    .expect("audit");
    assert_eq!(audited, 1);

    let r = app
        .call(
            Method::POST,
            "/api/admin/tenants",
            &admin,
            Some(json!({"tenant_id": other})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("already added"), "{}", r.body);

    let quiet = "northwind.onmicrosoft.com";
    let r = app
        .call(
            Method::POST,
            "/api/admin/tenants",
            &admin,
            Some(json!({"tenant_id": quiet, "scan": false})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["tenant_id"], quiet);
    assert!(
        jobs_of(quiet).await.is_empty(),
        "no scan asked, none scheduled"
    );
    app.db.drop_db().await;
}
