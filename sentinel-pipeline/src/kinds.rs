//! The two kinds of job the worker runs, as [`JobKind`]s: `graph_ingest` reads a tenant into
//! the store and refreshes the views it fed; `refresh_mv` refreshes the views whose sources
//! changed. The web checks what an admin submits with [`job_kinds`].

use std::sync::Arc;
use std::time::Duration;

use sentinel_graph::{GraphClient, GraphConfig, GraphError};
use sentinel_sched::{CronExpr, Job, JobError, JobKind, KindSpec, RunContext, SchedError};
use sentinel_store::{Store, band_budget};
use serde::{Deserialize, Serialize};

use crate::{GraphIngestConfig, PipelineError, Progress, run_graph_ingest, run_refresh_mv};

/// Every kind of job there is, for checking a job before it is stored.
pub fn job_kinds() -> [KindSpec; 2] {
    [KindSpec::of::<GraphIngest>(), KindSpec::of::<RefreshMv>()]
}

/// A tenant without jobs begins scanning unattended: an hourly tenant scan (delta keeps the
/// hourly runs cheap), run at once. Returns the job created, if one was (none when the tenant
/// has jobs already). The worker does it at start-up, `tenants add` and the admin page when a
/// tenant is added.
pub async fn schedule_first_scan(
    store: &Store,
    tenant: &str,
) -> Result<Option<uuid::Uuid>, SchedError> {
    let spec = sentinel_sched::manage::JobSpec {
        name: Some("Tenant scan".into()),
        job_type: GraphIngest::NAME.into(),
        tenant_id: tenant.to_string(),
        config: KindSpec::of::<GraphIngest>().default_config(),
        enabled: true,
    };
    let hourly: CronExpr = "0 * * * *".parse()?;
    let id = sentinel_sched::manage::create_first_job(store.pool(), &spec, &hourly).await?;
    if let Some(id) = id {
        tracing::info!(job_id = %id, %tenant, "no jobs for the tenant yet: created an hourly tenant scan and asked for a run now");
    }
    Ok(id)
}

/// A Graph client for `tenant`, the app registration's own (`graph`) but for the tenant: paced
/// by the tenant's budget band when `tenants` gives one (else by `graph`'s budgets), capped by
/// the job's rate cap, and holding a token already. Whether Entra issued the token is
/// recorded as the tenant's consent state (a tenant that never consented shows as such in the
/// tenants list, not only as a failed run); a tenant not in `tenants` is registered first.
pub async fn tenant_client(
    store: &Store,
    graph: &GraphConfig,
    tenant: &str,
    job: &GraphIngestConfig,
) -> Result<GraphClient, PipelineError> {
    let mut graph = graph.clone();
    graph.tenant_id = tenant.to_string();
    let band = store.registered_tenant(tenant).await?.budget_band;
    if let Some((per_minute, per_day)) = band.and_then(band_budget) {
        graph.ru_per_minute = per_minute;
        graph.ru_per_day = Some(per_day);
    }
    job.apply_to(&mut graph);
    let client = GraphClient::new(graph)?;
    match client.authenticate().await {
        Ok(()) => store.record_consent(tenant, Ok(())).await?,
        Err(GraphError::Auth(why)) => {
            store.record_consent(tenant, Err(&why)).await?;
            return Err(GraphError::Auth(why).into());
        }
        // Entra unreachable says nothing of consent.
        Err(e) => return Err(e.into()),
    }
    Ok(client)
}

/// Reads a tenant into the store, then refreshes the views it fed.
#[derive(Debug)]
pub struct GraphIngest {
    /// The app registration and Graph endpoint; the tenant is the job's.
    pub graph: GraphConfig,
    /// Where the tenant is written.
    pub store: Store,
}

#[async_trait::async_trait]
impl JobKind for GraphIngest {
    const NAME: &'static str = "graph_ingest";
    type Config = GraphIngestConfig;

    fn validate(config: &GraphIngestConfig) -> Result<(), String> {
        config.validate().map_err(|e| e.to_string())
    }

    async fn run(
        &self,
        job: &Job,
        config: GraphIngestConfig,
        ctx: RunContext,
    ) -> Result<(), JobError> {
        let client = tenant_client(&self.store, &self.graph, &job.tenant_id, &config)
            .await
            .map_err(|e| JobError::failed("connecting to the tenant", e))?;
        let progress = Arc::new(Progress::default());
        // Progress is published every second while the run lasts, and once more at its end.
        let reporter = {
            let (progress, client, ctx) = (progress.clone(), client.clone(), ctx.clone());
            tokio::spawn(async move {
                loop {
                    ctx.set_progress(
                        serde_json::to_value(progress.snapshot(&client)).unwrap_or_default(),
                    );
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            })
        };
        let result = run_graph_ingest(
            &client,
            &self.store,
            &job.tenant_id,
            &config,
            progress.clone(),
            ctx.stop_flag(),
        )
        .await;
        reporter.abort();
        ctx.set_progress(serde_json::to_value(progress.snapshot(&client)).unwrap_or_default());
        // The pipeline's errors already say what failed.
        result.map_err(JobError::new)?;
        run_refresh_mv(&self.store, Some(job.tenant_id.as_str()))
            .await
            .map_err(|e| JobError::failed("refreshing the views", e))?;
        Ok(())
    }
}

/// Refreshes the materialized views whose sources changed, then its tenant's stored audiences
/// and policy violations.
#[derive(Debug)]
pub struct RefreshMv {
    /// Whose views are refreshed.
    pub store: Store,
}

/// `refresh_mv` takes no configuration: `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

#[async_trait::async_trait]
impl JobKind for RefreshMv {
    const NAME: &'static str = "refresh_mv";
    type Config = NoConfig;

    async fn run(&self, job: &Job, _: NoConfig, ctx: RunContext) -> Result<(), JobError> {
        let r = run_refresh_mv(&self.store, Some(job.tenant_id.as_str()))
            .await
            .map_err(|e| JobError::failed("refreshing the views", e))?;
        ctx.set_progress(serde_json::json!({"refreshed": r.refreshed, "skipped": r.skipped}));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_kind_checks_what_an_admin_submits() {
        let kinds = job_kinds();
        let ingest = KindSpec::find(&kinds, "graph_ingest").expect("graph_ingest");
        assert_eq!(
            ingest.default_config(),
            serde_json::to_value(GraphIngestConfig::default()).expect("json")
        );
        assert!(
            ingest
                .check(&json!({"drive_concurrency": 0}))
                .is_err_and(|e| e.contains("drive_concurrency must be between 1 and 64"))
        );
        let refresh = KindSpec::find(&kinds, "refresh_mv").expect("refresh_mv");
        assert_eq!(refresh.check(&json!({})), Ok(json!({})));
        assert!(
            refresh
                .check(&json!({"views": ["x"]}))
                .is_err_and(|e| e.starts_with("refresh_mv config: unknown field `views`"))
        );
    }
}
