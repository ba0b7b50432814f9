//! Schedules of a job: added, changed and deleted (cron validated, with its next runs), and
//! the cron preview.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use sentinel_sched::manage;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::db_error;
use super::jobs::{audit, bad_json, parse_cron, render_job, upcoming};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::render::error_response;

/// A schedule as the form or the API sends it.
#[derive(Debug, Deserialize)]
pub struct ScheduleInput {
    cron_expr: String,
    /// JSON: a boolean (default true). Form: a checkbox.
    #[serde(default)]
    enabled: Option<Value>,
}

impl ScheduleInput {
    fn enabled(&self) -> bool {
        match &self.enabled {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => !matches!(s.as_str(), "" | "false" | "0" | "off"),
            Some(_) => false,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ScheduleForm {
    cron_expr: String,
    enabled: Option<String>,
}

async fn add_schedule(
    state: &AppState,
    user: &CurrentUser,
    job_id: Uuid,
    expr: &str,
    enabled: bool,
    json: bool,
) -> Result<Uuid, Response> {
    let cron = parse_cron(expr).map_err(|e| error_response(json, StatusCode::BAD_REQUEST, &e))?;
    match manage::add_schedule(state.store.pool(), job_id, &cron, enabled).await {
        Ok(Some(id)) => {
            audit(
                state,
                user,
                "schedule.create",
                "schedule",
                id,
                json!({"job_id": job_id, "cron_expr": cron.to_string(), "enabled": enabled}),
            )
            .await;
            Ok(id)
        }
        Ok(None) => Err(error_response(
            json,
            StatusCode::NOT_FOUND,
            &format!("no job {job_id}"),
        )),
        Err(e) => Err(db_error(json, e)),
    }
}

pub async fn add_schedule_form(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
    Path(job_id): Path<Uuid>,
    Form(form): Form<ScheduleForm>,
) -> Response {
    if let Err(msg) = parse_cron(&form.cron_expr) {
        return render_job(
            &state,
            &user,
            &uri,
            job_id,
            Some(&form.cron_expr),
            Some(&msg),
        )
        .await;
    }
    match add_schedule(
        &state,
        &user,
        job_id,
        &form.cron_expr,
        form.enabled.is_some(),
        false,
    )
    .await
    {
        Ok(_) => Redirect::to(&format!("/jobs/{job_id}")).into_response(),
        Err(r) => r,
    }
}

pub async fn add_schedule_json(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(job_id): Path<Uuid>,
    Json(input): Json<ScheduleInput>,
) -> Response {
    match add_schedule(
        &state,
        &user,
        job_id,
        &input.cron_expr,
        input.enabled(),
        true,
    )
    .await
    {
        Ok(id) => (
            StatusCode::CREATED,
            Json(json!({"schedule_id": id, "upcoming": upcoming(&input.cron_expr, 5)})),
        )
            .into_response(),
        Err(r) => r,
    }
}

async fn update_schedule(
    state: &AppState,
    user: &CurrentUser,
    id: Uuid,
    expr: &str,
    enabled: bool,
    json: bool,
) -> Result<(), Response> {
    let cron = parse_cron(expr).map_err(|e| error_response(json, StatusCode::BAD_REQUEST, &e))?;
    match manage::update_schedule(state.store.pool(), id, &cron, enabled).await {
        Ok(true) => {
            audit(
                state,
                user,
                "schedule.update",
                "schedule",
                id,
                json!({"cron_expr": cron.to_string(), "enabled": enabled}),
            )
            .await;
            Ok(())
        }
        Ok(false) => Err(error_response(
            json,
            StatusCode::NOT_FOUND,
            &format!("no schedule {id}"),
        )),
        Err(e) => Err(db_error(json, e)),
    }
}

#[derive(Debug, Deserialize)]
pub struct ScheduleUpdateForm {
    cron_expr: String,
    enabled: Option<String>,
    job_id: Uuid,
}

pub async fn update_schedule_form(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
    Path(id): Path<Uuid>,
    Form(form): Form<ScheduleUpdateForm>,
) -> Response {
    if let Err(msg) = parse_cron(&form.cron_expr) {
        return render_job(
            &state,
            &user,
            &uri,
            form.job_id,
            Some(&form.cron_expr),
            Some(&msg),
        )
        .await;
    }
    match update_schedule(
        &state,
        &user,
        id,
        &form.cron_expr,
        form.enabled.is_some(),
        false,
    )
    .await
    {
        Ok(()) => Redirect::to(&format!("/jobs/{}", form.job_id)).into_response(),
        Err(r) => r,
    }
}

pub async fn update_schedule_json(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<Uuid>,
    Json(input): Json<ScheduleInput>,
) -> Response {
    match update_schedule(&state, &user, id, &input.cron_expr, input.enabled(), true).await {
        Ok(()) => Json(json!({"schedule_id": id, "upcoming": upcoming(&input.cron_expr, 5)}))
            .into_response(),
        Err(r) => r,
    }
}

async fn delete_schedule(
    state: &AppState,
    user: &CurrentUser,
    id: Uuid,
    json: bool,
) -> Result<(), Response> {
    match manage::delete_schedule(state.store.pool(), id).await {
        Ok(true) => {
            audit(state, user, "schedule.delete", "schedule", id, json!({})).await;
            Ok(())
        }
        Ok(false) => Err(error_response(
            json,
            StatusCode::NOT_FOUND,
            &format!("no schedule {id}"),
        )),
        Err(e) => Err(db_error(json, e)),
    }
}

#[derive(Debug, Deserialize)]
pub struct ScheduleDeleteForm {
    job_id: Uuid,
}

pub async fn delete_schedule_form(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<Uuid>,
    Form(form): Form<ScheduleDeleteForm>,
) -> Response {
    match delete_schedule(&state, &user, id, false).await {
        Ok(()) => Redirect::to(&format!("/jobs/{}", form.job_id)).into_response(),
        Err(r) => r,
    }
}

pub async fn delete_schedule_json(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<Uuid>,
) -> Response {
    match delete_schedule(&state, &user, id, true).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
pub struct PreviewQuery {
    expr: String,
}

/// `GET /api/cron-preview?expr=`: the next five times, or why the expression is invalid.
pub async fn cron_preview(Query(q): Query<PreviewQuery>) -> Response {
    match parse_cron(&q.expr) {
        Ok(c) => {
            Json(json!({"expr": c.to_string(), "upcoming": c.upcoming(chrono::Utc::now(), 5)}))
                .into_response()
        }
        Err(e) => bad_json(e),
    }
}
