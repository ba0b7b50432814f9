//! The `graph_ingest` and `refresh_mv` jobs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sentinel_graph::{GraphClient, GraphConfig};
use sentinel_store::{AuditEvent, MvRefresh, Store};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::progress::Phase;
use crate::progress::{Progress, ProgressSnapshot};
use crate::{PipelineError, directory, drives, permissions};

/// What a `graph_ingest` run reads, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    /// Users (`users/delta`).
    Users,
    /// Groups with their members (`groups/delta`).
    Groups,
    /// Site collections (`sites/delta`, `getAllSites`) and their subsites.
    Sites,
    /// Document libraries and OneDrives.
    Drives,
    /// Drive items (a delta round per drive).
    Items,
    /// Item permissions and their grantees.
    Permissions,
}

impl Resource {
    /// Every resource, in the order a run reads them.
    pub const ALL: [Resource; 6] = [
        Resource::Users,
        Resource::Groups,
        Resource::Sites,
        Resource::Drives,
        Resource::Items,
        Resource::Permissions,
    ];

    /// The resource's name in configurations and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Users => "users",
            Resource::Groups => "groups",
            Resource::Sites => "sites",
            Resource::Drives => "drives",
            Resource::Items => "items",
            Resource::Permissions => "permissions",
        }
    }
}

impl std::str::FromStr for Resource {
    type Err = String;

    fn from_str(s: &str) -> Result<Resource, String> {
        Resource::ALL
            .into_iter()
            .find(|r| r.name() == s.trim())
            .ok_or_else(|| format!("unknown resource '{s}': expected users, groups, sites, drives, items or permissions"))
    }
}

/// How item permissions are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermissionMode {
    /// Every item's permissions (5 RU each), re-read whenever delta reports the item.
    Exhaustive,
    /// Only permission-hierarchy roots and items whose sharing changed (needs Sites.FullControl.All).
    Hierarchical,
}

impl PermissionMode {
    /// The other mode.
    pub fn other(self) -> PermissionMode {
        match self {
            PermissionMode::Exhaustive => PermissionMode::Hierarchical,
            PermissionMode::Hierarchical => PermissionMode::Exhaustive,
        }
    }
}

impl std::str::FromStr for PermissionMode {
    type Err = String;

    fn from_str(s: &str) -> Result<PermissionMode, String> {
        match s {
            "exhaustive" => Ok(PermissionMode::Exhaustive),
            "hierarchical" => Ok(PermissionMode::Hierarchical),
            other => Err(format!(
                "unknown permission mode '{other}': expected exhaustive or hierarchical"
            )),
        }
    }
}

/// The longest staleness an adaptive cadence may allow, in minutes (30 days).
const MAX_STALENESS_LIMIT: u32 = 30 * 24 * 60;

/// The configuration of a `graph_ingest` job (`jobs.config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphIngestConfig {
    /// What to read, in [`Resource::ALL`] order.
    pub resources: Vec<Resource>,
    /// How item permissions are read.
    pub permission_mode: PermissionMode,
    /// Glob patterns on a site's id, name or URL; empty includes every site (and OneDrives).
    pub include_sites: Vec<String>,
    /// Glob patterns of sites to leave out (after `include_sites`).
    pub exclude_sites: Vec<String>,
    /// Glob patterns on a drive's id or name.
    pub include_drives: Vec<String>,
    /// Glob patterns of drives to leave out (after `include_drives`).
    pub exclude_drives: Vec<String>,
    /// Drives read in parallel.
    pub drive_concurrency: usize,
    /// Cap on the RU per minute this job spends (below the tenant's budget, to leave room for others).
    pub request_rate_cap: Option<u32>,
    /// Items per permission page (each page is read in `$batch`es of 20).
    pub batch_size: usize,
    /// Stop reading permissions after this long; the next run resumes.
    pub time_budget_secs: Option<u64>,
    /// Hours between full drive listings (every site's libraries, every user's OneDrive).
    /// In between, only sites and users the delta rounds reported are listed. 0: every run.
    pub full_listing_hours: u64,
    /// Items whose permissions were read longer ago than this are read again, the oldest first
    /// (resumable, like every permission read). Without `Prefer: deltashowsharingchanges`
    /// (exhaustive mode) delta reports no sharing-only change: this sweep is how one is seen.
    /// `None`: 24 hours in exhaustive mode, off in hierarchical mode; `Some(0)`: off.
    pub permission_max_age_hours: Option<u64>,
    /// Adaptive cadence: a drive is read again once as long as it had been idle at its last
    /// read has passed, and never later than this many minutes after it (run the job often,
    /// e.g. every 5 minutes: busy drives are read every run, idle ones back off). In
    /// hierarchical mode the drive root's permissions, which Graph returns as the parent of
    /// every change, are re-read at most this often unless the root came back alone.
    /// `None`: every run reads every drive.
    pub max_staleness_minutes: Option<u32>,
}

