//! Harness: a simulator on a free port and a plain HTTP client holding an app-only token.
#![allow(dead_code)]

use reqwest::{Client, Response};
use sentinel_sim::{Profile, RunningSim, SimConfig};
use serde_json::Value;

pub struct Sim {
    pub sim: RunningSim,
    pub http: Client,
    pub tenant_id: String,
    pub token: String,
}

pub async fn start(seed: u64, tweak: impl FnOnce(&mut SimConfig)) -> Sim {
    start_profile(Profile::Tiny, seed, tweak).await
}

pub async fn start_profile(profile: Profile, seed: u64, tweak: impl FnOnce(&mut SimConfig)) -> Sim {
    let sim = sentinel_testkit::spawn_sim_with(profile, seed, |c| {
        c.ru_per_minute = 1_000_000;
        tweak(c);
    })
    .await;
    let http = Client::new();
    let tenant_id = sim.state.read_tenant().tenant_id.clone();
    let mut s = Sim {
        sim,
        http,
        tenant_id,
        token: String::new(),
    };
    s.token = s.app_token("https://graph.microsoft.com/.default").await["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    s
}

impl Sim {
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.sim.url())
        }
    }

    pub async fn app_token(&self, scope: &str) -> Value {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.sim.state.config.client_id.as_str()),
            (
                "client_secret",
                self.sim.state.config.client_secret.as_str(),
            ),
            ("scope", scope),
        ];
        let r = self
            .http
            .post(self.url(&format!("/{}/oauth2/v2.0/token", self.tenant_id)))
            .form(&form)
            .send()
            .await
            .expect("token");
        r.json().await.expect("json")
    }

    /// GET with the app token; returns the raw response.
    pub async fn get_raw(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = self.http.get(self.url(path)).bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request")
    }

    pub async fn get(&self, path: &str) -> Value {
        let r = self.get_raw(path, &[]).await;
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.expect("json")
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn dump(&self, kind: &str) -> Vec<Value> {
        sentinel_testkit::sim_dump(&self.sim, kind).await
    }

    /// Follows a delta or paged collection to its end; returns (values, deltaLink).
    pub async fn follow(
        &self,
        first: &str,
        headers: &[(&str, &str)],
    ) -> (Vec<Value>, Option<String>) {
        let mut values = Vec::new();
        let mut next = Some(first.to_string());
        let mut delta = None;
        let mut guard = 0;
        while let Some(link) = next.take() {
            guard += 1;
            assert!(guard < 10_000, "paging never ends");
            let r = self.get_raw(&link, headers).await;
            assert_eq!(r.status(), 200, "{link}");
            let page: Value = r.json().await.expect("json");
            values.extend(page["value"].as_array().cloned().unwrap_or_default());
            next = page["@odata.nextLink"].as_str().map(String::from);
            delta = page["@odata.deltaLink"].as_str().map(String::from);
        }
        (values, delta)
    }
}
