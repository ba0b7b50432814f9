//! Microsoft's own JSON examples (`tests/fixtures/microsoft/graph-examples.json`, each page
//! with its Learn URL) served by a fixture server to the real `sentinel-worker sync`: what the
//! store holds afterwards is what the examples' fields and their pages' prose define, column by
//! column. Not our simulator: nothing here was shaped by the hands that wrote the client.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sqlx::PgPool;

const BIN: &str = env!("CARGO_BIN_EXE_sentinel-worker");
const TENANT: &str = "contoso.onmicrosoft.com";

struct Fixtures {
    pages: Vec<Value>,
    /// Requests no example answers (the test fails on any).
    misses: Mutex<Vec<String>>,
}

impl Fixtures {
    /// The page answering `method path?query`: its path matches segment by segment (`*` any one
    /// segment) and each of its query pairs is in the request; the most specific page wins.
    fn answer(&self, method: &str, path_and_query: &str) -> Option<&Value> {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let pairs = |q: &str| -> Vec<(String, String)> {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        };
        let segments = |p: &str| -> Vec<String> {
            p.split('/')
                .map(|s| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8_lossy()
                        .into_owned()
                })
                .collect()
        };
        let (got_path, got_query) = (segments(path), pairs(query));
        self.pages
            .iter()
            .filter(|p| p["method"] == method)
            .filter_map(|p| {
                let request = p["request"].as_str()?;
                let (want_path, want_query) = request.split_once('?').unwrap_or((request, ""));
                let want_path = segments(want_path);
                let path_matches = want_path.len() == got_path.len()
                    && want_path
                        .iter()
                        .zip(&got_path)
                        .all(|(w, g)| w == "*" || w == g);
                let want_query = pairs(want_query);
                let query_matches = want_query.iter().all(|w| got_query.contains(w));
                (path_matches && query_matches).then_some((want_query.len(), p))
            })
            .max_by_key(|(specific, _)| *specific)
            .map(|(_, p)| p)
    }

    fn respond(&self, method: &str, path_and_query: &str) -> (u16, Value) {
        match self.answer(method, path_and_query) {
            Some(p) => (
                p["status"].as_u64().unwrap_or(200) as u16,
                p["body"].clone(),
            ),
            None => {
                self.misses
                    .lock()
                    .expect("misses")
                    .push(format!("{method} {path_and_query}"));
                let segment = path_and_query.rsplit('/').next().unwrap_or_default();
                (
                    400,
                    json!({"error": {"code": "BadRequest",
                        "message": format!("Resource not found for the segment '{segment}'.")}}),
                )
            }
        }
    }
}

/// Every request: `$batch` answers each inner request from the pages, as Graph's json-batching
/// page shows (`responses` with `id`, `status`, `headers`, `body`).
async fn serve(State(f): State<Arc<Fixtures>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let target = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    if method == Method::POST && uri.path() == "/v1.0/$batch" {
        let Ok(batch) = serde_json::from_slice::<Value>(&body) else {
            return (StatusCode::BAD_REQUEST, "not JSON").into_response();
        };
        let responses: Vec<Value> = batch["requests"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let url = r["url"].as_str().unwrap_or_default();
                let method = r["method"].as_str().unwrap_or("GET");
                let (status, body) =
                    f.respond(method, &format!("/v1.0/{}", url.trim_start_matches('/')));
                json!({"id": r["id"], "status": status,
                       "headers": {"Content-Type": "application/json"}, "body": body})
            })
            .collect();
        return axum::Json(json!({ "responses": responses })).into_response();
    }
    let (status, body) = f.respond(method.as_str(), &target);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}

async fn spawn_fixture_server() -> (String, Arc<Fixtures>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/microsoft/graph-examples.json"
    );
    let text = std::fs::read_to_string(path).expect("fixtures");
    // Links in the examples point at Graph; here Graph is this server.
    let doc: Value =
        serde_json::from_str(&text.replace("https://graph.microsoft.com", &origin)).expect("JSON");
    let pages = doc["pages"].as_array().expect("pages").clone();
    for p in &pages {
        let source = p["source"].as_str().unwrap_or_default();
        assert!(source.starts_with("https://learn.microsoft.com/"), "{p}");
    }
    let fixtures = Arc::new(Fixtures {
        pages,
        misses: Mutex::new(Vec::new()),
    });
    let app = Router::new().fallback(serve).with_state(fixtures.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (origin, fixtures)
}

