//! Schedules of a job: added, changed and deleted (cron validated, with its next runs), and
//! the cron preview.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sentinel_sched::manage;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::jobs::{audit, changed, parse_cron, render_job, tenant_job, upcoming};
use crate::AppState;
use crate::auth::{AdminUser, CurrentUser};
use crate::error::WebError;
use crate::format::{FormInput, Format, Input, is_on};

/// A schedule as the API sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    cron_expr: String,
    #[serde(default = "yes")]
    enabled: bool,
    /// The job page the form was on, to show it again when the expression is refused.
    #[serde(skip)]
    form_job_id: Option<Uuid>,
}

fn yes() -> bool {
    true
}

/// The form on the job page: the switch is a checkbox.
#[derive(Debug, Deserialize)]
pub struct ScheduleForm {
    cron_expr: String,
    enabled: Option<String>,
    job_id: Option<Uuid>,
}

impl From<ScheduleForm> for ScheduleInput {
    fn from(f: ScheduleForm) -> ScheduleInput {
        ScheduleInput {
            cron_expr: f.cron_expr,
            enabled: is_on(f.enabled.as_deref()),
            form_job_id: f.job_id,
        }
    }
}

impl FormInput for ScheduleInput {
    type Form = ScheduleForm;
}

/// A refused expression: the page shows the job again with the error and the preview, the
/// API answers 400.
async fn refuse(
    state: &AppState,
    user: &AdminUser,
    format: Format,
    job_id: Option<Uuid>,
    input: &ScheduleInput,
    msg: String,
) -> Result<Response, WebError> {
    match job_id {
        Some(job) if format == Format::Html => {
            render_job(
                state,
                &user.0,
                format,
                job,
                Some(&input.cron_expr),
                Some(&msg),
            )
            .await
        }
        _ => Err(WebError::BadInput(msg)),
    }
}

/// Schedule `id` exists and is of a job of the tenant `user` is looking at.
async fn tenant_schedule(state: &AppState, user: &CurrentUser, id: Uuid) -> Result<(), WebError> {
    match manage::schedule_tenant(&state.jobs, id).await? {
        Some(t) if t == user.tenant()? => Ok(()),
        _ => Err(WebError::not_found(format_args!("schedule {id}"))),
    }
}

/// `POST /jobs/{id}/schedules` (form) and `POST /api/jobs/{id}/schedules` (JSON).
pub async fn add(
    State(state): State<AppState>,
    user: AdminUser,
    format: Format,
    Path(job_id): Path<Uuid>,
    Input(input): Input<ScheduleInput>,
) -> Result<Response, WebError> {
    let cron = match parse_cron(&input.cron_expr) {
        Ok(c) => c,
        Err(msg) => return refuse(&state, &user, format, Some(job_id), &input, msg).await,
    };
    tenant_job(&state, &user.0, job_id).await?;
    let id = manage::add_schedule(&state.jobs, job_id, &cron, input.enabled)
        .await?
        .ok_or_else(|| WebError::not_found(format_args!("job {job_id}")))?;
    let details =
        json!({"job_id": job_id, "cron_expr": cron.to_string(), "enabled": input.enabled});
    audit(&state, &user.0, "schedule.create", "schedule", id, details).await;
    Ok(changed(
        format,
        &format!("/jobs/{job_id}"),
        (
            StatusCode::CREATED,
            Json(json!({"schedule_id": id, "upcoming": upcoming(&input.cron_expr, 5)})),
        ),
    ))
}

/// `POST /schedules/{id}` (form) and `PUT /api/schedules/{id}` (JSON).
pub async fn update(
    State(state): State<AppState>,
    user: AdminUser,
    format: Format,
    Path(id): Path<Uuid>,
    Input(input): Input<ScheduleInput>,
) -> Result<Response, WebError> {
    let cron = match parse_cron(&input.cron_expr) {
        Ok(c) => c,
        Err(msg) => return refuse(&state, &user, format, input.form_job_id, &input, msg).await,
    };
    tenant_schedule(&state, &user.0, id).await?;
    let job_id = manage::update_schedule(&state.jobs, id, &cron, input.enabled)
        .await?
        .ok_or_else(|| WebError::not_found(format_args!("schedule {id}")))?;
    let details = json!({"cron_expr": cron.to_string(), "enabled": input.enabled});
    audit(&state, &user.0, "schedule.update", "schedule", id, details).await;
    Ok(changed(
        format,
        &format!("/jobs/{job_id}"),
        Json(json!({"schedule_id": id, "upcoming": upcoming(&input.cron_expr, 5)})),
    ))
}

/// `POST /schedules/{id}/delete` (form) and `DELETE /api/schedules/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    user: AdminUser,
    format: Format,
    Path(id): Path<Uuid>,
) -> Result<Response, WebError> {
    tenant_schedule(&state, &user.0, id).await?;
    let job_id = manage::delete_schedule(&state.jobs, id)
        .await?
        .ok_or_else(|| WebError::not_found(format_args!("schedule {id}")))?;
    audit(
        &state,
        &user.0,
        "schedule.delete",
        "schedule",
        id,
        json!({}),
    )
    .await;
    Ok(changed(
        format,
        &format!("/jobs/{job_id}"),
        StatusCode::NO_CONTENT,
    ))
}

#[derive(Debug, Deserialize)]
pub struct PreviewQuery {
    expr: String,
}

/// `GET /api/cron-preview?expr=`: the next five times, or why the expression is invalid.
pub async fn cron_preview(Query(q): Query<PreviewQuery>) -> Result<Response, WebError> {
    let c = parse_cron(&q.expr).map_err(WebError::BadInput)?;
    Ok(
        Json(json!({"expr": c.to_string(), "upcoming": c.upcoming(chrono::Utc::now(), 5)}))
            .into_response(),
    )
}
