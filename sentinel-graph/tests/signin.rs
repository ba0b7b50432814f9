//! User sign-in against the simulated Entra: the code flow, a re-check of the user through
//! the refresh token (roles as held now; refused once sessions are revoked), and sign-out at
//! the tenant's end-session endpoint.

mod common;

use common::*;
use secrecy::SecretString;
use sentinel_graph::GraphError;
use sentinel_graph::identity::SignIn;
use serde_json::json;

/// Where the simulated Entra sends the browser after it picks demo user `n`: code and state.
async fn pick(url: &str, n: usize) -> (String, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = http
        .get(format!("{url}&login_hint_user={n}"))
        .send()
        .await
        .expect("authorize");
    assert!(r.status().is_redirection(), "{}", r.status());
    let to = url::Url::parse(r.headers()["location"].to_str().expect("location")).expect("url");
    let param = |k: &str| {
        to.query_pairs()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.into_owned())
            .expect(k)
    };
    (param("code"), param("state"))
}

#[tokio::test]
async fn a_signed_in_user_is_rechecked_through_the_refresh_token_and_signs_out_at_entra() {
    let t = spawn_tenant(41, |_| {}).await;
    let signin =
        SignIn::new(&client_config(&t.sim), "http://127.0.0.1:9/auth/callback").expect("sign-in");
    let (url, pending) = signin.start();
    assert!(url.contains("offline_access"), "{url}");
    let (code, state) = pick(&url, 1).await;
    let signed = signin.finish(pending, &code, &state).await.expect("finish");
    assert_eq!(signed.claims.roles, vec!["Sentinel.Reader".to_string()]);
    let refresh = signed.refresh_token.expect("a refresh token");

    // An admin makes the reader an admin in Entra: the re-check sees it.
    let upn = t.sim.state.read_tenant().users[1].upn.clone();
    t.post("/_sim/auth", json!({"roles": {upn: ["Sentinel.Admin"]}}))
        .await;
    let again = signin.refresh(&refresh).await.expect("refresh");
    assert_eq!(again.claims.oid, signed.claims.oid);
    assert_eq!(again.claims.roles, vec!["Sentinel.Admin".to_string()]);
    let next = again.refresh_token.expect("the next refresh token");
    assert!(
        matches!(
            signin
                .refresh(&SecretString::from("not-a-refresh-token"))
                .await,
            Err(GraphError::Auth(_))
        ),
        "an unknown refresh token is refused"
    );

    // Sessions revoked in Entra: the re-check is refused, as an authentication failure.
    t.post("/_sim/auth", json!({"revoke": true})).await;
    match signin.refresh(&next).await {
        Err(GraphError::Auth(why)) => assert!(why.contains("invalid_grant"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }

    let out = signin.sign_out_url("http://127.0.0.1:9/signed-out");
    let tid = t.sim.state.read_tenant().tenant_id.clone();
    assert_eq!(
        out,
        format!(
            "{}/{tid}/oauth2/v2.0/logout?post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fsigned-out",
            t.sim.url()
        )
    );
}
