//! `/admin`: the worker's health and status from its control API, run-now, pause and resume
//! (the worker does them and audits them with the signed-in user), every tenant with its
//! consent and the link its administrator consents by, enabling and disabling tenants (audited
//! here), and the audit trail.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use sentinel_store::{AuditRecord, TenantRecord};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AppState;
use crate::auth::AdminUser;
use crate::error::WebError;
use crate::format::Format;

/// Audit events shown on the page.
const AUDIT_SHOWN: i64 = 25;

/// Admins only: the audit trail, the job configurations and the worker's internal address are
/// not a reader's to see.
pub async fn admin(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    format: Format,
) -> Result<Response, WebError> {
    let tenant = user.tenant()?;
    let (health, status, audit, tenants) = tokio::join!(
        state.worker.health(),
        state.worker.status(),
        state.store.recent_audit_events(tenant, AUDIT_SHOWN),
        state.store.tenants()
    );
    let audit = audit?;
    // Admins (of the home tenant, where they sign in) manage every tenant.
    let tenants: Vec<TenantRow> = tenants?
        .into_iter()
        .map(|t| TenantRow {
            consent_url: state.admin_consent.url(&t.tenant_id),
            tenant: t,
        })
        .collect();
    // The worker reports every tenant's jobs: this page shows the tenant looked at.
    let status = status.map(|mut s| {
        if let Some(jobs) = s["jobs"].as_array_mut() {
            jobs.retain(|j| j["tenant_id"] == tenant);
        }
        s
    });
    // The worker being down is what this page is for: it says so, and the log has the cause.
    let said = |e: crate::worker_client::WorkerError| {
        let e = WebError::Worker(e);
        tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "admin page");
        e.public().message
    };
    let health = health.map_err(said);
    let status = status.map_err(said);
    if format == Format::Json {
        return Ok(Json(json!({
            "worker_health": health.as_ref().ok(), "worker_health_error": health.as_ref().err(),
            "worker_status": status.as_ref().ok(), "worker_status_error": status.as_ref().err(),
            "audit": audit, "tenants": tenants,
        }))
        .into_response());
    }
    let page = AdminPage {
        nav: "admin",
        health: health.as_ref().ok(),
        health_error: health.as_ref().err(),
        jobs: status.as_ref().ok().map(|s| &s["jobs"]),
        status_error: status.as_ref().err(),
        audit: &audit,
        tenants: &tenants,
    };
    state.views.page("admin.html", Some(&user), &page)
}

/// A tenant with the link its administrator consents by.
#[derive(Serialize)]
struct TenantRow {
    #[serde(flatten)]
    tenant: TenantRecord,
    consent_url: String,
}

#[derive(Serialize)]
struct AdminPage<'a> {
    nav: &'static str,
    /// The worker's `/health` answer, or why there is none.
    health: Option<&'a Value>,
    health_error: Option<&'a String>,
    /// The jobs as the worker's status reports them (absent, not null: the template
    /// iterates over it with a default).
    #[serde(skip_serializing_if = "Option::is_none")]
    jobs: Option<&'a Value>,
    status_error: Option<&'a String>,
    audit: &'a [AuditRecord],
    tenants: &'a [TenantRow],
}

fn op_name(op: &str) -> Option<&'static str> {
    match op {
        "run-now" => Some("run-now"),
        "pause" => Some("pause"),
        "resume" => Some("resume"),
        _ => None,
    }
}

/// `run-now`, `pause` or `resume`: the page goes back to `/admin`, the API gets the worker's answer.
pub async fn operate(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    format: Format,
    Path((job_id, op)): Path<(Uuid, String)>,
) -> Result<Response, WebError> {
    let op = op_name(&op).ok_or_else(|| {
        WebError::NotFound(format!("no operation '{op}': use run-now, pause or resume"))
    })?;
    super::jobs::tenant_job(&state, &user, job_id).await?;
    let answer = state.worker.operate(op, job_id, &user).await?;
    Ok(match format {
        Format::Html => Redirect::to("/admin").into_response(),
        _ => Json(answer).into_response(),
    })
}

/// `enable` or `disable` a tenant: a disabled tenant's jobs are not run (its data stays
/// readable). The page goes back to `/admin`, the API gets the tenant's new state.
pub async fn tenant_op(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    format: Format,
    Path((tenant, op)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let enabled = match op.as_str() {
        "enable" => true,
        "disable" => false,
        _ => {
            return Err(WebError::NotFound(format!(
                "no operation '{op}': use enable or disable"
            )));
        }
    };
    if !state.store.set_tenant_enabled(&tenant, enabled).await? {
        return Err(WebError::not_found(format_args!("tenant '{tenant}'")));
    }
    let mut event = user.audit(&format!("tenant.{op}"), "tenant", &tenant, json!({}));
    event.tenant_id = Some(tenant.clone());
    if let Err(e) = state.store.audit(&event).await {
        tracing::warn!(error = %e, "could not write audit event");
    }
    Ok(match format {
        Format::Html => Redirect::to("/admin").into_response(),
        _ => Json(json!({"tenant_id": tenant, "enabled": enabled})).into_response(),
    })
}
