//! The request core: auth, pacing, throttling, retries and error mapping for every call.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::{Extensions, HeaderMap, Method, StatusCode};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_retry::{
    RetryTransientMiddleware, Retryable, RetryableStrategy, default_on_request_failure,
};
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::sync::Semaphore;
use url::Url;

use crate::auth::TokenCache;
use crate::config::GraphConfig;
use crate::cost::{Budget, request_cost};
use crate::error::GraphError;
use crate::pacer::{ClientStats, Pacer};

/// A typed Microsoft Graph v1.0 client for one tenant. Cheap to clone; clones share the
/// token cache, the RU budget and the counters.
#[derive(Debug, Clone)]
pub struct GraphClient {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub config: GraphConfig,
    http: ClientWithMiddleware,
    tokens: TokenCache,
    pub pacer: Arc<Pacer>,
    permits: Semaphore,
}

/// The RU cost of one attempt, attached to each request for the pacing middleware.
#[derive(Debug, Clone, Copy)]
struct AttemptCost(Budget, u32);

/// Paces and counts every attempt, retries included, just before it goes on the wire.
#[derive(Debug)]
struct PacingMiddleware(Arc<Pacer>);

#[async_trait::async_trait]
impl Middleware for PacingMiddleware {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let AttemptCost(budget, cost) = extensions
            .get::<AttemptCost>()
            .copied()
            .unwrap_or(AttemptCost(Budget::Sharepoint, 1));
        let receipt = self.0.acquire(budget, cost).await;
        let answer = next.run(req, extensions).await;
        self.0.settle(receipt);
        answer
    }
}

/// Retries what is transient at the transport level: connection failures, 500, 502, 504.
/// 429 and 503 are not retried here: they carry Retry-After, which the client honours itself
/// by pausing every request of the tenant.
#[derive(Debug)]
struct TransientOnly;

impl RetryableStrategy for TransientOnly {
    fn handle(
        &self,
        res: &Result<reqwest::Response, reqwest_middleware::Error>,
    ) -> Option<Retryable> {
        match res {
            Ok(r) if matches!(r.status().as_u16(), 500 | 502 | 504) => Some(Retryable::Transient),
            Ok(_) => None,
            Err(e) => default_on_request_failure(e),
        }
    }
}

/// A successful (2xx or 304) answer.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub body: Value,
}

