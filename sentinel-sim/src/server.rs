//! The HTTP server: routes, and the middleware that authenticates, charges RU,
//! throttles, injects faults and adds latency to every Graph request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use rand::Rng;
use tokio::net::TcpListener;

use crate::faults::Fault;
use crate::graph::{self, INNER_HEADER, graph_error};
use crate::state::{SimConfig, SimState};
use crate::throttle::{Bucket, Charge};
use crate::{control, entra};

/// The documented RU cost of a Graph request and the budget it draws on.
pub fn cost_of(route: &str, query: &str) -> (Bucket, u32) {
    let has = |k: &str| query.split('&').any(|p| p.split('=').next() == Some(k));
    let select_discount = if has("$select") || has("%24select") {
        1
    } else {
        0
    };
    match route {
        "/v1.0/users/delta" | "/v1.0/groups/delta" => (Bucket::Directory, 2 - select_discount),
        "/v1.0/sites/delta" | "/v1.0/drives/{drive_id}/root/delta" => {
            (Bucket::Sharepoint, if has("token") { 1 } else { 2 })
        }
        "/v1.0/sites/getAllSites"
        | "/v1.0/sites/oneDrive.getAllSites"
        | "/v1.0/sites/{site_id}/drives"
        | "/v1.0/sites/{site_id}/sites" => (Bucket::Sharepoint, 2),
        "/v1.0/sites/{site_id}/permissions"
        | "/v1.0/drives/{drive_id}/items/{item_id}/permissions" => (Bucket::Sharepoint, 5),
        "/v1.0/drives/{drive_id}/items/{item_id}"
            if query.contains("permissions") && has("$expand") =>
        {
            (Bucket::Sharepoint, 5)
        }
        "/v1.0/$batch" => (Bucket::Sharepoint, 0),
        _ => (Bucket::Sharepoint, 1),
    }
}

pub fn router(state: Arc<SimState>) -> Router {
    let graph_routes = Router::new()
        .route("/v1.0/users/delta", get(graph::users_delta))
        .route("/v1.0/groups/delta", get(graph::groups_delta))
        .route("/v1.0/users/{user_id}/drive", get(graph::user_drive))
        .route(
            "/v1.0/groups/{group_id}/sites/root",
            get(graph::group_root_site),
        )
        .route("/v1.0/sites/delta", get(graph::sites_delta))
        .route("/v1.0/sites/getAllSites", get(graph::get_all_sites))
        // Where getAllSites' own nextLink leads (site-getallsites, the response example).
        .route(
            "/v1.0/sites/oneDrive.getAllSites",
            get(graph::get_all_sites),
        )
        .route("/v1.0/sites/{site_id}", get(graph::get_site))
        .route("/v1.0/sites/{site_id}/drives", get(graph::site_drives))
        .route("/v1.0/sites/{site_id}/sites", get(graph::site_subsites))
        .route(
            "/v1.0/sites/{site_id}/permissions",
            get(graph::site_permissions),
        )
        .route("/v1.0/drives/{drive_id}", get(graph::get_drive))
        .route(
            "/v1.0/drives/{drive_id}/root/delta",
            get(graph::drive_delta),
        )
        .route(
            "/v1.0/drives/{drive_id}/items/{item_id}",
            get(graph::get_item),
        )
        .route(
            "/v1.0/drives/{drive_id}/items/{item_id}/permissions",
            get(graph::item_permissions),
        )
        .route("/v1.0/$batch", post(graph::batch))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            graph_middleware,
        ));
    let entra_routes = Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(entra::openid_configuration),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(entra::keys))
        .route("/{tenant}/oauth2/v2.0/token", post(entra::token))
        .route("/{tenant}/oauth2/v2.0/authorize", get(entra::authorize))
        .route(
            "/{tenant}/oauth2/v2.0/logout",
            get(crate::signin::logout).post(crate::signin::logout),
        );
    let control_routes = Router::new()
        .route("/_sim/manifest", get(control::get_manifest))
        .route("/_sim/dump/{kind}", get(control::dump))
        .route("/_sim/mutate", post(control::mutate))
        .route(
            "/_sim/activity",
            get(crate::activity::report).post(crate::activity::set),
        )
        .route("/_sim/expire-tokens", post(control::expire_tokens))
        .route("/_sim/lock-site", post(control::lock_site))
        .route(
            "/_sim/faults",
            get(control::get_faults).post(control::set_faults),
        )
        .route(
            "/_sim/stats",
            get(control::get_stats).delete(control::reset_stats),
        )
        .route("/_sim/auth", post(control::auth_control))
        .route("/_sim/requests", get(control::requests))
        .route("/_sim/tokens", get(control::issued_tokens))
        .route("/_sim/health", get(|| async { "ok" }));
    Router::new()
        .merge(graph_routes)
        .merge(entra_routes)
        .merge(control_routes)
        .fallback(unknown_segment)
        .with_state(state)
}

