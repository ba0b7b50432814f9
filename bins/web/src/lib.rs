//! The Princeton Sentinel dashboard: server-rendered pages (axum + tera + Tailwind), the JSON
//! API behind them, CSV downloads and the live Graph drill-down. Thin wiring: reads come from
//! `sentinel-store`, intent is written through `sentinel-sched`, runs are started by the
//! worker (through its control API), and Graph is reached only through `sentinel-graph`.

pub mod auth;
pub mod config;
pub mod error;
pub mod format;
pub mod live_budget;
pub mod live_clients;
pub mod pages;
pub mod render;
pub mod security;
pub mod signin_cookie;
pub mod tenancy;
pub mod worker_client;

use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use secrecy::ExposeSecret;
use sentinel_graph::GraphConfig;
use sentinel_graph::identity::SignIn;
use sentinel_store::Store;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

pub use config::WebConfig;
use worker_client::{Worker, WorkerClient};

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    /// The scheduler's tables (jobs, schedules, runs), reached through `sentinel_sched::manage`.
    pub jobs: sentinel_sched::PgPool,
    /// The deployment's own tenant (`ENTRA_TENANT_ID`): its users sign in, and it is shown
    /// until a user chooses another (see [`tenancy`]).
    pub tenant: String,
    pub views: Arc<render::Views>,
    pub signin: Arc<SignIn>,
    /// How long roles are trusted before Entra is asked again (see [`auth::require_user`]).
    pub role_recheck: std::time::Duration,
    /// Where Entra returns the browser after sign-out.
    pub signed_out_uri: String,
    /// The Content-Security-Policy of every response (it names Entra's origin).
    pub csp: axum::http::HeaderValue,
    /// Carries a started sign-in in the browser (see [`signin_cookie`]).
    pub signin_cookie: Arc<signin_cookie::SignInCookie>,
    /// App-only Graph clients for the live panels, one per tenant; nothing they return is
    /// stored.
    pub graph: Arc<live_clients::LiveClients>,
    /// The live panels' share of the app's Graph budget.
    pub live_budget: live_budget::LiveBudget,
    pub worker: Arc<dyn Worker>,
    /// The admin-consent link each tenant's administrator is sent.
    pub admin_consent: Arc<tenancy::AdminConsent>,
}

impl AppState {
    /// The state for `config` over `store`, with `worker` answering for the worker.
    pub fn new(config: &WebConfig, store: Store, worker: Arc<dyn Worker>) -> Result<AppState> {
        Ok(AppState {
            jobs: store.pool().clone(),
            store,
            tenant: config.graph.tenant_id.clone(),
            views: Arc::new(render::Views::new()?),
            signin: Arc::new(SignIn::new(&config.graph, &config.redirect_uri())?),
            role_recheck: config.role_recheck,
            signed_out_uri: config.signed_out_uri(),
            csp: security::content_security_policy(&config.graph.authority)
                .context("ENTRA_AUTHORITY cannot be named in the Content-Security-Policy")?,
            signin_cookie: Arc::new(signin_cookie::SignInCookie::new(
                &config.graph.client_secret,
                config.secure_cookies(),
            )),
            graph: Arc::new(live_clients::LiveClients::new(live_graph_config(
                &config.graph,
            ))?),
            live_budget: live_budget::LiveBudget::new(config.graph.live_ru_per_minute()),
            worker,
            admin_consent: Arc::new(tenancy::AdminConsent {
                authority: config.graph.authority.clone(),
                client_id: config.graph.client_id.clone(),
                redirect_uri: config.signed_out_uri(),
            }),
        })
    }

    /// Writes an audit event. A failed write is logged, not shown: the change it records has
    /// been made, and the person who made it should not be told it failed.
    pub async fn record_audit(&self, event: &sentinel_store::AuditEvent) {
        if let Err(e) = self.store.audit(event).await {
            tracing::warn!(error = %e, action = %event.action, "could not write an audit event");
        }
    }
}

