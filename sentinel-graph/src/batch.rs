//! JSON batching: up to 20 requests per `POST /$batch`, inner throttling retried after
//! its own Retry-After, results returned in the order asked.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::stream::{self, StreamExt, TryStreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{Value, json};

use crate::client::{GraphClient, retry_wait};
use crate::cost::{Budget, request_cost};
use crate::error::GraphError;

/// Graph's limit of requests per batch.
pub const MAX_BATCH: usize = 20;

/// One GET inside a batch; `url` is relative to the version root (`/drives/..`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRequest {
    /// The request's id within the batch; the response carries it back.
    pub id: String,
    /// The URL relative to the Graph root (`/drives/{d}/items/{i}/permissions`).
    pub url: String,
    /// Headers of this request.
    pub headers: Vec<(String, String)>,
}

impl BatchRequest {
    /// A GET of `url` with id `id`.
    pub fn get(id: impl Into<String>, url: impl Into<String>) -> BatchRequest {
        BatchRequest {
            id: id.into(),
            url: url.into(),
            headers: Vec::new(),
        }
    }
}

/// The answer to one [`BatchRequest`]. A request still throttled after the client's
/// patience ran out keeps its 429/503 status here.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchResponse {
    /// The id of the request this answers.
    pub id: String,
    /// Its HTTP status.
    pub status: u16,
    /// Its headers (`Retry-After` among them when throttled).
    pub headers: HashMap<String, String>,
    /// Its JSON body.
    pub body: Value,
}

impl BatchResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl GraphClient {
    /// Sends `requests` in batches of 20, a few batches at a time; returns one response per
    /// request, in the order given.
    pub async fn batch(
        &self,
        requests: Vec<BatchRequest>,
    ) -> Result<Vec<BatchResponse>, GraphError> {
        let mut ids = HashSet::new();
        for r in &requests {
            if r.id.is_empty() || !ids.insert(r.id.clone()) {
                return Err(GraphError::InvalidArgument(format!(
                    "batch request ids must be unique and non-empty: {:?}",
                    r.id
                )));
            }
            if r.url.starts_with("http") || r.url.contains("..") {
                return Err(GraphError::InvalidArgument(format!(
                    "batch urls are relative Graph paths: {}",
                    r.url
                )));
            }
        }
        let order: HashMap<String, usize> = requests
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect();
        let chunks = self.chunks(requests);
        let concurrency = self.config().max_concurrency.max(1);
        let results: Vec<Vec<BatchResponse>> =
            stream::iter(chunks.into_iter().map(|c| self.batch_chunk(c)))
                .buffer_unordered(concurrency)
                .try_collect()
                .await?;
        let mut all: Vec<BatchResponse> = results.into_iter().flatten().collect();
        all.sort_by_key(|r| order.get(&r.id).copied().unwrap_or(usize::MAX));
        Ok(all)
    }

    /// Cuts requests into batches of at most 20 whose RU the pacer can let out at once (a
    /// batch paid for in several steps would reach Graph as a burst of RU saved up over time).
    fn chunks(&self, requests: Vec<BatchRequest>) -> Vec<Vec<BatchRequest>> {
        let mut chunks: Vec<Vec<BatchRequest>> = Vec::new();
        let mut cost = 0;
        for r in requests {
            let (budget, c) = request_cost(&r.url);
            let fits = chunks.last().is_some_and(|last| {
                last.len() < MAX_BATCH && cost + c <= self.inner.pacer.burst(budget)
            });
            if fits {
                cost += c;
                if let Some(last) = chunks.last_mut() {
                    last.push(r);
                }
            } else {
                cost = c;
                chunks.push(vec![r]);
            }
        }
        chunks
    }

    async fn batch_chunk(
        &self,
        mut pending: Vec<BatchRequest>,
    ) -> Result<Vec<BatchResponse>, GraphError> {
        let url = self.resolve("/$batch")?;
        let mut done = Vec::with_capacity(pending.len());
        let mut waited = Duration::ZERO;
        let mut streak = 0;
        // Inner 500/502/504 are transient as outer ones are (Graph best practices, "Handling
        // expected errors": retry with exponential back-off): resent up to `max_retries` times.
        let mut failures: HashMap<String, u32> = HashMap::new();
        loop {
            let cost: u32 = pending.iter().map(|r| request_cost(&r.url).1).sum();
            let budget = if pending
                .iter()
                .all(|r| request_cost(&r.url).0 == Budget::Directory)
            {
                Budget::Directory
            } else {
                Budget::Sharepoint
            };
            let body = json!({"requests": pending.iter().map(|r| {
                let headers: serde_json::Map<String, Value> = r.headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                json!({"id": r.id, "method": "GET", "url": r.url, "headers": headers})
            }).collect::<Vec<_>>()});
            let fetched = self
                .execute(Method::POST, &url, &[], Some(&body), budget, cost)
                .await?;
            let responses = fetched
                .body
                .get("responses")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    GraphError::BadResponse("batch answer without 'responses'".into())
                })?;
            let mut by_id: HashMap<String, BatchResponse> = HashMap::new();
            for r in responses {
                let parsed = parse_inner(r)?;
                by_id.insert(parsed.id.clone(), parsed);
            }
            let mut retry = Vec::new();
            let mut wait = Duration::ZERO;
            let mut throttled = false;
            for req in pending {
                let resp = by_id.remove(&req.id).ok_or_else(|| {
                    GraphError::BadResponse(format!("batch answer lacks request {}", req.id))
                })?;
                let failed = failures.get(&req.id).copied().unwrap_or(0);
                if resp.status == 429 || resp.status == 503 {
                    throttled = true;
                    wait = wait.max(retry_wait(&header_map(&resp.headers), streak + 1));
                    retry.push((req, resp));
                } else if matches!(resp.status, 500 | 502 | 504)
                    && failed < self.config().max_retries
                {
                    failures.insert(req.id.clone(), failed + 1);
                    wait = wait.max(retry_wait(&HeaderMap::new(), failed + 1));
                    retry.push((req, resp));
                } else {
                    done.push(resp);
                }
            }
            if retry.is_empty() {
                return Ok(done);
            }
            streak += 1;
            if waited + wait > self.config().max_throttle_wait {
                done.extend(retry.into_iter().map(|(_, resp)| resp));
                return Ok(done);
            }
            tracing::info!(
                resent = retry.len(),
                throttled,
                wait_ms = wait.as_millis() as u64,
                "inner batch requests throttled or failed; resending them after the wait"
            );
            if throttled {
                // Inner throttling means the tenant's budget is spent: pause everything.
                self.inner.pacer.pause(wait);
            } else {
                tokio::time::sleep(wait).await;
            }
            waited += wait;
            pending = retry.into_iter().map(|(req, _)| req).collect();
        }
    }
}

fn parse_inner(r: &Value) -> Result<BatchResponse, GraphError> {
    let id = r
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::BadResponse("batch response without id".into()))?;
    let status = r
        .get("status")
        .and_then(Value::as_u64)
        .ok_or_else(|| GraphError::BadResponse(format!("batch response {id} without status")))?;
    let headers = r
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.to_ascii_lowercase(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Ok(BatchResponse {
        id: id.to_string(),
        status: status as u16,
        headers,
        body: r.get("body").cloned().unwrap_or(Value::Null),
    })
}

fn header_map(h: &HashMap<String, String>) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in h {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_str(v)) {
            m.insert(k, v);
        }
    }
    m
}
