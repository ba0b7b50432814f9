//! The token endpoint is posted the client secret: an answer that redirects elsewhere must not
//! be followed (a 307 keeps the method and the body, so the secret would be sent again, to an
//! address the answer chose).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{any, post};
use sentinel_graph::{GraphClient, GraphConfig, SecretString};

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_redirecting_token_endpoint_is_not_followed_and_the_secret_stays_home() {
    // Where the redirect points: it records whatever reaches it, and would hand out a token.
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = received.clone();
    let elsewhere = serve(Router::new().route(
        "/{*path}",
        any(move |body: Bytes| {
            let seen = seen.clone();
            async move {
                seen.lock()
                    .expect("lock")
                    .push(String::from_utf8_lossy(&body).into_owned());
                axum::Json(serde_json::json!({
                    "token_type": "Bearer", "expires_in": 3599, "access_token": "stolen"
                }))
            }
        }),
    ))
    .await;
    let target = format!("{elsewhere}/collect");
    let authority =
        serve(Router::new().route(
            "/{tenant}/oauth2/v2.0/token",
            post(move || {
                let target = target.clone();
                async move {
                    (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, target)]).into_response()
                }
            }),
        ))
        .await;

    let mut config = GraphConfig::new(
        "contoso.onmicrosoft.com".to_string(),
        "client".to_string(),
        SecretString::from("the-app-secret".to_string()),
    );
    config.authority = authority.parse().expect("url");
    config.graph_base_url = format!("{authority}/v1.0").parse().expect("url");
    config.max_retries = 0;
    let client = GraphClient::new(config).expect("client");
    let answer = client.site("root").await;
    assert!(answer.is_err(), "no token, no call: {answer:?}");
    assert_eq!(
        received.lock().expect("lock").clone(),
        Vec::<String>::new(),
        "nothing, and no secret, went where the redirect pointed"
    );
}
