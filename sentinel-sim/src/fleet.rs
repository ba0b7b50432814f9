//! Many simulated tenants behind one address, as Microsoft serves every tenant from one Graph
//! root and one Entra authority: an Entra request names its tenant in its path
//! (`/{tenant}/oauth2/v2.0/token`, by id or domain), a Graph request carries it in its access
//! token (the `tid` claim), so the same app registration reaches each tenant that consented to
//! it with that tenant's token. Each tenant keeps its own state, clock-independent budgets and
//! request log; a token of one tenant never reads another (each tenant's own router checks
//! `tid` too). Control requests address a tenant as `/_fleet/{tenant}/_sim/...` (`/_sim/...`
//! alone reaches the first tenant, so a fleet of one answers as a single simulator does), and
//! `GET /_fleet` lists the tenants.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::server::{Serving, router, serve_app};
use crate::{SimConfig, SimState};

/// A fleet of simulated tenants on one address (see the module's documentation).
#[derive(Debug)]
pub struct RunningFleet {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Each tenant's state, in the order of the configurations given.
    pub tenants: Vec<Arc<SimState>>,
    server: Serving,
}

impl RunningFleet {
    /// `http://127.0.0.1:port`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(self) {
        self.server.stop().await;
    }
}

struct Member {
    tenant_id: String,
    domain: String,
    app: Router,
}

/// Builds each tenant and serves them all on `addr` (port 0 picks a free one). Two
/// configurations that generate the same tenant (the same seed) are refused.
pub async fn spawn_fleet(
    configs: Vec<SimConfig>,
    addr: SocketAddr,
) -> std::io::Result<RunningFleet> {
    let mut members = Vec::new();
    let mut tenants = Vec::new();
    for config in configs {
        let state = Arc::new(SimState::new(config));
        let app = router(state.clone());
        let _ = state.router.set(app.clone());
        let (tenant_id, domain) = {
            let t = state.read_tenant();
            (t.tenant_id.clone(), t.domain.clone())
        };
        if members.iter().any(|m: &Member| m.tenant_id == tenant_id) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "two tenants of the fleet are the same tenant ({tenant_id}): give each its own seed"
                ),
            ));
        }
        members.push(Member {
            tenant_id,
            domain,
            app,
        });
        tenants.push(state);
    }
    if members.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a fleet needs at least one tenant",
        ));
    }
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .fallback(dispatch)
        .with_state(Arc::new(members));
    Ok(RunningFleet {
        addr,
        tenants,
        server: serve_app(listener, app),
    })
}

/// The tenant a Graph access token was issued for: its `tid` claim, read without checking the
/// signature (the tenant's own router checks the token in full).
fn token_tenant(req: &Request) -> Option<String> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["tid"].as_str().map(str::to_string)
}

/// `req` with its path replaced by `path` (the query kept).
fn with_path(mut req: Request, path: &str) -> Result<Request, Response> {
    let target = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let uri: Uri = target
        .parse()
        .map_err(|_| (StatusCode::BAD_REQUEST, "bad path").into_response())?;
    *req.uri_mut() = uri;
    Ok(req)
}

async fn dispatch(State(members): State<Arc<Vec<Member>>>, req: Request) -> Response {
    let find = |tenant: &str| {
        members
            .iter()
            .find(|m| m.tenant_id == tenant || m.domain.eq_ignore_ascii_case(tenant))
    };
    let path = req.uri().path().to_string();
    if path == "/_fleet" || path == "/_fleet/" {
        let list: Vec<serde_json::Value> = members
            .iter()
            .map(|m| serde_json::json!({"tenantId": m.tenant_id, "domain": m.domain}))
            .collect();
        return axum::Json(serde_json::json!({ "tenants": list })).into_response();
    }
    if path == "/_sim/health" {
        return "ok".into_response();
    }
    let (member, req) = if let Some(rest) = path.strip_prefix("/_fleet/") {
        let (tenant, inner) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(m) = find(tenant) else {
            return (
                StatusCode::NOT_FOUND,
                format!("no tenant {tenant} in this fleet"),
            )
                .into_response();
        };
        match with_path(req, &format!("/{inner}")) {
            Ok(r) => (m, r),
            Err(e) => return e,
        }
    } else if path.starts_with("/v1.0/") {
        // Graph: the token says whose tenant. Without one (or with a stranger's), the first
        // tenant answers, and refuses it with Graph's own 401.
        let tenant = token_tenant(&req);
        (tenant.as_deref().and_then(find).unwrap_or(&members[0]), req)
    } else {
        // Entra: `/{tenant}/...`. An unknown tenant is answered by the first tenant's
        // authority, which refuses it as Entra does (AADSTS90002).
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        (find(first).unwrap_or(&members[0]), req)
    };
    match member.app.clone().oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}
