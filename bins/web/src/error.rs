//! One error type for every handler. A `WebError` knows its status and a message that is safe
//! to show; the cause (a database, worker or Graph error) is logged, never sent. The error is
//! rendered in the caller's [`Format`] by [`render_errors`], so handlers never ask which one.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use sentinel_graph::GraphError;
use serde_json::json;

use crate::format::Format;
use crate::render::escape;
use crate::worker_client::WorkerError;

type Source = Box<dyn std::error::Error + Send + Sync>;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadInput(String),
    /// What the request would create is there already.
    #[error("{0}")]
    Conflict(String),
    #[error("sign in first")]
    SignInFirst,
    /// Entra refused the sign-in, or its answer did not check out.
    #[error("{0}")]
    SignInFailed(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("request body over 1 MiB")]
    TooLarge,
    /// The database (or the session store in it) did not answer.
    #[error("the database did not answer")]
    Database(#[source] Source),
    /// A query ran past the web's statement timeout and was cancelled.
    #[error("the database took too long")]
    TooSlow(#[source] Source),
    #[error("the worker's control API failed")]
    Worker(#[source] WorkerError),
    #[error("the Graph call failed")]
    Graph(#[source] GraphError),
    /// The live panel's share of the Graph budget (the user's, or everyone's) is spent.
    #[error("{whose} share of the live Graph budget is spent")]
    LiveBudgetSpent {
        whose: &'static str,
        retry_after_secs: u64,
    },
    #[error("the page could not be rendered")]
    Template(#[source] tera::Error),
    #[error("the CSV could not be written")]
    Csv(#[source] csv::Error),
}

impl From<sentinel_store::StoreError> for WebError {
    fn from(e: sentinel_store::StoreError) -> WebError {
        if e.is_timeout() {
            return WebError::TooSlow(Box::new(e));
        }
        if e.is_bad_value() {
            tracing::info!(error = %e, "the database refused a value of the request");
            return WebError::BadInput(BAD_VALUE.into());
        }
        WebError::Database(Box::new(e))
    }
}

/// What a caller is told when Postgres refuses one of its values.
const BAD_VALUE: &str = "a value in this request cannot be stored or searched for (e.g. it holds a NUL character or a number out of range)";

impl From<sentinel_sched::SchedError> for WebError {
    fn from(e: sentinel_sched::SchedError) -> WebError {
        if e.is_timeout() {
            return WebError::TooSlow(Box::new(e));
        }
        if e.is_bad_value() {
            tracing::info!(error = %e, "the database refused a value of the request");
            return WebError::BadInput(BAD_VALUE.into());
        }
        WebError::Database(Box::new(e))
    }
}

impl From<tower_sessions::session::Error> for WebError {
    fn from(e: tower_sessions::session::Error) -> WebError {
        WebError::Database(Box::new(e))
    }
}

impl From<GraphError> for WebError {
    fn from(e: GraphError) -> WebError {
        WebError::Graph(e)
    }
}

impl From<WorkerError> for WebError {
    fn from(e: WorkerError) -> WebError {
        WebError::Worker(e)
    }
}

impl From<tera::Error> for WebError {
    fn from(e: tera::Error) -> WebError {
        WebError::Template(e)
    }
}

/// What a caller is told: a status and a message without internals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicError {
    pub status: StatusCode,
    pub message: String,
    /// `graph` when the failure is Graph's (the live panel says so).
    pub source: Option<&'static str>,
}

impl WebError {
    pub fn not_found(what: impl std::fmt::Display) -> WebError {
        WebError::NotFound(format!("no {what}"))
    }

    /// The status and the message a caller may see.
    pub fn public(&self) -> PublicError {
        let (status, message, source) = match self {
            WebError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone(), None),
            WebError::BadInput(m) => (StatusCode::BAD_REQUEST, m.clone(), None),
            WebError::Conflict(m) => (StatusCode::CONFLICT, m.clone(), None),
            WebError::SignInFirst => (StatusCode::UNAUTHORIZED, self.to_string(), None),
            WebError::SignInFailed(m) => (StatusCode::UNAUTHORIZED, m.clone(), None),
            WebError::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone(), None),
            WebError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, self.to_string(), None),
            WebError::Database(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database did not answer; try again shortly (the cause is in the web's log)"
                    .to_string(),
                None,
            ),
            WebError::TooSlow(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database took too long to answer and the query was stopped; narrow the \
                 filter or try again shortly"
                    .to_string(),
                None,
            ),
            WebError::Worker(e) => worker_public(e),
            WebError::LiveBudgetSpent {
                whose,
                retry_after_secs,
            } => (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "{whose} share of the app's Graph budget for live look-ups is spent; try again \
                     in {retry_after_secs} s (scans keep theirs, and the cached view is current \
                     as of the last scan)"
                ),
                Some("graph"),
            ),
            WebError::Graph(e) => {
                let (status, message) = graph_public(e);
                (status, message, Some("graph"))
            }
            WebError::Template(_) | WebError::Csv(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{self} (the cause is in the web's log)"),
                None,
            ),
        };
        PublicError {
            status,
            message,
            source,
        }
    }
}

/// The worker's own refusals (bad request, no such job, paused) are meant for the user; its
/// other failures (token refused, database down, unreachable) are the operator's to read.
fn worker_public(e: &WorkerError) -> (StatusCode, String, Option<&'static str>) {
    match e.status.and_then(|s| StatusCode::from_u16(s).ok()) {
        Some(s @ (StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND | StatusCode::CONFLICT)) => {
            (s, e.message.clone(), Some("worker"))
        }
        Some(s) => (
            StatusCode::BAD_GATEWAY,
            format!(
                "the worker answered {}; the cause is in the logs",
                s.as_u16()
            ),
            Some("worker"),
        ),
        None => (
            StatusCode::BAD_GATEWAY,
            "the worker is unreachable; the cause is in the web's log".to_string(),
            Some("worker"),
        ),
    }
}

fn graph_public(e: &GraphError) -> (StatusCode, String) {
    match e {
        // Our own checks of an id, before any call: the message says what to fix.
        GraphError::InvalidArgument(_) => (StatusCode::BAD_REQUEST, e.to_string()),
        GraphError::NotFound { .. } => (
            StatusCode::NOT_FOUND,
            "Graph did not answer: it has no such object (deleted, or never there)".to_string(),
        ),
        GraphError::Throttled { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "Graph did not answer: it is throttling the app; try again in a minute".to_string(),
        ),
        GraphError::Forbidden { .. } => (
            StatusCode::BAD_GATEWAY,
            "Graph did not answer: it refused the app access (a locked site, or a missing permission)"
                .to_string(),
        ),
        _ => (
            StatusCode::BAD_GATEWAY,
            "Graph did not answer; the cause is in the web's log".to_string(),
        ),
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let public = self.public();
        if public.status.is_server_error() || public.status == StatusCode::TOO_MANY_REQUESTS {
            tracing::error!(error = %self, cause = ?std::error::Error::source(&self), "request failed");
        }
        // The body is written by `render_errors`, which knows the caller's format; this
        // plain text is what a router without it would send.
        let mut resp = (public.status, public.message.clone()).into_response();
        resp.extensions_mut().insert(public);
        resp
    }
}

/// Renders every error response in the format the caller reads: `{"error": ...}` for the API,
/// a small page for the browser (CSV downloads included).
pub async fn render_errors(req: Request, next: Next) -> Response {
    let format = Format::of(req.uri());
    let mut resp = next.run(req).await;
    match resp.extensions_mut().remove::<PublicError>() {
        Some(e) => e.render(format),
        None => resp,
    }
}

impl PublicError {
    pub fn render(&self, format: Format) -> Response {
        if format == Format::Json {
            let mut body = json!({"error": self.message});
            if let Some(s) = self.source {
                body["source"] = json!(s);
            }
            return (self.status, axum::Json(body)).into_response();
        }
        let body = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{code} - Princeton Sentinel</title>\
             <link rel=\"stylesheet\" href=\"/static/app.css\"></head><body class=\"bg-slate-50 text-slate-900\">\
             <main class=\"mx-auto max-w-2xl p-8\"><h1 class=\"text-xl font-semibold\">{code}</h1>\
             <p id=\"error-message\" class=\"mt-4 rounded border border-red-200 bg-red-50 p-4 text-red-800\">{msg}</p>\
             <p class=\"mt-6\"><a class=\"text-sky-700 underline\" href=\"/analytics\">Back to the dashboard</a></p></main></body></html>",
            code = self.status,
            msg = escape(&self.message)
        );
        (self.status, Html(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_stay_in_the_log() {
        let db = WebError::Database("password authentication failed for user \"sentinel\"".into());
        let p = db.public();
        assert_eq!(p.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!p.message.contains("password"), "{}", p.message);
        let worker = WebError::Worker(WorkerError {
            status: Some(401),
            message: "InvalidSignature: kid abc not in JWKS".into(),
        });
        assert!(!worker.public().message.contains("JWKS"));
        let graph = WebError::Graph(GraphError::Api {
            status: 500,
            code: "generalException".into(),
            message: "internal detail".into(),
        });
        assert!(!graph.public().message.contains("internal detail"));
        assert_eq!(graph.public().source, Some("graph"));
    }

    #[test]
    fn the_workers_refusals_are_passed_on() {
        let paused = WebError::Worker(WorkerError {
            status: Some(409),
            message: "job is paused: resume it first".into(),
        });
        let p = paused.public();
        assert_eq!(p.status, StatusCode::CONFLICT);
        assert_eq!(p.message, "job is paused: resume it first");
    }
}