async fn sync(origin: &str, db: &sentinel_testkit::TestDb) {
    let mut c = std::process::Command::new(BIN);
    c.args(["sync", "--permissions", "exhaustive"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("ENTRA_TENANT_ID", TENANT)
        .env("ENTRA_CLIENT_ID", "5e1f5a3c-0f6b-4c1e-9d3a-7a51e0c1d2b4")
        .env("ENTRA_CLIENT_SECRET", "fixture-secret")
        .env("ENTRA_AUTHORITY", origin)
        .env("GRAPH_BASE_URL", format!("{origin}/v1.0"))
        .env("RUST_LOG", "warn");
    let out = tokio::task::spawn_blocking(move || c.output().expect("run worker"))
        .await
        .expect("join");
    assert!(
        out.status.success(),
        "sync failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

async fn row(pool: &PgPool, sql: &str) -> Value {
    sqlx::query_scalar::<_, Value>(sql)
        .fetch_optional(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsofts_examples_land_in_every_column_they_define() {
    let (origin, fixtures) = spawn_fixture_server().await;
    let db = sentinel_testkit::create_db().await;
    let p = &db.pool;
    sync(&origin, &db).await;

    // user-delta Example 1: the fields it prints, and nothing for what it leaves out (an
    // absent property is not a null, and not `false`).
    let user = row(
        p,
        "SELECT json_build_object('name', display_name, 'upn', user_principal_name, 'mail', mail, \
           'enabled', account_enabled, 'department', department, 'guest', is_guest, \
           'phones', raw_json->'businessPhones') FROM msgraph_users WHERE id = 'id-value' AND deleted_at IS NULL",
    )
    .await;
    assert_eq!(
        user,
        json!({"name": "displayName-value", "upn": "userPrincipalName-value", "mail": "mail-value",
               "enabled": null, "department": null, "guest": false, "phones": ["businessPhones-value"]})
    );

    // group-delta Response 1: a Unified group and its two members from members@delta.
    let group = row(
        p,
        "SELECT json_build_object('name', display_name, 'mail', mail, 'unified', is_unified, \
           'members', (SELECT json_agg(member_id ORDER BY member_id) FROM msgraph_group_members m \
                       WHERE m.group_id = g.id AND m.deleted_at IS NULL)) \
         FROM msgraph_groups g WHERE display_name = 'All Company' AND deleted_at IS NULL",
    )
    .await;
    assert_eq!(
        group,
        json!({"name": "All Company", "mail": "allcompany@contoso.com", "unified": true,
               "members": ["49320844-be99-4164-8167-87ff5d047ace", "693acd06-2877-4339-8ade-b704261fe7a0"]})
    );

    // site-delta Examples 1 and 2: "teamSiteA was deleted and teamSiteB was either added or
    // modified"; the first page names one id twice (teamSiteB, then teamSiteC).
    let sites = row(
        p,
        "SELECT json_agg(json_build_object('name', name, 'deleted', deleted_at IS NOT NULL) ORDER BY name) \
         FROM msgraph_sites",
    )
    .await;
    assert_eq!(
        sites,
        json!([{"name": "teamSiteA", "deleted": true}, {"name": "teamSiteB", "deleted": false}])
    );

    // drive-list: type, quota and owner as printed, under the site that listed it.
    let drive = row(
        p,
        "SELECT json_build_object('name', name, 'type', drive_type, 'total', quota_total, 'used', quota_used, \
           'site', site_id) FROM msgraph_drives WHERE deleted_at IS NULL",
    )
    .await;
    assert_eq!(
        drive,
        json!({"name": "OneDrive", "type": "business", "total": 1099511627776u64, "used": 294606476,
               "site": "contoso.sharepoint.com,da60e844-ba1d-49bc-b4d4-d5e36bae9019,0271110f-634f-4300-a841-3a8a2e851851"})
    );

    // driveitem-delta Example 1: folder2 and file.txt; file5.txt arrives deleted and is never live.
    let items = || async {
        row(
            p,
            "SELECT json_agg(json_build_object('id', id, 'name', name, 'folder', is_folder) ORDER BY id) \
             FROM msgraph_drive_items WHERE deleted_at IS NULL",
        )
        .await
    };
    assert_eq!(
        items().await,
        json!([{"id": "0123456789abc", "name": "folder2", "folder": true},
               {"id": "123010204abac", "name": "file.txt", "folder": false}])
    );

    // driveitem-list-permissions: an edit link, John Doe's grant inherited from a parent folder,
    // an application's edit link; link secrets are never stored.
    let permissions = row(
        p,
        "SELECT json_agg(json_build_object('id', permission_id, 'roles', roles, 'link', link_type, \
           'inherited_from', inherited_from_id) ORDER BY permission_id) \
         FROM msgraph_drive_item_permissions WHERE item_id = '123010204abac' AND deleted_at IS NULL",
    )
    .await;
    assert_eq!(
        permissions,
        json!([{"id": "1", "roles": ["write"], "link": "edit", "inherited_from": null},
               {"id": "2", "roles": ["write"], "link": null, "inherited_from": "1234567890ABC!123"},
               {"id": "3", "roles": ["write"], "link": "edit", "inherited_from": null}])
    );
    let john = row(
        p,
        "SELECT json_build_object('type', grantee_type, 'id', grantee_id, 'name', display_name) \
         FROM msgraph_drive_item_permission_grants WHERE item_id = '123010204abac' AND permission_id = '2'",
    )
    .await;
    assert_eq!(
        john,
        json!({"type": "user", "id": "5D33DD65C6932946", "name": "John Doe"})
    );
    let secrets = row(
        p,
        "SELECT to_json(count(*)) FROM msgraph_drive_item_permissions WHERE raw_json::text LIKE '%authkey%'",
    )
    .await;
    assert_eq!(secrets, json!(0), "no link secret is stored");

    // The next run follows the stored deltaLink: driveitem-delta Example 2 deletes folder2.
    sync(&origin, &db).await;
    assert_eq!(
        items().await,
        json!([{"id": "123010204abac", "name": "file.txt", "folder": false}])
    );
    // ... and user-delta Example 3: a minimal object ("mobilePhone is not included, which means
    // it has not changed"; jobTitle's null is a value, kept as a JSON null, where an absent key
    // would read as SQL NULL). Only what it carries changes.
    let user = row(
        p,
        "SELECT json_build_object('name', display_name, 'upn', user_principal_name, 'mail', mail, \
           'job', jsonb_typeof(raw_json->'jobTitle'), 'mobile', raw_json->'mobilePhone', \
           'phones', raw_json->'businessPhones') FROM msgraph_users WHERE id = 'id-value' AND deleted_at IS NULL",
    )
    .await;
    assert_eq!(
        user,
        json!({"name": "displayName-value", "upn": "userPrincipalName-value", "mail": "mail-value",
               "job": "null", "mobile": "mobilePhone-value", "phones": ["businessPhones-value"]})
    );
    // ... and group-delta Response 3: "displayName and description are included which means
    // their values have changed"; mail, groupTypes and the members it leaves out stay.
    let group = row(
        p,
        "SELECT json_build_object('name', display_name, 'description', jsonb_typeof(raw_json->'description'), \
           'mail', mail, 'unified', is_unified, 'created', raw_json->'createdDateTime', \
           'members', (SELECT json_agg(member_id ORDER BY member_id) FROM msgraph_group_members m \
                       WHERE m.group_id = g.id AND m.deleted_at IS NULL)) \
         FROM msgraph_groups g WHERE id = '02bd9fd6-8f93-4758-87c3-1fb73740a315' AND deleted_at IS NULL",
    )
    .await;
    assert_eq!(
        group,
        json!({"name": "Everyone", "description": "null", "mail": "allcompany@contoso.com",
               "unified": true, "created": "2021-03-12T10:36:14Z",
               "members": ["49320844-be99-4164-8167-87ff5d047ace", "693acd06-2877-4339-8ade-b704261fe7a0"]})
    );
    let misses = fixtures.misses.lock().expect("misses").clone();
    assert!(misses.is_empty(), "requests no example answers: {misses:?}");
    db.drop_db().await;
}