/// A path no route serves. Graph answers 400 `BadRequest` "Resource not found for the segment
/// '...'" (msgraph-sdk-javascript #1178: a `$batch` url keeping `/v1.0`; msgraph-sdk-python
/// #1015: an absolute url in `$batch`).
async fn unknown_segment(uri: axum::http::Uri) -> Response {
    const ROOTS: [&str; 5] = ["users", "groups", "sites", "drives", "$batch"];
    let mut segments = uri
        .path()
        .trim_start_matches("/v1.0")
        .split('/')
        .filter(|s| !s.is_empty());
    let first = segments.next().unwrap_or_default();
    let segment = if ROOTS.contains(&first) {
        uri.path().rsplit('/').next().unwrap_or_default()
    } else {
        first
    };
    graph_error(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        &format!("Resource not found for the segment '{segment}'."),
    )
}

async fn graph_middleware(
    State(state): State<Arc<SimState>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let inner = req.headers().contains_key(INNER_HEADER);
    crate::activity::catch_up(&state);
    let resp = handle_graph(&state, &route, inner, req, next).await;
    {
        let mut log = state.request_log.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() >= crate::state::REQUEST_LOG_LEN {
            log.pop_front();
        }
        log.push_back(crate::state::LoggedRequest {
            at_ms: state.real_elapsed_ms(),
            route: route.clone(),
            status: resp.status().as_u16(),
        });
    }
    let mut stats = state.lock_stats();
    stats.requests += 1;
    *stats
        .by_endpoint
        .entry(route)
        .or_default()
        .entry(resp.status().as_u16())
        .or_default() += 1;
    resp
}

async fn handle_graph(
    state: &SimState,
    route: &str,
    inner: bool,
    req: Request,
    next: Next,
) -> Response {
    let app = match entra::validate_graph_token(state, req.headers()) {
        Ok(app) => app,
        Err((status, code, msg)) => return graph_error(status, code, &msg),
    };
    let (bucket, cost) = cost_of(route, req.uri().query().unwrap_or(""));
    let mut rate_headers = None;
    if cost > 0 {
        let budget = match bucket {
            Bucket::Sharepoint => state.config.ru_per_minute,
            Bucket::Directory => state.directory_budget(),
            Bucket::SharepointDay => state.daily_budget(),
        };
        let now = state.sim_elapsed();
        let (charge, in_minute) = {
            let mut throttle = state.throttle.lock().unwrap_or_else(|e| e.into_inner());
            let minute = throttle.charge(&app, bucket, cost, budget, now);
            if bucket == Bucket::Sharepoint {
                // The day's budget holds too: the stricter answer wins.
                let day =
                    throttle.charge(&app, Bucket::SharepointDay, cost, state.daily_budget(), now);
                let in_minute = throttle.window_sum(&app, Bucket::Sharepoint);
                (crate::throttle::stricter(minute, day), Some(in_minute))
            } else {
                (minute, None)
            }
        };
        {
            let mut stats = state.lock_stats();
            if let Some(in_minute) = in_minute {
                stats.sharepoint_peak_minute_ru = stats.sharepoint_peak_minute_ru.max(in_minute);
                stats.sharepoint_ru_per_minute = budget;
            }
            stats.ru_spent += cost as u64;
            *stats.ru_by_endpoint.entry(route.to_string()).or_default() += cost as u64;
        }
        match charge {
            Charge::Throttled { wait_secs, limit } => {
                state.lock_stats().throttled += 1;
                let mut r = graph_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "activityLimitReached",
                    "The request has been throttled: the application exceeded its resource unit budget.",
                );
                set_header(&mut r, "retry-after", state.retry_after(wait_secs));
                set_header(&mut r, "ratelimit-limit", limit.to_string());
                set_header(&mut r, "ratelimit-remaining", "0".to_string());
                set_header(
                    &mut r,
                    "ratelimit-reset",
                    state.reset_after(wait_secs).to_string(),
                );
                return r;
            }
            Charge::Blocked { wait_secs } => {
                state.lock_stats().throttled += 1;
                let mut r = graph_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "serviceNotAvailable",
                    "The application kept exceeding its limits and is temporarily blocked.",
                );
                set_header(&mut r, "retry-after", state.retry_after(wait_secs));
                return r;
            }
            Charge::Allowed { headers } => rate_headers = headers,
        }
    }
    let retry_after =
        crate::state::retry_after_value(state.lock_faults().retry_after_secs.unwrap_or(1.0));
    // Graph throttles each request inside a `$batch` on its own: status faults go to the
    // inner requests, transport faults (below) to the envelope.
    let envelope = route == "/v1.0/$batch";
    if !envelope && state.fire(Fault::TooMany) {
        return too_many_requests(retry_after.clone());
    }
    if !envelope && state.fire(Fault::Unavailable) {
        let mut r = graph_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "The service is temporarily unavailable (injected).",
        );
        set_header(&mut r, "retry-after", retry_after);
        return r;
    }
    if !envelope && state.fire(Fault::Internal) {
        return graph_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "generalException",
            "An unexpected error occurred (injected).",
        );
    }
    if !inner {
        let (latency, jitter) = (state.config.latency_ms, state.config.jitter_ms);
        let mut delay = latency;
        if jitter > 0 {
            delay += state.lock_rng().random_range(0..=jitter);
        }
        if state.fire(Fault::Slow) {
            delay += state.lock_faults().slow_ms.unwrap_or(2_000);
        }
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
    }
    let reset = !inner && state.fire(Fault::Reset);
    let malformed = !inner && !reset && state.fire(Fault::Malformed);
    let mut resp = next.run(req).await;
    if let Some((limit, remaining, reset_secs)) = rate_headers {
        set_header(&mut resp, "ratelimit-limit", limit.to_string());
        set_header(&mut resp, "ratelimit-remaining", remaining.to_string());
        set_header(
            &mut resp,
            "ratelimit-reset",
            state.reset_after(reset_secs).to_string(),
        );
    }
    if reset {
        // Headers go out, then the body fails: the client sees the connection drop mid-response.
        let (parts, _) = resp.into_parts();
        let failing = futures::stream::once(async {
            Err::<bytes::Bytes, std::io::Error>(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected reset",
            ))
        });
        return Response::from_parts(parts, Body::from_stream(failing));
    }
    if malformed {
        let (mut parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        let cut = bytes.slice(0..bytes.len() / 2);
        parts.headers.remove(http::header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::from(cut));
    }
    resp
}

