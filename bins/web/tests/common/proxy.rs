//! A reverse proxy in front of the web that keeps every response (status, headers, body) the
//! browser receives, so a test can prove no token ever reached the browser.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::Response;

#[derive(Clone)]
struct Upstream {
    base: String,
    client: reqwest::Client,
    seen: Arc<Mutex<Vec<String>>>,
}

pub struct Recorder {
    pub url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    pub async fn start(upstream: &str) -> Recorder {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = Upstream {
            base: upstream.to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            seen: seen.clone(),
        };
        let app = Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Recorder { url, seen }
    }

    /// Every response so far, as text: status line, headers, blank line, body.
    pub fn responses(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn forward(State(up): State<Upstream>, req: Request) -> Response {
    let target = format!(
        "{}{}",
        up.base,
        req.uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 16 << 20).await.unwrap_or_default();
    let mut rb = up.client.request(parts.method.clone(), &target).body(body);
    for (k, v) in &parts.headers {
        if k != header::HOST && k != header::CONTENT_LENGTH {
            rb = rb.header(k, v);
        }
    }
    let resp = match rb.send().await {
        Ok(r) => r,
        Err(e) => {
            return Response::builder()
                .status(502)
                .body(Body::from(format!("proxy: {e}")))
                .expect("response");
        }
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap_or_default();
    let mut record = format!("{} {} {status}\n", parts.method, parts.uri);
    for (k, v) in &headers {
        record.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
    }
    record.push('\n');
    record.push_str(&String::from_utf8_lossy(&bytes));
    up.seen.lock().expect("lock").push(record);
    let mut out = Response::builder().status(status);
    for (k, v) in &headers {
        if k != header::TRANSFER_ENCODING && k != header::CONTENT_LENGTH && k != header::CONNECTION
        {
            out = out.header(k, v);
        }
    }
    out.body(Body::from(bytes)).expect("response")
}
