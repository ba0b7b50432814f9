//! Sessions against the simulated Entra: roles re-checked through the refresh token once the
//! re-check is due, sessions Entra no longer vouches for ended, and sign-out ending Entra's
//! session too.

mod common;

use axum::http::StatusCode;
use common::app::{TestApp, get, spawn_app};
use sentinel_testkit::sim_control;
use serde_json::json;

async fn with_app<F: AsyncFnOnce(&TestApp)>(check: F) {
    let app = spawn_app().await;
    check(&app).await;
    app.db.drop_db().await;
}

async fn audited(app: &TestApp, action: &str) -> Vec<serde_json::Value> {
    sqlx::query_scalar("SELECT details FROM audit_events WHERE action = $1 ORDER BY occurred_at")
        .bind(action)
        .fetch_all(&app.db.pool)
        .await
        .expect("audit")
}

#[tokio::test]
async fn roles_changed_in_entra_apply_once_the_recheck_is_due_and_none_left_signs_out() {
    with_app(async |app| {
        let rechecking = app.rechecking_every_request();
        let reader = app.sign_in_through_entra(&app.router, 1).await;
        assert_eq!(
            get(&rechecking, "/admin", Some(&reader)).await.status,
            StatusCode::FORBIDDEN
        );

        let upn = app.sim.state.read_tenant().users[1].upn.clone();
        sim_control(
            &app.sim,
            "auth",
            json!({"roles": {&upn: ["Sentinel.Admin"]}}),
        )
        .await;
        // Within the re-check interval (5 minutes by default) the roles read at sign-in hold.
        assert_eq!(
            get(&app.router, "/admin", Some(&reader)).await.status,
            StatusCode::FORBIDDEN
        );
        // Once it is due, Entra is asked: the reader is an admin now, and it is audited.
        let admin_page = get(&rechecking, "/admin", Some(&reader)).await;
        assert_eq!(admin_page.status, StatusCode::OK, "{}", admin_page.body);
        let changed = audited(app, "auth.roles_changed").await;
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert_eq!(changed[0]["to"], json!(["Sentinel.Admin"]));

        // Every role removed: the session ends; the browser is sent to sign in again.
        sim_control(&app.sim, "auth", json!({"roles": {&upn: []}})).await;
        let page = get(&rechecking, "/analytics", Some(&reader)).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert!(
            page.header("location").starts_with("/auth/login"),
            "{:?}",
            page.headers
        );
        let api = get(&app.router, "/api/analytics", Some(&reader)).await;
        assert_eq!(
            api.status,
            StatusCode::UNAUTHORIZED,
            "the session is gone: {}",
            api.body
        );
        assert_eq!(audited(app, "auth.session_ended").await.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_session_revoked_in_entra_ends_here_at_the_next_recheck() {
    with_app(async |app| {
        let rechecking = app.rechecking_every_request();
        let admin = app.sign_in_through_entra(&app.router, 0).await;
        assert_eq!(
            get(&rechecking, "/api/analytics", Some(&admin))
                .await
                .status,
            StatusCode::OK
        );
        sim_control(&app.sim, "auth", json!({"revoke": true})).await;
        let r = get(&rechecking, "/api/analytics", Some(&admin)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        let ended = audited(app, "auth.session_ended").await;
        assert!(
            ended[0]["why"]
                .as_str()
                .unwrap_or_default()
                .contains("AADSTS50173"),
            "{ended:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn sign_out_ends_the_entra_session_too() {
    with_app(async |app| {
        let admin = app.sign_in_through_entra(&app.router, 0).await;
        let out = app
            .post_form("/auth/logout", &admin, &[("csrf_token", &admin.csrf)])
            .await;
        assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
        let tid = app.sim.state.read_tenant().tenant_id.clone();
        assert_eq!(
            out.header("location"),
            format!(
                "{}/{tid}/oauth2/v2.0/logout?post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fsigned-out",
                app.sim.url()
            )
        );
        let after = get(&app.router, "/api/analytics", Some(&admin)).await;
        assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    })
    .await;
}
