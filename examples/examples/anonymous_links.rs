//! Lists a tenant's anonymous sharing links through `sentinel-graph`.
//!
//! Against the simulator (see README): start `sentinel-sim`, then
//! `ENTRA_TENANT_ID=<tenant_id from /_sim/manifest> ENTRA_CLIENT_ID=<client_id> ENTRA_CLIENT_SECRET=sentinel-sim-secret \
//!  ENTRA_AUTHORITY=http://127.0.0.1:8089 GRAPH_BASE_URL=http://127.0.0.1:8089/v1.0 \
//!  cargo run -p sentinel-examples --example anonymous_links`

use std::process::ExitCode;

use sentinel_graph::{GraphClient, GraphConfig};

#[tokio::main]
async fn main() -> ExitCode {
    let client = match GraphConfig::from_env().and_then(GraphClient::new) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("anonymous_links: {e}");
            return ExitCode::from(2);
        }
    };
    match sentinel_examples::anonymous_links(&client).await {
        Ok(links) => {
            for l in &links {
                println!(
                    "{}\t{}\t{}{}{}",
                    l.item_name,
                    l.link_type,
                    l.expires
                        .as_deref()
                        .map(|e| format!("expires {e}"))
                        .unwrap_or_else(|| "never expires".into()),
                    if l.has_password { ", password" } else { "" },
                    format_args!("\t{}", l.item_id)
                );
            }
            let stats = client.stats();
            eprintln!(
                "{} anonymous links; {} requests, {} RU",
                links.len(),
                stats.requests,
                stats.ru_spent
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("anonymous_links: {e}");
            ExitCode::FAILURE
        }
    }
}