/// An injected 429 as the throttling page's sample prints it (learn.microsoft.com/graph/throttling
/// "Sample response"): `TooManyRequests`, an inner error with the status as a string, and
/// `Retry-After` in seconds with a fraction.
fn too_many_requests(retry_after: String) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let body = serde_json::json!({"error": {
        "code": "TooManyRequests",
        "innerError": {
            "code": "429",
            "date": crate::json::iso(crate::entra::unix_now() as i64),
            "message": "Please retry after",
            "request-id": request_id,
            "status": "429",
        },
        "message": "Please retry again later.",
    }});
    let mut r = axum::response::IntoResponse::into_response((
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(body),
    ));
    set_header(&mut r, "retry-after", retry_after);
    r
}

fn set_header(r: &mut Response, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert(name, v);
    }
}

/// A running simulator: its address and state. Dropping it does not stop the server;
/// call [`RunningSim::shutdown`].
#[derive(Debug)]
pub struct RunningSim {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state: tests read and change the tenant through it.
    pub state: Arc<SimState>,
    server: Serving,
}

impl RunningSim {
    /// `http://127.0.0.1:port`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(self) {
        self.server.stop().await;
    }
}

/// A simulator server's task, and how to stop it (one tenant's or a fleet's).
#[derive(Debug)]
pub(crate) struct Serving {
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Serving {
    /// Stops serving (requests under way finish) and waits for the task to end.
    pub(crate) async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}

/// Builds the tenant and serves it on `addr` (port 0 picks a free one).
pub async fn spawn(config: SimConfig, addr: SocketAddr) -> std::io::Result<RunningSim> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(SimState::new(config));
    let app = router(state.clone());
    let _ = state.router.set(app.clone());
    Ok(RunningSim {
        addr,
        state,
        server: serve_app(listener, app),
    })
}

/// Serves `app` on `listener` until the returned sender fires (or is dropped).
pub(crate) fn serve_app(listener: TcpListener, app: Router) -> Serving {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        // Other spellings Graph accepts become their canonical routes before routing.
        let app = tower::Layer::layer(
            &tower::util::MapRequestLayer::new(crate::aliases::canonical_request),
            app,
        );
        let serve = axum::serve(
            listener,
            axum::ServiceExt::<Request>::into_make_service(app),
        )
        .with_graceful_shutdown(async {
            let _ = rx.await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "simulator server failed");
        }
    });
    Serving { shutdown: tx, task }
}
