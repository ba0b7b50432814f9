//! The web in-process (zero2prod's `spawn_app`): the real router, sessions and store over a
//! database of its own, Graph and Entra from a simulated tenant over HTTP, and a fake worker
//! behind the `Worker` trait. Requests go through `router.oneshot`, no port, no process.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use sentinel_sim::{Profile, RunningSim};
use sentinel_store::Store;
use sentinel_testkit::{TestDb, create_db, lookup, sim_vars, spawn_sim};
use sentinel_web::auth::{CurrentUser, ROLE_ADMIN, ROLE_READER, keep_signed_in};
use sentinel_web::worker_client::{Worker, WorkerError};
use sentinel_web::{AppState, WebConfig, app, session_store};
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_sessions::Session;
use tower_sessions_sqlx_store::PostgresStore;
use uuid::Uuid;

/// A worker that records what it is asked and answers as told.
#[derive(Debug, Default)]
pub struct FakeWorker {
    /// `(op, job)` for each operation asked for.
    pub calls: Mutex<Vec<(String, Uuid)>>,
    /// When set, every call fails with it.
    pub failure: Mutex<Option<WorkerError>>,
}

impl FakeWorker {
    fn answer(&self, ok: Value) -> Result<Value, WorkerError> {
        match self.failure.lock().expect("lock").clone() {
            Some(e) => Err(e),
            None => Ok(ok),
        }
    }

    pub fn fail_with(&self, status: Option<u16>, message: &str) {
        *self.failure.lock().expect("lock") = Some(WorkerError {
            status,
            message: message.into(),
        });
    }
}

#[async_trait::async_trait]
impl Worker for FakeWorker {
    async fn health(&self) -> Result<Value, WorkerError> {
        self.answer(json!({"status": "ok", "database": "reachable", "worker_id": "fake"}))
    }
    async fn status(&self) -> Result<Value, WorkerError> {
        self.answer(json!({"worker_id": "fake", "jobs": []}))
    }
    async fn operate(&self, op: &str, job_id: Uuid, _: &CurrentUser) -> Result<Value, WorkerError> {
        let answer = self.answer(json!({"ok": true, "job_id": job_id}));
        if answer.is_ok() {
            self.calls.lock().expect("lock").push((op.into(), job_id));
        }
        answer
    }
}

pub struct TestApp {
    pub router: Router,
    pub db: TestDb,
    pub sim: RunningSim,
    pub worker: Arc<FakeWorker>,
    pub store: Store,
    sessions: PostgresStore,
}

/// A signed-in browser: its session cookie and CSRF token.
pub struct Who {
    pub cookie: String,
    pub csrf: String,
}

/// What came back.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// The web's configuration pointed at `sim` and `db`.
fn config(sim: &RunningSim, db: &TestDb) -> WebConfig {
    config_at(sim, db, "http://127.0.0.1:9")
}

/// The same, with browsers reaching the web at `public_url`.
fn config_at(sim: &RunningSim, db: &TestDb, public_url: &str) -> WebConfig {
    let mut vars = sim_vars(sim, db);
    vars.push(("WEB_PUBLIC_URL", public_url.into()));
    WebConfig::from_lookup(lookup(vars)).expect("config")
}

pub async fn spawn_app() -> TestApp {
    let sim = spawn_sim(Profile::Tiny, 7).await;
    let db = create_db().await;
    let config = config(&sim, &db);
    let store = Store::from_pool(db.pool.clone());
    store.migrate().await.expect("schema");
    let sessions = session_store(&store).await.expect("sessions");
    let worker = Arc::new(FakeWorker::default());
    let state = AppState::new(&config, store.clone(), worker.clone()).expect("state");
    TestApp {
        router: app(state, sessions.clone(), false),
        db,
        sim,
        worker,
        store,
        sessions,
    }
}

impl TestApp {
    /// The deployment's own tenant (the simulator's), which the web shows by default.
    pub fn tenant(&self) -> String {
        self.sim.state.read_tenant().tenant_id.clone()
    }

    /// The same application over another store (e.g. one whose database is down); sessions
    /// stay in this test's database.
    pub fn with_store(&self, store: Store) -> Router {
        let config = config(&self.sim, &self.db);
        let state = AppState::new(&config, store, self.worker.clone()).expect("state");
        app(state, self.sessions.clone(), false)
    }

    /// The same application re-checking roles with Entra on every request.
    pub fn rechecking_every_request(&self) -> Router {
        let mut config = config(&self.sim, &self.db);
        config.role_recheck = std::time::Duration::ZERO;
        let state = AppState::new(&config, self.store.clone(), self.worker.clone()).expect("state");
        app(state, self.sessions.clone(), false)
    }

