//! A webhook receiver on loopback, for the alert tests: it answers 500 to its first `fail`
//! requests, then 200, and keeps every body it accepted.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;

#[derive(Debug, Clone, Default)]
struct Inner {
    requests: Arc<Mutex<u32>>,
    accepted: Arc<Mutex<Vec<Value>>>,
    fail: u32,
}

/// A running receiver; it stops with the test's runtime.
#[derive(Debug, Clone)]
pub struct Receiver {
    inner: Inner,
    /// Where to post.
    pub url: String,
}

impl Receiver {
    /// Starts a receiver that fails its first `fail` requests.
    pub async fn start(fail: u32) -> Receiver {
        let inner = Inner {
            fail,
            ..Inner::default()
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { inner, url }
    }

    /// Requests received, failed ones included.
    pub fn requests(&self) -> u32 {
        *self.inner.requests.lock().expect("lock")
    }

    /// The bodies accepted (answered 200), in order.
    pub fn accepted(&self) -> Vec<Value> {
        self.inner.accepted.lock().expect("lock").clone()
    }
}

async fn receive(State(r): State<Inner>, Json(body): Json<Value>) -> StatusCode {
    let n = {
        let mut n = r.requests.lock().expect("lock");
        *n += 1;
        *n
    };
    if n <= r.fail {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    r.accepted.lock().expect("lock").push(body);
    StatusCode::OK
}
