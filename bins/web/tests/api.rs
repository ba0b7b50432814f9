//! The real `sentinel-web` binary without a browser: signed-out callers get nothing but
//! health and sign-in, and a bad environment stops start-up with one line. Pages and API
//! behaviour in detail: `tests/pages.rs`, in-process.

mod common;

use common::Stack;
use sentinel_sim::Profile;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_out_callers_get_nothing_but_health_and_sign_in() {
    let stack = Stack::start(Profile::Tiny, 21).await;
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let health = anon
        .get(format!("{}/health", stack.url))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    for page in ["/analytics", "/jobs", "/runs", "/admin", "/sites/x"] {
        let r = anon
            .get(format!("{}{page}", stack.url))
            .send()
            .await
            .expect("page");
        assert_eq!(r.status(), 303, "{page}");
        let to = r.headers()["location"].to_str().expect("location");
        assert!(to.starts_with("/auth/login?return_to="), "{page} -> {to}");
    }
    for api in [
        "/api/analytics",
        "/api/jobs",
        "/api/graph/site-access?siteId=x",
    ] {
        let r = anon
            .get(format!("{}{api}", stack.url))
            .send()
            .await
            .expect("api");
        assert_eq!(r.status(), 401, "{api}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"], "sign in first");
    }
    let r = anon
        .post(format!("{}/api/jobs", stack.url))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
    // Sign-in refuses a callback that no sign-in in this browser started.
    let r = anon
        .get(format!("{}/auth/callback?code=abc&state=forged", stack.url))
        .send()
        .await
        .expect("callback");
    assert_eq!(r.status(), 400);
    stack.stop().await;
}

#[test]
fn a_missing_or_malformed_variable_stops_start_up_with_one_line_naming_it() {
    for (unset, set, name) in [
        ("WEB_PUBLIC_URL", None, "WEB_PUBLIC_URL"),
        (
            "",
            Some(("WORKER_API_URL", "worker:8081")),
            "WORKER_API_URL",
        ),
        ("", Some(("WEB_ADDR", "everywhere")), "WEB_ADDR"),
        ("ENTRA_CLIENT_SECRET", None, "ENTRA_CLIENT_SECRET"),
    ] {
        let mut c = std::process::Command::new(common::WEB_BIN);
        c.env_clear()
            .env(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/postgres",
            )
            .env("ENTRA_TENANT_ID", "t")
            .env("ENTRA_CLIENT_ID", "c")
            .env("ENTRA_CLIENT_SECRET", "s")
            .env("WEB_PUBLIC_URL", "http://localhost:8080")
            .env_remove(unset);
        if let Some((k, v)) = set {
            c.env(k, v);
        }
        let out = c.output().expect("run sentinel-web");
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(name), "{err}");
    }
}
