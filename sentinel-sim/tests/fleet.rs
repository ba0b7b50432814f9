//! Many tenants behind one address, as Graph and Entra serve them: the tenant in the token
//! endpoint's path issues the token, the token's tenant is the one Graph reads.

use reqwest::Client;
use sentinel_sim::{Profile, RunningFleet, SimConfig, spawn_fleet};
use serde_json::Value;

fn tenant(seed: u64) -> SimConfig {
    SimConfig {
        profile: Profile::Tiny,
        seed,
        ru_per_minute: 1_000_000,
        ..SimConfig::default()
    }
}

async fn token(http: &Client, fleet: &RunningFleet, tenant: &str) -> reqwest::Response {
    let config = &fleet.tenants[0].config;
    http.post(format!("{}/{tenant}/oauth2/v2.0/token", fleet.url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", config.client_id.as_str()),
            ("client_secret", config.client_secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .expect("token request")
}

async fn bearer(http: &Client, fleet: &RunningFleet, tenant: &str) -> String {
    let r = token(http, fleet, tenant).await;
    assert_eq!(r.status(), 200, "a token for {tenant}");
    let body: Value = r.json().await.expect("json");
    body["access_token"].as_str().expect("token").to_string()
}

/// Every id a full users round returns, following nextLinks.
async fn user_ids(http: &Client, fleet: &RunningFleet, token: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut next = Some(format!("{}/v1.0/users/delta", fleet.url()));
    while let Some(url) = next {
        let page: Value = http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .expect("page")
            .json()
            .await
            .expect("json");
        // Users deleted before the round come as `@removed` even in a full round.
        for u in page["value"].as_array().expect("value") {
            if u.get("@removed").is_some() {
                continue;
            }
            ids.push(u["id"].as_str().expect("id").to_string());
        }
        next = page["@odata.nextLink"].as_str().map(str::to_string);
    }
    ids.sort();
    ids
}

#[tokio::test]
async fn each_token_reads_its_own_tenant_and_control_is_per_tenant() {
    let fleet = spawn_fleet(
        vec![tenant(31), tenant(32)],
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("fleet");
    let http = Client::new();
    let listed: Value = http
        .get(format!("{}/_fleet", fleet.url()))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let ids: Vec<String> = fleet
        .tenants
        .iter()
        .map(|t| t.read_tenant().tenant_id.clone())
        .collect();
    let domain = fleet.tenants[1].read_tenant().domain.clone();
    assert_eq!(
        listed["tenants"]
            .as_array()
            .expect("tenants")
            .iter()
            .map(|t| t["tenantId"].as_str().unwrap_or_default())
            .collect::<Vec<_>>(),
        ids
    );

    let mut seen = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        // The second tenant is named by its domain, as a tenant given as a domain must work.
        let name = if n == 1 { domain.as_str() } else { id.as_str() };
        let token = bearer(&http, &fleet, name).await;
        let read = user_ids(&http, &fleet, &token).await;
        let truth = http
            .get(format!("{}/_fleet/{id}/_sim/dump/users", fleet.url()))
            .send()
            .await
            .expect("dump")
            .text()
            .await
            .expect("text");
        let mut truth: Vec<String> = truth
            .lines()
            .map(|l| {
                let u: Value = serde_json::from_str(l).expect("a JSON line");
                u["id"].as_str().expect("id").to_string()
            })
            .collect();
        truth.sort();
        assert!(!read.is_empty(), "tenant {id} has users");
        assert_eq!(read, truth, "tenant {id}: its own users, every one");
        seen.push(read);
    }
    assert!(
        seen[0].iter().all(|u| !seen[1].contains(u)),
        "no user of one tenant is read with the other's token"
    );

    // The same app in a tenant the fleet does not hold: Entra's AADSTS90002.
    let stranger = token(&http, &fleet, "00000000-0000-0000-0000-000000000001").await;
    assert_eq!(stranger.status(), 400);
    assert!(
        stranger
            .text()
            .await
            .unwrap_or_default()
            .contains("AADSTS90002"),
        "an unknown tenant is refused by name"
    );
    // Graph without a token: Graph's own 401.
    let anonymous = http
        .get(format!("{}/v1.0/users/delta", fleet.url()))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), 401);
    let unknown = http
        .get(format!("{}/_fleet/nobody/_sim/manifest", fleet.url()))
        .send()
        .await
        .expect("request");
    assert_eq!(unknown.status(), 404);
    fleet.shutdown().await;
}

#[tokio::test]
async fn two_copies_of_one_tenant_are_refused() {
    let err = spawn_fleet(
        vec![tenant(5), tenant(5)],
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect_err("the same seed twice");
    assert!(err.to_string().contains("own seed"), "{err}");
}
