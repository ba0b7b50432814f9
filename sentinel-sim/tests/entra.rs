//! The Entra endpoints: discovery, keys, client credentials, and the sign-in code flow with PKCE.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};

async fn discovery(s: &Sim) -> Value {
    s.http
        .get(s.url(&format!(
            "/{}/v2.0/.well-known/openid-configuration",
            s.tenant_id
        )))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json")
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn sign_in_with_pkce_yields_a_signed_id_token_with_roles_and_nonce() {
    let s = start(31, |_| {}).await;
    let disco = discovery(&s).await;
    let issuer = disco["issuer"].as_str().expect("issuer").to_string();
    assert_eq!(issuer, format!("{}/{}/v2.0", s.sim.url(), s.tenant_id));
    let verifier = "a-very-long-random-verifier-string-of-at-least-43-characters-000";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let client_id = s.sim.state.config.client_id.clone();
    let authorize = disco["authorization_endpoint"].as_str().expect("authorize");
    let query = format!(
        "client_id={client_id}&response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fauth%2Fcallback&scope=openid%20profile&state=st4te&nonce=n0nce&code_challenge={challenge}&code_challenge_method=S256"
    );
    let page = s
        .http
        .get(format!("{authorize}?{query}"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("Sentinel.Admin") && html.contains("Sentinel.Reader"),
        "{html}"
    );

    let http = no_redirects();
    let r = http
        .get(format!("{authorize}?{query}&login_hint_user=0"))
        .send()
        .await
        .expect("pick");
    assert!(r.status().is_redirection());
    let location = url::Url::parse(r.headers()["location"].to_str().expect("loc")).expect("url");
    assert_eq!(location.path(), "/auth/callback");
    let params: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(params["state"], "st4te");
    let token_url = disco["token_endpoint"].as_str().expect("token");
    let exchange = |verifier: &str| {
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", client_id.as_str()),
            ("client_secret", s.sim.state.config.client_secret.as_str()),
            ("code", params["code"].as_str()),
            ("redirect_uri", "http://127.0.0.1:9/auth/callback"),
            ("code_verifier", verifier),
        ];
        s.http.post(token_url).form(&form).send()
    };
    let wrong = exchange("wrong-verifier").await.expect("post");
    assert_eq!(wrong.status(), 400, "a wrong PKCE verifier is refused");
    // The code was consumed by the failed attempt; start again for the real exchange.
    let r = http
        .get(format!("{authorize}?{query}&login_hint_user=0"))
        .send()
        .await
        .expect("pick");
    let location = url::Url::parse(r.headers()["location"].to_str().expect("loc")).expect("url");
    let params2: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", client_id.as_str()),
        ("client_secret", s.sim.state.config.client_secret.as_str()),
        ("code", params2["code"].as_str()),
        ("redirect_uri", "http://127.0.0.1:9/auth/callback"),
        ("code_verifier", verifier),
    ];
    let tokens: Value = s
        .http
        .post(token_url)
        .form(&form)
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let id_token = tokens["id_token"].as_str().expect("id_token");

    let jwks: Value = s
        .http
        .get(disco["jwks_uri"].as_str().expect("jwks"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let key = &jwks["keys"][0];
    let decoding = DecodingKey::from_rsa_components(
        key["n"].as_str().expect("n"),
        key["e"].as_str().expect("e"),
    )
    .expect("key");
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[client_id.as_str()]);
    v.set_issuer(&[issuer.as_str()]);
    let claims = jsonwebtoken::decode::<Value>(id_token, &decoding, &v)
        .expect("valid id_token")
        .claims;
    let admin = s.sim.state.read_tenant().users[0].clone();
    assert_eq!(claims["oid"], admin.id.as_str());
    assert_eq!(claims["tid"], s.tenant_id.as_str());
    assert_eq!(claims["nonce"], "n0nce");
    assert_eq!(claims["roles"], serde_json::json!(["Sentinel.Admin"]));
    assert_eq!(claims["preferred_username"], admin.upn.as_str());

    // Replaying the code fails.
    let replay = s
        .http
        .post(token_url)
        .form(&form)
        .send()
        .await
        .expect("post");
    assert_eq!(replay.status(), 400);

    // Any account of the tenant may sign in (the app decides what a user without a role sees);
    // one that does not exist is refused as Entra does (AADSTS50034).
    let users = s.sim.state.read_tenant().users.len();
    let other = http
        .get(format!("{authorize}?{query}&login_hint_user=5"))
        .send()
        .await
        .expect("pick");
    assert!(other.status().is_redirection(), "{}", other.status());
    let missing = http
        .get(format!("{authorize}?{query}&login_hint_user={users}"))
        .send()
        .await
        .expect("pick");
    assert_eq!(missing.status(), 400);
    assert!(missing.text().await.expect("text").contains("AADSTS50034"));
}

#[tokio::test]
async fn client_credentials_refuse_a_wrong_secret_and_an_unknown_tenant() {
    let s = start(32, |_| {}).await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", s.sim.state.config.client_id.as_str()),
        ("client_secret", "nope"),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let r = s
        .http
        .post(s.url(&format!("/{}/oauth2/v2.0/token", s.tenant_id)))
        .form(&form)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.expect("json")["error"],
        "invalid_client"
    );
    let r = s
        .http
        .post(s.url("/not-a-tenant/oauth2/v2.0/token"))
        .form(&form)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 400);
    let worker = s
        .app_token(&format!("api://{}/.default", s.sim.state.config.client_id))
        .await;
    assert!(
        worker["access_token"].is_string(),
        "tokens for our own API are issued: {worker}"
    );
}