    /// Signs in through the simulated Entra as demo user `n` (0 admin, 1 reader), as a browser
    /// does: `/auth/login`, the account picker, the callback. The session's cookie and CSRF
    /// token (read from the page).
    pub async fn sign_in_through_entra(&self, router: &Router, n: usize) -> Who {
        let start = get(router, "/auth/login", None).await;
        assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
        let signin_cookie = start
            .header("set-cookie")
            .split(';')
            .next()
            .expect("cookie")
            .to_string();
        let picked = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
            .get(format!("{}&login_hint_user={n}", start.header("location")))
            .send()
            .await
            .expect("the account picker");
        let back = url::Url::parse(picked.headers()["location"].to_str().expect("location"))
            .expect("callback URL");
        let path = format!("{}?{}", back.path(), back.query().unwrap_or(""));
        let done = send(router, Method::GET, &path, Some(&signin_cookie), None, None).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        let cookie = done
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(sentinel_web::session_cookie(false)))
            .and_then(|c| c.split(';').next())
            .expect("a session cookie")
            .to_string();
        let page = send(router, Method::GET, "/analytics", Some(&cookie), None, None).await;
        let marker = "name=\"csrf_token\" value=\"";
        let at = page.body.find(marker).expect("a CSRF token on the page") + marker.len();
        let csrf = page.body[at..]
            .split('"')
            .next()
            .unwrap_or_default()
            .to_string();
        Who { cookie, csrf }
    }

    /// The same application as browsers reach it over https (secure cookies).
    pub fn over_https(&self) -> Router {
        let config = config_at(&self.sim, &self.db, "https://sentinel.example");
        let state = AppState::new(&config, self.store.clone(), self.worker.clone()).expect("state");
        app(state, self.sessions.clone(), config.secure_cookies())
    }

    /// One of the simulated tenant's items, written to the cache as a scan would: `(drive, item)`.
    pub async fn cache_an_item(&self) -> (String, String) {
        let items = sentinel_testkit::sim_dump(&self.sim, "items").await;
        let it = items
            .iter()
            .find(|i| i["parentId"].is_string())
            .expect("an item below a root");
        let (drive, id) = (
            it["driveId"].as_str().expect("drive").to_string(),
            it["id"].as_str().expect("id").to_string(),
        );
        let row = sentinel_store::DriveItemRow {
            id: id.clone(),
            parent_id: None,
            name: it["name"].as_str().map(String::from),
            is_folder: false,
            is_root: false,
            size: None,
            mime_type: None,
            quick_xor_hash: None,
            sha1_hash: None,
            created_at: None,
            modified_at: None,
            created_by_id: None,
            modified_by_id: None,
            shared_scope: None,
            is_permission_root: false,
            sharing_changed: false,
            raw_json: it.to_string(),
        };
        let tenant = self.sim.state.read_tenant().tenant_id.clone();
        self.store
            .apply_drive_items(&tenant, &drive, &[row], &[], None)
            .await
            .expect("cache the item");
        (drive, id)
    }

    /// A session signed in with `role`, as the sign-in callback leaves it.
    pub async fn sign_in(&self, role: &str) -> Who {
        assert!(role == ROLE_ADMIN || role == ROLE_READER);
        let user = CurrentUser::new(
            Uuid::new_v4().to_string(),
            Some(format!("{role}@contoso.example")),
            Some(role.to_string()),
            vec![role.to_string()],
        );
        let session = Session::new(None, Arc::new(self.sessions.clone()), None);
        keep_signed_in(&session, &user).await.expect("session");
        session.save().await.expect("save");
        let id = session.id().expect("saved session has an id");
        Who {
            cookie: format!("{}={id}", sentinel_web::session_cookie(false)),
            csrf: user.csrf,
        }
    }

    pub async fn get(&self, path: &str, who: Option<&Who>) -> Reply {
        get(&self.router, path, who).await
    }

    /// A form post, as the page sends it (`csrf_token` is one of `fields` when wanted).
    pub async fn post_form(&self, path: &str, who: &Who, fields: &[(&str, &str)]) -> Reply {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            form.append_pair(k, v);
        }
        let body = (
            "application/x-www-form-urlencoded".to_string(),
            form.finish(),
        );
        send(
            &self.router,
            Method::POST,
            path,
            Some(&who.cookie),
            None,
            Some(body),
        )
        .await
    }

    /// A JSON call with the session's CSRF token in its header.
    pub async fn call(&self, method: Method, path: &str, who: &Who, body: Option<Value>) -> Reply {
        let body = body.map(|b| ("application/json".to_string(), b.to_string()));
        send(
            &self.router,
            method,
            path,
            Some(&who.cookie),
            Some(&who.csrf),
            body,
        )
        .await
    }
}

pub async fn get(router: &Router, path: &str, who: Option<&Who>) -> Reply {
    send(
        router,
        Method::GET,
        path,
        who.map(|w| w.cookie.as_str()),
        None,
        None,
    )
    .await
}

pub async fn send(
    router: &Router,
    method: Method,
    path: &str,
    cookie: Option<&str>,
    csrf: Option<&str>,
    body: Option<(String, String)>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    if let Some(t) = csrf {
        req = req.header("x-csrf-token", t);
    }
    let req = match body {
        Some((content_type, text)) => req
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(text)),
        None => req.body(Body::empty()),
    }
    .expect("request");
    let resp = router.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}
