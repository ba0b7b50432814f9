//! `/admin`: the worker's health and status from its control API, run-now, pause and resume
//! (the worker does them and audits them with the signed-in user), and the audit trail.

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};
use tera::Context;
use uuid::Uuid;

use crate::AppState;
use crate::auth::CurrentUser;
use crate::render::{error_response, wants_json};

pub async fn admin(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
) -> Response {
    let json = wants_json(&uri);
    let (health, status) = tokio::join!(state.worker.health(), state.worker.status());
    let audit: Vec<Value> = sqlx::query_scalar(
        "SELECT to_jsonb(a) FROM (SELECT occurred_at, actor_upn, actor_name, action, entity_type, entity_id, details \
         FROM audit_events ORDER BY occurred_at DESC LIMIT 25) a",
    )
    .fetch_all(state.store.pool())
    .await
    .unwrap_or_default();
    let health = health.map_err(|e| e.to_string());
    let status = status.map_err(|e| e.to_string());
    if json {
        return Json(json!({
            "worker_health": health.as_ref().ok(), "worker_health_error": health.as_ref().err(),
            "worker_status": status.as_ref().ok(), "worker_status_error": status.as_ref().err(),
            "audit": audit,
        }))
        .into_response();
    }
    let mut ctx = Context::new();
    ctx.insert("nav", "admin");
    match &health {
        Ok(h) => ctx.insert("health", h),
        Err(e) => ctx.insert("health_error", e),
    }
    match &status {
        Ok(s) => ctx.insert("jobs", &s["jobs"]),
        Err(e) => ctx.insert("status_error", e),
    }
    ctx.insert("audit", &audit);
    state.views.page("admin.html", Some(&user), ctx)
}

fn op_name(op: &str) -> Option<&'static str> {
    match op {
        "run-now" => Some("run-now"),
        "pause" => Some("pause"),
        "resume" => Some("resume"),
        _ => None,
    }
}

async fn operate(
    state: &AppState,
    user: &CurrentUser,
    job_id: Uuid,
    op: &str,
    json: bool,
) -> Result<Value, Response> {
    let Some(op) = op_name(op) else {
        return Err(error_response(
            json,
            StatusCode::NOT_FOUND,
            &format!("no operation '{op}': use run-now, pause or resume"),
        ));
    };
    state.worker.operate(op, job_id, user).await.map_err(|e| {
        let status = e
            .status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .filter(|s| s.is_client_error())
            .unwrap_or(StatusCode::BAD_GATEWAY);
        error_response(json, status, &e.to_string())
    })
}

pub async fn operate_form(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path((job_id, op)): Path<(Uuid, String)>,
) -> Response {
    match operate(&state, &user, job_id, &op, false).await {
        Ok(_) => Redirect::to("/admin").into_response(),
        Err(r) => r,
    }
}

pub async fn operate_json(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path((job_id, op)): Path<(Uuid, String)>,
) -> Response {
    match operate(&state, &user, job_id, &op, true).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}