#[tokio::test]
async fn authorize_refuses_requests_without_pkce() {
    let s = start(33, |_| {}).await;
    let url = s.url(&format!(
        "/{}/oauth2/v2.0/authorize?client_id={}&response_type=code&redirect_uri=http%3A%2F%2Fx%2Fcb&scope=openid",
        s.tenant_id, s.sim.state.config.client_id
    ));
    let r = s.http.get(url).send().await.expect("get");
    assert_eq!(r.status(), 400);
    assert!(r.text().await.expect("text").contains("PKCE"));
}

/// Entra's own session: an account picked once signs in without the picker until the browser
/// visits the end-session endpoint. And a sign-in with `offline_access` gets a refresh token,
/// whose redemption returns an id token with the roles the user holds now, until revoked.
#[tokio::test]
async fn sessions_end_at_sign_out_and_refresh_tokens_carry_the_roles_held_now() {
    let s = start(34, |_| {}).await;
    let disco = discovery(&s).await;
    let authorize = disco["authorization_endpoint"].as_str().expect("authorize");
    let token_url = disco["token_endpoint"].as_str().expect("token");
    let logout = disco["end_session_endpoint"]
        .as_str()
        .expect("end_session_endpoint")
        .to_string();
    let client_id = s.sim.state.config.client_id.clone();
    let secret = s.sim.state.config.client_secret.clone();
    let verifier = "another-long-random-verifier-string-of-at-least-43-characters-00";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let query = format!(
        "{authorize}?client_id={client_id}&response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&scope=openid%20profile%20offline_access&state=s&nonce=n&code_challenge={challenge}&code_challenge_method=S256"
    );
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let browser = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let code_of = |r: reqwest::Response| {
        assert!(r.status().is_redirection(), "{}", r.status());
        let to = url::Url::parse(r.headers()["location"].to_str().expect("loc")).expect("url");
        to.query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .expect("code")
    };
    let get = |url: String| browser.get(url).send();

    // First visit: the picker. Picking signs in and starts the session.
    assert_eq!(get(query.clone()).await.expect("get").status(), 200);
    let code = code_of(
        get(format!("{query}&login_hint_user=1"))
            .await
            .expect("pick"),
    );
    // Next visit: straight back with a code, no picker; `prompt=login` still shows it.
    let silent = code_of(get(query.clone()).await.expect("silent"));
    assert_eq!(
        get(format!("{query}&prompt=login"))
            .await
            .expect("get")
            .status(),
        200
    );

    let redeem = |form: Vec<(&'static str, String)>| s.http.post(token_url).form(&form).send();
    let by_code = |code: String| {
        vec![
            ("grant_type", "authorization_code".to_string()),
            ("client_id", client_id.clone()),
            ("client_secret", secret.clone()),
            ("code", code),
            ("redirect_uri", "http://127.0.0.1:9/cb".to_string()),
            ("code_verifier", verifier.to_string()),
        ]
    };
    let by_refresh = |token: &str| {
        vec![
            ("grant_type", "refresh_token".to_string()),
            ("client_id", client_id.clone()),
            ("client_secret", secret.clone()),
            ("refresh_token", token.to_string()),
            ("scope", "openid profile offline_access".to_string()),
        ]
    };
    let roles_in = |tokens: &Value| -> Value {
        let id = tokens["id_token"].as_str().expect("id_token");
        let payload = id.split('.').nth(1).expect("payload");
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
        claims["roles"].clone()
    };
    let first: Value = redeem(by_code(code))
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert_eq!(roles_in(&first), serde_json::json!(["Sentinel.Reader"]));
    let refresh = first["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_string();
    let silent: Value = redeem(by_code(silent))
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert!(silent["id_token"].is_string(), "{silent}");

    // Roles change in Entra: the next refresh says so, and hands out the next refresh token.
    let reader_upn = s.sim.state.read_tenant().users[1].upn.clone();
    let r = s
        .http
        .post(s.url("/_sim/auth"))
        .json(&serde_json::json!({"roles": {reader_upn: ["Sentinel.Admin"]}}))
        .send()
        .await
        .expect("auth");
    assert_eq!(r.status(), 200);
    let second: Value = redeem(by_refresh(&refresh))
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert_eq!(roles_in(&second), serde_json::json!(["Sentinel.Admin"]));
    let next = second["refresh_token"]
        .as_str()
        .expect("next refresh token");
    assert_ne!(next, refresh, "each refresh hands out a new refresh token");
    let reused = redeem(by_refresh(&refresh)).await.expect("post");
    assert_eq!(
        reused.status(),
        200,
        "the old one stays valid until revoked"
    );
    let unknown = redeem(by_refresh("not-a-refresh-token"))
        .await
        .expect("post");
    assert_eq!(
        unknown.json::<Value>().await.expect("json")["error"],
        "invalid_grant"
    );
    // A revoked session ends: the refresh is refused.
    s.http
        .post(s.url("/_sim/auth"))
        .json(&serde_json::json!({"revoke": true}))
        .send()
        .await
        .expect("revoke");
    let revoked = redeem(by_refresh(next)).await.expect("post");
    assert_eq!(revoked.status(), 400);
    assert!(
        revoked.text().await.expect("text").contains("AADSTS50173"),
        "revocation is named"
    );

    // Sign-out ends the session and returns where asked: the picker is back.
    let out = get(format!(
        "{logout}?post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fsigned-out"
    ))
    .await
    .expect("logout");
    assert!(out.status().is_redirection());
    assert_eq!(out.headers()["location"], "http://127.0.0.1:9/signed-out");
    assert_eq!(get(query.clone()).await.expect("get").status(), 200);
}
