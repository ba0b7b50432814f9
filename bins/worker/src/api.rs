//! The worker's internal control API: health, status, run-now, pause, resume.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use sentinel_sched::SchedError;
use sentinel_store::{AuditEvent, Store};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use sentinel_graph::identity::{TokenValidator, VerifiedToken as Caller};

/// The app role a caller of the control API must hold.
pub const CALLER_ROLE: &str = "Sentinel.Worker.Invoke";

#[derive(Debug, Clone)]
pub struct ApiState {
    pub store: Store,
    /// The scheduler's tables, for `sentinel_sched`'s operations.
    pub jobs: sentinel_sched::PgPool,
    pub validator: Arc<TokenValidator>,
    pub worker_id: String,
    /// Our own app registration (the web's): only its calls may name the signed-in user they
    /// act for. Another app granted the worker role is audited as itself.
    pub own_app_id: String,
}

/// What a caller of an unknown route or method is told.
const ROUTES: &str = "the control API has GET /health, GET /jobs/status and POST /jobs/run-now, /jobs/pause, /jobs/resume";

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

pub fn router(state: ApiState) -> Router {
    let protected = Router::new()
        .route("/jobs/status", get(status))
        .route("/jobs/run-now", post(run_now))
        .route("/jobs/pause", post(pause))
        .route("/jobs/resume", post(resume))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/health", get(health))
        .merge(protected)
        .fallback(|| async { error(StatusCode::NOT_FOUND, ROUTES) })
        .method_not_allowed_fallback(|| async { error(StatusCode::METHOD_NOT_ALLOWED, ROUTES) })
        .with_state(state)
}

async fn require_token(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::to_string);
    // Why a token is refused is logged for the operator; the caller, who may be anyone on
    // the network, is told only that it was.
    let refused = || {
        error(
            StatusCode::UNAUTHORIZED,
            format!("a valid bearer token with the app role {CALLER_ROLE} is required"),
        )
    };
    let Some(token) = token else {
        tracing::info!("control API: no bearer token");
        return refused();
    };
    match state.validator.validate(&token).await {
        Ok(caller) if caller.has_role(CALLER_ROLE) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Ok(caller) => {
            tracing::warn!(app = ?caller.app_id(), "control API: a token without the app role");
            refused()
        }
        Err(why) => {
            tracing::warn!(%why, "control API: token refused");
            refused()
        }
    }
}

async fn health(State(state): State<ApiState>) -> Response {
    match state.store.now().await {
        Ok(_) => {
            Json(json!({"status": "ok", "database": "reachable", "worker_id": state.worker_id}))
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "health: the database did not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "degraded", "database": "unreachable", "worker_id": state.worker_id})),
            )
                .into_response()
        }
    }
}

async fn status(State(state): State<ApiState>) -> Response {
    match sentinel_sched::manage::job_status(&state.jobs).await {
        Ok(jobs) => Json(json!({"worker_id": state.worker_id, "jobs": jobs})).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "status: the database did not answer");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database did not answer",
            )
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobRef {
    job_id: Uuid,
}

fn parse_body(body: &[u8]) -> Result<JobRef, String> {
    serde_json::from_slice(body).map_err(|e| format!("expected {{\"job_id\": \"<uuid>\"}}: {e}"))
}

/// Who asked: the signed-in user as the web passes it, and the calling app.
async fn audit(
    state: &ApiState,
    headers: &HeaderMap,
    caller: &Caller,
    action: &str,
    job: Uuid,
    outcome: &str,
) {
    // The `X-Sentinel-Actor-*` headers are a claim the caller makes: believed from the web
    // (our own app), never from another holder of the role, which could name anyone.
    let from_web = caller.app_id() == state.own_app_id;
    let h = |k: &str| {
        headers
            .get(k)
            .filter(|_| from_web)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let event = AuditEvent {
        actor_oid: h("x-sentinel-actor-oid").or_else(|| Some(caller.oid.clone())),
        actor_upn: h("x-sentinel-actor-upn"),
        actor_name: h("x-sentinel-actor-name")
            .or_else(|| (!from_web).then(|| format!("app {}", caller.app_id()))),
        action: action.to_string(),
        entity_type: Some("job".into()),
        entity_id: Some(job.to_string()),
        details: json!({"app_id": caller.app_id(), "worker_id": state.worker_id, "outcome": outcome}),
        // The job's tenant, when the job exists.
        tenant_id: sentinel_sched::manage::get_job(&state.jobs, job)
            .await
            .ok()
            .flatten()
            .map(|j| j.tenant_id),
    };
    if let Err(e) = state.store.audit(&event).await {
        tracing::warn!(error = %e, action, "could not write audit event");
    }
}

async fn operate(
    state: ApiState,
    headers: HeaderMap,
    caller: Caller,
    body: axum::body::Bytes,
    action: &str,
    op: impl AsyncFnOnce(&sentinel_sched::PgPool, Uuid) -> Result<bool, SchedError>,
) -> Response {
    let job = match parse_body(&body) {
        Ok(j) => j.job_id,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let (resp, outcome) = match op(&state.jobs, job).await {
        Ok(true) => (
            Json(json!({"ok": true, "job_id": job})).into_response(),
            "ok",
        ),
        Ok(false) => (
            error(StatusCode::NOT_FOUND, format!("no job {job}")),
            "not found",
        ),
        Err(SchedError::Paused(_)) => (
            error(
                StatusCode::CONFLICT,
                format!("job {job} is paused: resume it first"),
            ),
            "paused",
        ),
        Err(e) => {
            tracing::error!(error = %e, action, "the database did not answer");
            (
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database did not answer",
                ),
                "error",
            )
        }
    };
    audit(&state, &headers, &caller, action, job, outcome).await;
    resp
}

async fn run_now(
    State(s): State<ApiState>,
    Extension(c): Extension<Caller>,
    h: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    operate(s, h, c, body, "job.run_now", async |p, j| {
        sentinel_sched::run_now(p, j).await
    })
    .await
}

async fn pause(
    State(s): State<ApiState>,
    Extension(c): Extension<Caller>,
    h: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    operate(s, h, c, body, "job.pause", async |p, j| {
        sentinel_sched::pause(p, j).await
    })
    .await
}

async fn resume(
    State(s): State<ApiState>,
    Extension(c): Extension<Caller>,
    h: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    operate(s, h, c, body, "job.resume", async |p, j| {
        sentinel_sched::resume(p, j).await
    })
    .await
}
