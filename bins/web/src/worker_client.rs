//! The worker's internal control API, called with an app-only token for our own API
//! (`api://{client id}/.default`, role `Sentinel.Worker.Invoke`). The signed-in user is passed
//! along so the worker's audit event names them.

use std::time::Duration;

use secrecy::ExposeSecret;
use sentinel_graph::GraphConfig;
use sentinel_graph::identity::AppToken;
use serde_json::Value;
use url::Url;
use uuid::Uuid;

use crate::auth::CurrentUser;

/// What the web asks of a worker. [`WorkerClient`] calls the real control API; tests put a
/// fake behind it.
#[async_trait::async_trait]
pub trait Worker: std::fmt::Debug + Send + Sync {
    /// `/health` (no token needed).
    async fn health(&self) -> Result<Value, WorkerError>;
    /// Every job, its schedules and its running run.
    async fn status(&self) -> Result<Value, WorkerError>;
    /// `run-now`, `pause` or `resume`, on behalf of `user`.
    async fn operate(
        &self,
        op: &str,
        job_id: Uuid,
        user: &CurrentUser,
    ) -> Result<Value, WorkerError>;
}

/// The worker's control API over HTTP.
#[derive(Debug)]
pub struct WorkerClient {
    base: Url,
    token: AppToken,
    http: reqwest::Client,
}

/// Why a call to the worker did not succeed: its status and message, or that it is unreachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerError {
    /// The worker's status; `None` when it could not be reached.
    pub status: Option<u16>,
    pub message: String,
}

impl std::fmt::Display for WorkerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "worker answered {s}: {}", self.message),
            None => write!(f, "worker unreachable: {}", self.message),
        }
    }
}

impl std::error::Error for WorkerError {}

impl WorkerClient {
    pub fn new(graph: &GraphConfig, base: Url) -> Result<WorkerClient, sentinel_graph::GraphError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| sentinel_graph::GraphError::Config(format!("HTTP client: {e}")))?;
        Ok(WorkerClient {
            token: AppToken::new(graph, format!("api://{}/.default", graph.client_id))?,
            base,
            http,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    async fn read(resp: Result<reqwest::Response, reqwest::Error>) -> Result<Value, WorkerError> {
        let resp = resp.map_err(|e| WorkerError {
            status: None,
            message: e.to_string(),
        })?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        Err(WorkerError {
            status: Some(status.as_u16()),
            message: body["error"].as_str().unwrap_or("no message").to_string(),
        })
    }

    async fn bearer(&self) -> Result<String, WorkerError> {
        self.token
            .get()
            .await
            .map(|t| format!("Bearer {}", t.expose_secret()))
            .map_err(|e| WorkerError {
                status: None,
                message: format!("no token for the worker API: {e}"),
            })
    }
}

#[async_trait::async_trait]
impl Worker for WorkerClient {
    async fn health(&self) -> Result<Value, WorkerError> {
        Self::read(self.http.get(self.url("/health")).send().await).await
    }

    async fn status(&self) -> Result<Value, WorkerError> {
        let bearer = self.bearer().await?;
        Self::read(
            self.http
                .get(self.url("/jobs/status"))
                .header("authorization", bearer)
                .send()
                .await,
        )
        .await
    }

    async fn operate(
        &self,
        op: &str,
        job_id: Uuid,
        user: &CurrentUser,
    ) -> Result<Value, WorkerError> {
        let bearer = self.bearer().await?;
        let mut req = self
            .http
            .post(self.url(&format!("/jobs/{op}")))
            .header("authorization", bearer)
            .json(&serde_json::json!({"job_id": job_id}))
            .header("x-sentinel-actor-oid", &user.oid);
        // Header values must be visible ASCII; names with other characters are left out.
        for (name, value) in [
            ("x-sentinel-actor-upn", &user.upn),
            ("x-sentinel-actor-name", &user.name),
        ] {
            if let Some(v) = value
                .as_deref()
                .filter(|v| v.bytes().all(|b| (0x20..0x7f).contains(&b)))
            {
                req = req.header(name, v);
            }
        }
        Self::read(req.send().await).await
    }
}