/// The live panel must answer quickly or say why not: few retries, short throttling waits.
fn live_graph_config(config: &GraphConfig) -> GraphConfig {
    let mut c = config.clone();
    c.max_retries = 1;
    c.max_throttle_wait = std::time::Duration::from_secs(10);
    c.request_timeout = std::time::Duration::from_secs(15);
    c.max_concurrency = 4;
    c
}

/// Connects to the database, applies the schema, and builds the application.
pub async fn build(config: &WebConfig) -> Result<Router> {
    let store = Store::connect_with_timeout(
        config.database_url.expose_secret(),
        10,
        config.statement_timeout,
    )
    .await
    .context("connecting to DATABASE_URL")?;
    store.migrate().await.context("applying the schema")?;
    // The deployment's own tenant is one of its tenants, whichever process starts first.
    store
        .register_tenant(&config.graph.tenant_id, None)
        .await
        .context("registering ENTRA_TENANT_ID")?;
    let sessions = session_store(&store).await?;
    tokio::spawn(delete_expired_sessions(sessions.clone()));
    let worker = WorkerClient::new(&config.graph, config.worker_api_url.clone())?;
    let state = AppState::new(config, store, Arc::new(worker))?;
    Ok(app(state, sessions, config.secure_cookies()))
}

/// Sessions live in the database, in a table of their own.
pub async fn session_store(store: &Store) -> Result<PostgresStore> {
    let sessions = PostgresStore::new(store.pool().clone());
    sessions
        .migrate()
        .await
        .context("creating the session table")?;
    Ok(sessions)
}

/// The routes with server-side sessions (see [`session_cookie`], 8 h of inactivity).
pub fn app(state: AppState, sessions: PostgresStore, secure_cookies: bool) -> Router {
    let layer = SessionManagerLayer::new(sessions)
        .with_name(session_cookie(secure_cookies))
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure_cookies)
        .with_expiry(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::hours(8),
        ));
    router(state).layer(layer)
}

/// The session cookie's name: over https with the `__Host-` prefix, which browsers accept only
/// from this host, `Secure`, for every path, and which no sibling subdomain can set or shadow.
pub fn session_cookie(secure: bool) -> &'static str {
    if secure {
        "__Host-sentinel_session"
    } else {
        "sentinel_session"
    }
}

/// Expired sessions are deleted every ten minutes (a session is also refused once expired).
async fn delete_expired_sessions(sessions: PostgresStore) {
    use tower_sessions::session_store::ExpiredDeletion;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tick.tick().await;
        if let Err(e) = sessions.delete_expired().await {
            tracing::warn!(error = %e, "could not delete expired sessions");
        }
    }
}

/// The routes; sessions are layered on by [`app`].
pub fn router(state: AppState) -> Router {
    let signed_in = pages::routes()
        .route("/auth/logout", post(auth::logout))
        .route_layer(middleware::from_fn(auth::guard_changes))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            tenancy::select_tenant,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_user,
        ));
    Router::new()
        .route("/health", get(pages::health))
        .route("/auth/login", get(auth::login))
        .route("/auth/callback", get(auth::callback))
        .route("/signed-out", get(auth::signed_out))
        .route("/static/app.css", get(security::stylesheet))
        .merge(signed_in)
        .fallback(pages::not_found)
        .layer(middleware::from_fn(error::render_errors))
        .layer(middleware::map_response_with_state(
            state.clone(),
            security::headers,
        ))
        .with_state(state)
}

/// Runs the web until Ctrl-C or SIGTERM.
pub async fn serve(config: WebConfig) -> Result<()> {
    let app = build(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding WEB_ADDR {}", config.addr))?;
    tracing::info!(addr = %config.addr, public_url = %config.public_url, "web serving");
    axum::serve(listener, app)
        .with_graceful_shutdown(sentinel_sched::shutdown_signal())
        .await
        .context("serving")
}
