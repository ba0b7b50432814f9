//! `/changes`: exposure first seen, or removed, since a chosen time: new anyone and organisation
//! links, new guest and external grants, new Everyone grants, items whose unique permissions
//! were broken (they stopped inheriting), and those that went away.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use sentinel_store::{ChangesQuery, ExposureChange, ExposureEvent, ExposureKind, PageRequest};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Pager, pager, to_values};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::WebError;
use crate::format::Format;
use crate::render::csv_response;
use crate::tenancy::CurrentTenant;

const CHANGE_COLUMNS: &[&str] = &[
    "change",
    "kind",
    "at",
    "first_seen_at",
    "removed_at",
    "open_days",
    "site_name",
    "item_path",
    "item_name",
    "items",
    "roles",
    "link_type",
    "grantee",
    "grantee_email",
    "drive_id",
    "item_id",
    "permission_id",
    "site_id",
];

/// How far back the page looks when not told.
const DEFAULT_DAYS: i64 = 7;

#[derive(Debug, Default, Deserialize)]
pub struct ChangesParams {
    /// A date (`2026-11-01`, midnight UTC) or an RFC 3339 time.
    since: Option<String>,
    /// Or: the last N days.
    days: Option<String>,
    kind: Option<String>,
    change: Option<String>,
    page: Option<u32>,
}

fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl ChangesParams {
    fn since(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, WebError> {
        if let Some(s) = given(&self.since) {
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Ok(t.with_timezone(&Utc));
            }
            return NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
                .ok_or_else(|| {
                    WebError::BadInput(format!(
                        "since must be a date (2026-11-01) or an RFC 3339 time, got '{s}'"
                    ))
                });
        }
        let days = match given(&self.days) {
            None => DEFAULT_DAYS,
            Some(d) => d
                .parse::<i64>()
                .ok()
                .filter(|d| (1..=3650).contains(d))
                .ok_or_else(|| {
                    WebError::BadInput(format!(
                        "days must be a whole number from 1 to 3650, got '{d}'"
                    ))
                })?,
        };
        Ok(now - Duration::days(days))
    }

    fn query(&self, now: DateTime<Utc>) -> Result<ChangesQuery, WebError> {
        Ok(ChangesQuery {
            since: self.since(now)?,
            kind: given(&self.kind)
                .map(str::parse)
                .transpose()
                .map_err(WebError::BadInput)?,
            change: given(&self.change)
                .map(str::parse)
                .transpose()
                .map_err(WebError::BadInput)?,
        })
    }
}

pub async fn changes(
    State(state): State<AppState>,
    user: CurrentUser,
    tenant: CurrentTenant,
    format: Format,
    uri: Uri,
    Query(params): Query<ChangesParams>,
) -> Result<Response, WebError> {
    let now = state.store.now().await?;
    let query = params.query(now)?;
    let csv = format == Format::Csv;
    let req = PageRequest {
        page: if csv { 0 } else { params.page.unwrap_or(0) },
        per_page: if csv { 10_000 } else { 50 },
        ..PageRequest::default()
    };
    let events = state
        .store
        .exposure_changes(tenant.id(), &query, &req)
        .await?;
    if csv {
        return csv_response("exposure_changes", CHANGE_COLUMNS, &to_values(&events.rows));
    }
    let first_scan_at = state.store.first_permission_seen_at(tenant.id()).await?;
    if format == Format::Json {
        return Ok(Json(json!({
            "since": query.since,
            "kind": query.kind,
            "change": query.change,
            "first_scan_at": first_scan_at,
            "changes": events,
        }))
        .into_response());
    }
    let page = ChangesPage {
        nav: "changes",
        since: query.since,
        since_date: query.since.format("%Y-%m-%d").to_string(),
        kind: query.kind,
        change: query.change,
        kinds: ExposureKind::ALL
            .iter()
            .map(|k| (k.as_str(), label(*k)))
            .collect(),
        first_scan_at,
        pager: pager(
            &uri,
            req.page,
            req.per_page,
            events.rows.len(),
            events.total,
        ),
        events: &events.rows,
    };
    state.views.page("changes.html", Some(&user), &page)
}

fn label(kind: ExposureKind) -> &'static str {
    match kind {
        ExposureKind::AnyoneLink => "Anyone link",
        ExposureKind::OrganizationLink => "Organization link",
        ExposureKind::ExternalGrant => "Guest or external grant",
        ExposureKind::Everyone => "\"Everyone\" grant",
        ExposureKind::EveryoneExceptExternal => "\"Everyone except external users\" grant",
        ExposureKind::UniquePermissions => "Unique permissions (inheritance broken)",
    }
}

#[derive(Serialize)]
struct ChangesPage<'a> {
    nav: &'static str,
    since: DateTime<Utc>,
    /// For the date input.
    since_date: String,
    kind: Option<ExposureKind>,
    change: Option<ExposureChange>,
    /// (word, label) of every kind, for the filter and the table.
    kinds: Vec<(&'static str, &'static str)>,
    /// Exposure older than the first scan shows as first seen then; the page says so.
    first_scan_at: Option<DateTime<Utc>>,
    pager: Pager,
    events: &'a [ExposureEvent],
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(since: Option<&str>, days: Option<&str>) -> ChangesParams {
        ChangesParams {
            since: since.map(String::from),
            days: days.map(String::from),
            ..ChangesParams::default()
        }
    }

    #[test]
    fn since_is_a_date_a_time_or_a_number_of_days_and_says_what_it_wants() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let at = |p: ChangesParams| p.since(now).map(|t| t.to_rfc3339());
        assert_eq!(
            at(params(None, None)).ok().as_deref(),
            Some("2026-11-24T10:00:00+00:00")
        );
        assert_eq!(
            at(params(None, Some("1"))).ok().as_deref(),
            Some("2026-11-30T10:00:00+00:00")
        );
        assert_eq!(
            at(params(Some("2026-11-01"), None)).ok().as_deref(),
            Some("2026-11-01T00:00:00+00:00")
        );
        assert_eq!(
            at(params(Some("2026-11-01T08:30:00+01:00"), None))
                .ok()
                .as_deref(),
            Some("2026-11-01T07:30:00+00:00")
        );
        for bad in [
            params(Some("yesterday"), None),
            params(None, Some("0")),
            params(None, Some("x")),
        ] {
            assert!(matches!(bad.since(now), Err(WebError::BadInput(_))));
        }
    }
}