impl GraphClient {
    /// A client for `config` (checked first): pacing, retries and the token cache are its own.
    pub fn new(config: GraphConfig) -> Result<GraphClient, GraphError> {
        config.validate()?;
        let raw = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| GraphError::Config(format!("HTTP client: {e}")))?;
        let pacer = Arc::new(Pacer::new(&config));
        let policy = ExponentialBackoff::builder()
            .retry_bounds(Duration::from_millis(200), Duration::from_secs(30))
            .build_with_max_retries(config.max_retries);
        let http = ClientBuilder::new(raw.clone())
            .with(RetryTransientMiddleware::new_with_policy_and_strategy(
                policy,
                TransientOnly,
            ))
            .with(PacingMiddleware(pacer.clone()))
            .build();
        let tokens = TokenCache::new(&config)?;
        let permits = Semaphore::new(config.max_concurrency);
        Ok(GraphClient {
            inner: Arc::new(Inner {
                config,
                http,
                tokens,
                pacer,
                permits,
            }),
        })
    }

    /// Counters: RU spent, requests, throttled answers, retries, time paused.
    pub fn stats(&self) -> ClientStats {
        self.inner.pacer.stats()
    }

    /// RU charged so far by every request of this client (and its clones).
    pub fn ru_spent(&self) -> u64 {
        self.stats().ru_spent
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &GraphConfig {
        &self.inner.config
    }

    /// Asks Entra for an app-only token now (or finds one cached): `Err(GraphError::Auth)`
    /// says what Entra answered, e.g. that the tenant has not consented to the app. A deployment
    /// scanning many tenants records this as each tenant's consent state.
    pub async fn authenticate(&self) -> Result<(), GraphError> {
        self.inner.tokens.get().await.map(|_| ())
    }

    /// A path relative to the version root (`/drives/x`), or an absolute link Graph returned.
    /// Absolute links must point under the configured Graph root: the token is never sent elsewhere.
    pub(crate) fn resolve(&self, path_or_url: &str) -> Result<Url, GraphError> {
        let base = &self.inner.config.graph_base_url;
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            let u = Url::parse(path_or_url)
                .map_err(|e| GraphError::BadResponse(format!("invalid link {path_or_url}: {e}")))?;
            let root = base.as_str().trim_end_matches('/');
            if u.origin() != base.origin()
                || !u.path().starts_with(base.path().trim_end_matches('/'))
            {
                return Err(GraphError::BadResponse(format!(
                    "link {u} points outside {root}"
                )));
            }
            return Ok(u);
        }
        Url::parse(&format!(
            "{}/{}",
            base.as_str().trim_end_matches('/'),
            path_or_url.trim_start_matches('/')
        ))
        .map_err(|e| GraphError::BadResponse(format!("invalid path {path_or_url}: {e}")))
    }

    /// Path and query relative to the version root, for cost accounting.
    pub(crate) fn relative(&self, url: &Url) -> String {
        let root = self
            .inner
            .config
            .graph_base_url
            .path()
            .trim_end_matches('/');
        let path = url.path().strip_prefix(root).unwrap_or(url.path());
        match url.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        }
    }

    /// GET a Graph URL and parse its JSON.
    pub(crate) async fn get(
        &self,
        url: &Url,
        headers: &[(&str, &str)],
    ) -> Result<Fetched, GraphError> {
        let (budget, cost) = request_cost(&self.relative(url));
        self.execute(Method::GET, url, headers, None, budget, cost)
            .await
    }

    /// Sends one request through auth, pacing, throttling and retries.
    pub(crate) async fn execute(
        &self,
        method: Method,
        url: &Url,
        headers: &[(&str, &str)],
        body: Option<&Value>,
        budget: Budget,
        cost: u32,
    ) -> Result<Fetched, GraphError> {
        let inner = &self.inner;
        let mut throttle_waited = Duration::ZERO;
        let mut throttle_streak = 0u32;
        let mut body_failures = 0u32;
        let mut refreshed = false;
        loop {
            let token = inner.tokens.get().await?;
            let permit = inner
                .permits
                .acquire()
                .await
                .map_err(|e| GraphError::transport("waiting for a request slot", e))?;
            let mut req = inner
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token.secret.expose_secret())
                .with_extension(AttemptCost(budget, cost));
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    // reqwest-retry already retried what was transient.
                    return Err(GraphError::transport(
                        format!("{method} {}", self.relative(url)),
                        e,
                    ));
                }
            };
            let status = resp.status();
            let resp_headers = resp.headers().clone();
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                drop(permit);
                inner.tokens.invalidate(token.generation).await;
                refreshed = true;
                continue;
            }
            if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
            {
                drop(permit);
                throttle_streak += 1;
                let wait = retry_wait(&resp_headers, throttle_streak);
                if throttle_waited + wait > inner.config.max_throttle_wait {
                    return Err(GraphError::Throttled {
                        status: status.as_u16(),
                        waited: throttle_waited,
                    });
                }
                tracing::info!(status = status.as_u16(), wait_ms = wait.as_millis() as u64, path = %self.relative(url), "throttled by Graph; pausing all requests");
                inner.pacer.pause(wait);
                inner
                    .pacer
                    .counters
                    .throttle_wait_ms
                    .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
                throttle_waited += wait;
                continue;
            }
            // The body can still fail: a connection reset mid-response, or truncated JSON.
            let parsed = match resp.bytes().await {
                Ok(bytes) if bytes.is_empty() || status == StatusCode::NOT_MODIFIED => {
                    Ok(Value::Null)
                }
                Ok(bytes) => serde_json::from_slice::<Value>(&bytes).map_err(|e| {
                    GraphError::BadResponse(format!(
                        "{method} {}: invalid JSON ({e})",
                        self.relative(url)
                    ))
                }),
                Err(e) => Err(GraphError::transport(
                    format!("{method} {}: reading the body", self.relative(url)),
                    e,
                )),
            };
            drop(permit);
            let value = match parsed {
                Ok(v) => v,
                Err(e) if body_failures < inner.config.max_retries => {
                    body_failures += 1;
                    inner.pacer.counters.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, attempt = body_failures, "retrying after a broken response");
                    tokio::time::sleep(Duration::from_millis(100 << body_failures.min(6))).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if status.is_success() || status == StatusCode::NOT_MODIFIED {
                return Ok(Fetched { body: value });
            }
            return Err(map_error(status, &resp_headers, &value));
        }
    }
}

/// How long Graph asked us to wait: the larger of Retry-After and RateLimit-Reset, or
/// exponential backoff when neither is given.
///
/// Retry-After comes as seconds with a fraction in Graph's own sample (`Retry-After: 2.128`,
/// learn.microsoft.com/graph/throttling "Sample response"), and HTTP allows a date as well
/// (RFC 9110 §10.2.3): both are read, so a throttled request is never resent sooner than asked.
pub(crate) fn retry_wait(headers: &HeaderMap, streak: u32) -> Duration {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_wait)
    };
    match (value("retry-after"), value("ratelimit-reset")) {
        (None, None) => Duration::from_secs(1u64 << streak.saturating_sub(1).min(6)),
        (a, b) => a
            .unwrap_or_default()
            .max(b.unwrap_or_default())
            .max(MIN_WAIT),
    }
}

