//! `/people`: every person ranked by what they can reach (items readable and writable, libraries,
//! sites), filtered by kind and disabled accounts; `/people/{id}`: what one person reaches and
//! through what, grouped by site.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use sentinel_store::{PeopleQuery, PersonDetail, PersonKind, PersonReach, ReachedItem, SiteReach};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ListQuery, Table, to_values};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::WebError;
use crate::format::{Format, is_on};
use crate::render::csv_response;
use crate::tenancy::CurrentTenant;

const PEOPLE_COLUMNS: &[&str] = &[
    "person_id",
    "kind",
    "display_name",
    "user_principal_name",
    "enabled",
    "items_read",
    "items_write",
    "libraries",
    "sites",
];

const REACHED_COLUMNS: &[&str] = &[
    "site_name",
    "drive_name",
    "path",
    "name",
    "is_folder",
    "items",
    "can_read",
    "can_write",
    "routes",
    "site_id",
    "drive_id",
    "item_id",
];

/// The people filters; the page, search and size come from [`ListQuery`] beside it.
#[derive(Debug, Default, Deserialize)]
pub struct PeopleParams {
    /// `member`, `guest` or `external`.
    kind: Option<String>,
    /// A checkbox: only disabled accounts.
    disabled: Option<String>,
}

impl PeopleParams {
    fn query(&self) -> Result<PeopleQuery, WebError> {
        Ok(PeopleQuery {
            kind: self
                .kind
                .as_deref()
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::parse)
                .transpose()
                .map_err(WebError::BadInput)?,
            disabled: is_on(self.disabled.as_deref()).then_some(true),
        })
    }
}

pub async fn people(
    State(state): State<AppState>,
    user: CurrentUser,
    tenant: CurrentTenant,
    format: Format,
    uri: Uri,
    Query(params): Query<PeopleParams>,
    Query(list): Query<ListQuery>,
) -> Result<Response, WebError> {
    let query = params.query()?;
    let req = list.request(format);
    let people = state.store.people_reach(tenant.id(), &query, &req).await?;
    match format {
        Format::Csv => csv_response("people", PEOPLE_COLUMNS, &to_values(&people.rows)),
        Format::Json => Ok(Json(json!({"people": people})).into_response()),
        Format::Html => {
            let page = PeoplePage {
                nav: "people",
                table: Table::new(&uri, &req, people.rows.len(), people.total),
                kind: query.kind,
                kinds: PersonKind::ALL.iter().map(|k| k.as_str()).collect(),
                disabled: query.disabled == Some(true),
                people: &people.rows,
            };
            state.views.page("people.html", Some(&user), &page)
        }
    }
}

pub async fn person(
    State(state): State<AppState>,
    user: CurrentUser,
    tenant: CurrentTenant,
    format: Format,
    uri: Uri,
    Path(person_id): Path<String>,
    Query(list): Query<ListQuery>,
) -> Result<Response, WebError> {
    let req = list.request(format);
    let detail = state
        .store
        .person_reach(tenant.id(), &person_id, &req)
        .await?
        .ok_or_else(|| {
            WebError::NotFound(format!(
                "no person '{person_id}': neither a directory user nor an invited address"
            ))
        })?;
    match format {
        Format::Csv => csv_response(
            "person_reach",
            REACHED_COLUMNS,
            &to_values(&detail.items.rows),
        ),
        Format::Json => Ok(Json(json!(detail)).into_response()),
        Format::Html => {
            let PersonDetail {
                person,
                sites,
                more_sites,
                items,
            } = &detail;
            let page = PersonPage {
                nav: "people",
                table: Table::new(&uri, &req, items.rows.len(), items.total),
                person,
                sites,
                more_sites: *more_sites,
                items: &items.rows,
            };
            state.views.page("person.html", Some(&user), &page)
        }
    }
}

#[derive(Serialize)]
struct PeoplePage<'a> {
    nav: &'static str,
    #[serde(flatten)]
    table: Table,
    kind: Option<PersonKind>,
    kinds: Vec<&'static str>,
    disabled: bool,
    people: &'a [PersonReach],
}

#[derive(Serialize)]
struct PersonPage<'a> {
    nav: &'static str,
    #[serde(flatten)]
    table: Table,
    person: &'a PersonReach,
    sites: &'a [SiteReach],
    more_sites: i64,
    items: &'a [ReachedItem],
}