impl Default for GraphIngestConfig {
    fn default() -> Self {
        GraphIngestConfig {
            resources: Resource::ALL.to_vec(),
            permission_mode: PermissionMode::Hierarchical,
            include_sites: Vec::new(),
            exclude_sites: Vec::new(),
            include_drives: Vec::new(),
            exclude_drives: Vec::new(),
            drive_concurrency: 4,
            request_rate_cap: None,
            batch_size: 200,
            time_budget_secs: None,
            full_listing_hours: 24,
            permission_max_age_hours: None,
            max_staleness_minutes: None,
        }
    }
}

impl GraphIngestConfig {
    /// The adaptive cadence's maximum staleness, when one is set.
    pub fn max_staleness(&self) -> Option<chrono::Duration> {
        self.max_staleness_minutes
            .map(|m| chrono::Duration::minutes(m.into()))
    }

    /// What is wrong with the configuration, said so that an admin can fix it.
    pub fn validate(&self) -> Result<(), PipelineError> {
        let bad = |m: &str| Err(PipelineError::Config(m.to_string()));
        if self.resources.is_empty() {
            return bad(
                "resources must name at least one of users, groups, sites, drives, items, permissions",
            );
        }
        if !(1..=64).contains(&self.drive_concurrency) {
            return bad("drive_concurrency must be between 1 and 64");
        }
        if !(1..=10_000).contains(&self.batch_size) {
            return bad("batch_size must be between 1 and 10000");
        }
        if self.full_listing_hours > 24 * 365 {
            return bad("full_listing_hours must be at most a year (8760)");
        }
        if self.permission_max_age_hours.is_some_and(|h| h > 24 * 365) {
            return bad("permission_max_age_hours must be at most a year (8760)");
        }
        if self
            .max_staleness_minutes
            .is_some_and(|m| !(1..=MAX_STALENESS_LIMIT).contains(&m))
        {
            return bad("max_staleness_minutes must be between 1 and 43200 (30 days)");
        }
        if self.request_rate_cap.is_some_and(|c| c < 10) {
            return bad("request_rate_cap must be at least 10 RU per minute");
        }
        Ok(())
    }

    /// The permission sweep's age in hours, if the sweep is on (see `permission_max_age_hours`).
    pub fn permission_sweep_hours(&self) -> Option<u64> {
        let default = match self.permission_mode {
            PermissionMode::Exhaustive => Some(24),
            PermissionMode::Hierarchical => None,
        };
        self.permission_max_age_hours.or(default).filter(|&h| h > 0)
    }

    /// Makes a client configuration a scan's: the live panel's share left out of the budget
    /// (see [`GraphConfig::leave_live_share`]), then the job's rate cap.
    pub fn apply_to(&self, graph: &mut GraphConfig) {
        graph.leave_live_share();
        if let Some(cap) = self.request_rate_cap {
            graph.ru_per_minute = graph.ru_per_minute.min(cap);
        }
    }
}