/// The shortest pause taken on a throttled answer, whatever it asked ("avoid immediate retries",
/// learn.microsoft.com/graph/throttling).
const MIN_WAIT: Duration = Duration::from_millis(100);

/// A day: longer waits are read as a day (the client's `max_throttle_wait` decides whether to
/// wait at all), so no header value can overflow a `Duration`.
const LONGEST_WAIT: Duration = Duration::from_secs(86_400);

/// `2`, `2.128`, `2,128` (seconds) or an HTTP date; `None` for anything else. A decimal comma
/// is read as a point: Microsoft's Kiota retry handler expects `\d+,\d+` values from Graph (and
/// waits only their whole seconds); waiting the longer reading is the safe side.
fn parse_wait(value: &str) -> Option<Duration> {
    let value = value.trim();
    let decimal = match value.split_once(',') {
        Some((whole, fraction))
            if !whole.is_empty()
                && !fraction.is_empty()
                && (whole.bytes().chain(fraction.bytes())).all(|b| b.is_ascii_digit()) =>
        {
            format!("{whole}.{fraction}")
        }
        _ => value.to_string(),
    };
    if let Ok(secs) = decimal.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(LONGEST_WAIT.as_secs_f64())));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default()
            .min(LONGEST_WAIT),
    )
}

/// Graph's error body `{"error": {"code", "message"}}` as a typed error.
pub(crate) fn map_error(status: StatusCode, headers: &HeaderMap, body: &Value) -> GraphError {
    let code = body
        .pointer("/error/code")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    let message = body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error"))
        .to_string();
    // An expired directory delta token: "a BadRequest response with the error code
    // syncStateNotFound" (Microsoft 365 Developer Blog, "Duration of change tracking tokens for
    // identity and education resources", 2020-07-03); also seen as 410 (microsoft-graph-docs-contrib
    // #7897). Either way the round starts again from scratch: there is no Location to follow.
    if status.is_client_error() && code.eq_ignore_ascii_case("syncStateNotFound") {
        return GraphError::Resync {
            code,
            location: None,
        };
    }
    match status {
        StatusCode::NOT_FOUND => GraphError::NotFound { code, message },
        StatusCode::GONE => GraphError::Resync {
            code,
            location: headers
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(String::from),
        },
        StatusCode::FORBIDDEN => GraphError::Forbidden { code, message },
        StatusCode::UNAUTHORIZED => {
            GraphError::Auth(format!("{} {code}: {message}", status.as_u16()))
        }
        _ => GraphError::Api {
            status: status.as_u16(),
            code,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_larger_of_retry_after_and_ratelimit_reset_wins() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "3".parse().expect("header"));
        assert_eq!(retry_wait(&h, 1), Duration::from_secs(3));
        h.insert("ratelimit-reset", "7".parse().expect("header"));
        assert_eq!(retry_wait(&h, 1), Duration::from_secs(7));
        assert_eq!(retry_wait(&HeaderMap::new(), 1), Duration::from_secs(1));
        assert_eq!(retry_wait(&HeaderMap::new(), 3), Duration::from_secs(4));
    }

    #[test]
    fn retry_after_is_read_as_fractional_seconds_or_a_date() {
        let wait = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("retry-after", v.parse().expect("header"));
            retry_wait(&h, 1)
        };
        // The throttling page's own sample.
        assert_eq!(wait("2.128"), Duration::from_millis(2128));
        assert_eq!(wait("2,128"), Duration::from_millis(2128));
        assert_eq!(wait("0"), MIN_WAIT);
        let soon = std::time::SystemTime::now() + Duration::from_secs(30);
        let by_date = wait(&httpdate::fmt_http_date(soon));
        assert!(
            by_date > Duration::from_secs(28) && by_date <= Duration::from_secs(30),
            "{by_date:?}"
        );
        assert_eq!(
            wait("Sun, 06 Nov 1994 08:49:37 GMT"),
            MIN_WAIT,
            "a past date"
        );
        assert_eq!(wait("1e300"), LONGEST_WAIT);
        // Unreadable values fall back to back-off, as no header would.
        for junk in ["-1", "NaN", "inf", "soon"] {
            assert_eq!(wait(junk), Duration::from_secs(1), "{junk}");
        }
    }
}
