//! The live panels' Graph clients, one per tenant: the app registration's own, each with its
//! tenant's token (Graph answers a request for the tenant its token names). Built on first
//! use and kept, so each tenant's token is cached and its requests paced together.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sentinel_graph::{GraphClient, GraphConfig};

use crate::error::WebError;

#[derive(Debug)]
pub struct LiveClients {
    /// The live panels' configuration (few retries, short waits); the tenant is each client's.
    config: GraphConfig,
    clients: Mutex<HashMap<String, Arc<GraphClient>>>,
}

impl LiveClients {
    /// Clients for `config`; the one of `config`'s own tenant is built now, so a bad
    /// configuration fails at start-up rather than on the first live call.
    pub fn new(config: GraphConfig) -> Result<LiveClients, sentinel_graph::GraphError> {
        let home = Arc::new(GraphClient::new(config.clone())?);
        let clients = HashMap::from([(config.tenant_id.clone(), home)]);
        Ok(LiveClients {
            config,
            clients: Mutex::new(clients),
        })
    }

    /// The client for `tenant`.
    pub fn for_tenant(&self, tenant: &str) -> Result<Arc<GraphClient>, WebError> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(tenant) {
            return Ok(c.clone());
        }
        let mut config = self.config.clone();
        config.tenant_id = tenant.to_string();
        let client = Arc::new(GraphClient::new(config).map_err(WebError::Graph)?);
        clients.insert(tenant.to_string(), client.clone());
        Ok(client)
    }
}