/// Everything a pipeline needs, cheap to clone into tasks.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub client: GraphClient,
    pub store: Store,
    pub tenant: String,
    pub config: Arc<GraphIngestConfig>,
    pub progress: Arc<Progress>,
    pub stop: Arc<AtomicBool>,
    pub started: Instant,
}

impl Ctx {
    /// Stops at a safe point when shutdown was asked for.
    pub fn check_stop(&self) -> Result<(), PipelineError> {
        if self.stop.load(Ordering::SeqCst) {
            Err(PipelineError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// What a successful run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestReport {
    /// The counters at the end of the run.
    pub progress: ProgressSnapshot,
    /// How long the run took.
    pub duration: Duration,
}

async fn audit(store: &Store, action: &str, tenant: &str, details: serde_json::Value) {
    let event = AuditEvent {
        actor_name: Some("sentinel-worker".into()),
        action: action.into(),
        entity_type: Some("tenant".into()),
        entity_id: Some(tenant.into()),
        details,
        tenant_id: Some(tenant.into()),
        ..AuditEvent::default()
    };
    if let Err(e) = store.audit(&event).await {
        tracing::warn!(error = %e, action, "could not write audit event");
    }
}

/// How often a scan waiting for another scan of its tenant asks again.
const SCAN_LOCK_POLL: Duration = Duration::from_secs(2);

/// The tenant's scan lock, waiting while another process scans it (a shutdown stops the wait).
async fn wait_for_scan_lock(
    store: &Store,
    tenant: &str,
    stop: &AtomicBool,
) -> Result<sentinel_store::SessionLock, PipelineError> {
    let mut said = false;
    loop {
        if let Some(lock) = store.try_lock_tenant_scans(tenant).await? {
            return Ok(lock);
        }
        if !said {
            tracing::info!(%tenant, "another scan of the tenant is running: waiting for it to end");
            said = true;
        }
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PipelineError::Cancelled);
        }
        tokio::time::sleep(SCAN_LOCK_POLL).await;
    }
}

/// Runs `graph_ingest`: each configured resource in order, then fails if anything was left
/// unread. `stop` asks the run to end at the next safe point.
pub async fn run_graph_ingest(
    client: &GraphClient,
    store: &Store,
    tenant: &str,
    config: &GraphIngestConfig,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
) -> Result<IngestReport, PipelineError> {
    config.validate()?;
    // One scan of a tenant at a time, whichever process runs it: held until this returns.
    let _scanning = wait_for_scan_lock(store, tenant, &stop).await?;
    let ctx = Ctx {
        client: client.clone(),
        store: store.clone(),
        tenant: tenant.to_string(),
        config: Arc::new(config.clone()),
        progress,
        stop,
        started: Instant::now(),
    };
    audit(
        store,
        "graph_ingest.started",
        tenant,
        json!({"config": config}),
    )
    .await;
    let result = run_resources(&ctx).await;
    let snapshot = ctx.progress.snapshot(client);
    match result {
        Ok(()) => {
            audit(
                store,
                "graph_ingest.succeeded",
                tenant,
                json!({"progress": snapshot}),
            )
            .await;
            Ok(IngestReport {
                progress: snapshot,
                duration: ctx.started.elapsed(),
            })
        }
        Err(e) => {
            audit(
                store,
                "graph_ingest.failed",
                tenant,
                json!({"error": e.to_string(), "progress": snapshot}),
            )
            .await;
            Err(e)
        }
    }
}

async fn run_resources(ctx: &Ctx) -> Result<(), PipelineError> {
    for resource in Resource::ALL
        .into_iter()
        .filter(|r| ctx.config.resources.contains(r))
    {
        ctx.check_stop()?;
        match resource {
            Resource::Users => directory::sync_users(ctx).await?,
            Resource::Groups => directory::sync_groups(ctx).await?,
            Resource::Sites => directory::sync_sites(ctx).await?,
            Resource::Drives => drives::sync_drives(ctx).await?,
            Resource::Items => drives::sync_drive_items(ctx).await?,
            Resource::Permissions => permissions::sync_permissions(ctx).await?,
        }
        let s = ctx.progress.snapshot(&ctx.client);
        audit(
            &ctx.store,
            "graph_ingest.resource_completed",
            &ctx.tenant,
            json!({"resource": resource.name(), "progress": s}),
        )
        .await;
    }
    ctx.progress.set_phase(Phase::Done);
    let failures = ctx.progress.failures();
    if !failures.is_empty() {
        let what: Vec<String> = failures.iter().map(|(r, n)| format!("{n} {r}")).collect();
        return Err(PipelineError::Incomplete(format!(
            "{}; the data of this run is partial",
            what.join(", ")
        )));
    }
    Ok(())
}

/// Runs `refresh_mv` for `tenant` (the scanned tenant, or the `refresh_mv` job's): refreshes
/// its summaries whose sources changed, then its stored audiences when anything changed, then
/// its policy violations (queueing alerts for new ones). Only that tenant's: each tenant's scan
/// refreshes its own, so the work of a scan's end does not grow with the tenants, and the
/// refreshes of different tenants run side by side. `None` sweeps every tenant in turn, for
/// embedders.
pub async fn run_refresh_mv(
    store: &Store,
    tenant: Option<&str>,
) -> Result<MvRefresh, PipelineError> {
    let Some(tenant) = tenant else {
        let mut all = MvRefresh::default();
        for tenant in store.tenants_with_data().await? {
            let r = refresh_tenant(store, &tenant).await?;
            all.refreshed.extend(r.refreshed);
            all.skipped.extend(r.skipped);
        }
        return Ok(all);
    };
    refresh_tenant(store, tenant).await
}

async fn refresh_tenant(store: &Store, tenant: &str) -> Result<MvRefresh, PipelineError> {
    // One at a time per tenant across processes: two scans of a tenant may end together.
    let _refreshing = store.lock_refreshes(tenant).await?;
    let mut r = store.refresh_tenant_views(tenant).await?;
    // Audiences expand groups through mv_group_transitive_users: after the summaries. Only the
    // libraries the scan changed are recomputed, unless the directory changed.
    if store
        .refresh_tenant_audiences_if_due(tenant)
        .await?
        .is_some()
    {
        r.refreshed.push("holder_audiences".into());
    }
    let analyzed = store.analyze_stale_tables().await?;
    if !analyzed.is_empty() {
        tracing::info!(?analyzed, "statistics refreshed");
    }
    // Every time: a rule on how long a link has been open changes with the clock alone.
    let v = store.refresh_violations(tenant).await?;
    tracing::info!(
        tenant,
        open = v.open,
        detected = v.detected,
        resolved = v.resolved,
        alerts_queued = v.alerts_queued,
        "policy violations computed"
    );
    tracing::info!(tenant, refreshed = ?r.refreshed, skipped = r.skipped.len(), "summaries and audiences refreshed");
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scan's client paces to the budget less the live panel's share, then to the job's cap.
    #[test]
    fn a_scan_leaves_the_live_share_and_keeps_its_cap() {
        let graph = GraphConfig::new("t", "c", sentinel_graph::SecretString::from("s"));
        let mut scan = graph.clone();
        GraphIngestConfig::default().apply_to(&mut scan);
        assert_eq!(
            scan.ru_per_minute + graph.live_ru_per_minute(),
            graph.ru_per_minute
        );
        let mut capped = graph.clone();
        GraphIngestConfig {
            request_rate_cap: Some(100),
            ..GraphIngestConfig::default()
        }
        .apply_to(&mut capped);
        assert_eq!(capped.ru_per_minute, 100);
    }
}
