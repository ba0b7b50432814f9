//! Drives (site libraries and every user's OneDrive) and their items (a delta round per
//! drive, drives in parallel with a bound).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use sentinel_graph::models::{Drive, DriveItem, GraphObject};
use sentinel_graph::{BatchRequest, DeltaStart, DriveDeltaOptions, GraphError, validate_id};
use sentinel_store::DriveRef;

use crate::PipelineError;
use crate::convert::{drive_item_row, drive_row};
use crate::job::{Ctx, PermissionMode};
use crate::progress::Progress;
use crate::rounds::{Assembler, DeltaSource, RoundStep};
use crate::stage::{Pipeline, Sink};

/// Lists every drive; drives no longer listed are soft-deleted (only when the listing was complete).
pub(crate) async fn sync_drives(ctx: &Ctx) -> Result<(), PipelineError> {
    ctx.progress.set_phase("drives");
    let mut rows = Vec::new();
    let mut failures = 0u64;
    let sites = ctx.store.live_site_ids(&ctx.tenant).await?;
    let mut listings = futures::stream::iter(sites.into_iter().map(|site| {
        let client = ctx.client.clone();
        async move { (client.site_drives(&site).await, site) }
    }))
    .buffer_unordered(ctx.config.drive_concurrency.max(1));
    while let Some((result, site)) = listings.next().await {
        match result {
            Ok(drives) => rows.extend(drives.iter().map(|d| drive_row(d, Some(&site), None))),
            // The site went away since the sites round: its drives go with it.
            Err(GraphError::NotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(%site, error = %e, "listing a site's drives failed");
                failures += 1;
            }
        }
    }
    // OneDrives: one GET per user, twenty per $batch; 404 means no OneDrive (unlicensed).
    let users = ctx.store.live_user_ids(&ctx.tenant).await?;
    let requests: Vec<BatchRequest> = users
        .iter()
        .enumerate()
        .filter(|(_, u)| validate_id("user", u).is_ok())
        .map(|(n, u)| BatchRequest::get(n.to_string(), format!("/users/{u}/drive")))
        .collect();
    for resp in ctx.client.batch(requests).await? {
        let Some(user) = resp.id.parse::<usize>().ok().and_then(|n| users.get(n)) else {
            continue;
        };
        match resp.status {
            200..=299 => match Drive::from_json(resp.body) {
                Ok(d) => rows.push(drive_row(&d, None, Some(user))),
                Err(e) => {
                    tracing::warn!(%user, error = %e, "unreadable OneDrive");
                    failures += 1;
                }
            },
            404 => {}
            status => {
                tracing::warn!(%user, status, "reading a user's OneDrive failed");
                failures += 1;
            }
        }
    }
    ctx.store.upsert_drives(&ctx.tenant, &rows).await?;
    Progress::add(&ctx.progress.drives, rows.len() as u64);
    if failures > 0 {
        ctx.progress.fail("drives", failures);
        return Ok(());
    }
    let listed: HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let gone: Vec<String> = ctx
        .store
        .live_drive_ids(&ctx.tenant)
        .await?
        .into_iter()
        .filter(|d| !listed.contains(d.as_str()))
        .collect();
    if !gone.is_empty() {
        tracing::info!(
            drives = gone.len(),
            "drives no longer listed: soft-deleting them"
        );
        ctx.store.delete_drives(&ctx.tenant, &gone).await?;
    }
    Ok(())
}

fn selected(ctx: &Ctx, d: &DriveRef) -> bool {
    let c = &ctx.config;
    let matches = |patterns: &[String], values: &[Option<&str>]| {
        patterns.iter().any(|p| {
            let m = wildmatch::WildMatch::new(p);
            values.iter().flatten().any(|v| m.matches(v))
        })
    };
    let site_values = [
        d.site_id.as_deref(),
        d.site_name.as_deref(),
        d.site_url.as_deref(),
    ];
    let drive_values = [Some(d.id.as_str()), d.name.as_deref()];
    let site_in = c.include_sites.is_empty()
        || (d.site_id.is_some() && matches(&c.include_sites, &site_values));
    let site_out = d.site_id.is_some() && matches(&c.exclude_sites, &site_values);
    let drive_in = c.include_drives.is_empty() || matches(&c.include_drives, &drive_values);
    let drive_out = matches(&c.exclude_drives, &drive_values);
    site_in && !site_out && drive_in && !drive_out
}

/// One delta round per selected drive, `drive_concurrency` at a time.
pub(crate) async fn sync_drive_items(ctx: &Ctx) -> Result<(), PipelineError> {
    ctx.progress.set_phase("items");
    let drives: Vec<DriveRef> = ctx
        .store
        .live_drives(&ctx.tenant)
        .await?
        .into_iter()
        .filter(|d| selected(ctx, d))
        .collect();
    let mut rounds = futures::stream::iter(drives.into_iter().map(|d| {
        let ctx = ctx.clone();
        async move { (sync_one_drive(&ctx, &d.id).await, d.id) }
    }))
    .buffer_unordered(ctx.config.drive_concurrency.max(1));
    let mut failures = 0;
    while let Some((result, drive)) = rounds.next().await {
        ctx.check_stop()?;
        Progress::add(&ctx.progress.drives_done, 1);
        match result {
            Ok(()) => {}
            // Deleted since it was listed: its items go with it.
            Err(PipelineError::Graph(GraphError::NotFound { .. })) => {
                ctx.store
                    .delete_drives(&ctx.tenant, std::slice::from_ref(&drive))
                    .await?;
            }
            Err(PipelineError::Cancelled) => return Err(PipelineError::Cancelled),
            Err(e) => {
                tracing::warn!(%drive, error = %e, "drive delta round failed");
                failures += 1;
            }
        }
    }
    ctx.progress.fail("drive items", failures);
    Ok(())
}

struct DriveItemsSink {
    ctx: Ctx,
    drive: String,
    full_since: Option<DateTime<Utc>>,
    hierarchical: bool,
}

#[async_trait::async_trait]
impl Sink for DriveItemsSink {
    type In = RoundStep<DriveItem>;
    async fn consume(&mut self, step: RoundStep<DriveItem>) -> Result<(), PipelineError> {
        let ctx = &self.ctx;
        let RoundStep::Page { items, delta_link } = step else {
            self.full_since = Some(ctx.store.now().await?);
            return Ok(());
        };
        let full = self.full_since.is_some();
        let (deleted, live): (Vec<DriveItem>, Vec<DriveItem>) =
            items.into_iter().partition(DriveItem::is_deleted);
        let rows: Vec<_> = live
            .iter()
            .map(|i| drive_item_row(i, self.hierarchical, full))
            .collect();
        let deleted: Vec<String> = deleted.into_iter().map(|i| i.id).collect();
        let link = delta_link.as_deref().map(|l| (items_resource(ctx), l));
        ctx.store
            .apply_drive_items(&ctx.tenant, &self.drive, &rows, &deleted, link)
            .await?;
        Progress::add(&ctx.progress.items, rows.len() as u64);
        if delta_link.is_some() {
            if let Some(since) = self.full_since.take() {
                ctx.store
                    .reconcile_drive_items(&ctx.tenant, &self.drive, since)
                    .await?;
            }
            ctx.store
                .derive_drive_tree(&ctx.tenant, &self.drive, self.hierarchical)
                .await?;
        }
        Ok(())
    }
}

/// Delta state is kept per permission mode: a link carries its round's `Prefer` flags, so
/// switching modes must start a full round.
fn items_resource(ctx: &Ctx) -> &'static str {
    match ctx.config.permission_mode {
        PermissionMode::Exhaustive => "drive_items:exhaustive",
        PermissionMode::Hierarchical => "drive_items:hierarchical",
    }
}

async fn sync_one_drive(ctx: &Ctx, drive: &str) -> Result<(), PipelineError> {
    ctx.check_stop()?;
    let partition = sentinel_store::drive_partition(&ctx.tenant, drive);
    let (start, full_since) = match ctx
        .store
        .delta_link(items_resource(ctx), &partition)
        .await?
    {
        Some(link) => (DeltaStart::Link(link), None),
        None => (DeltaStart::Scratch, Some(ctx.store.now().await?)),
    };
    let hierarchical = ctx.config.permission_mode == PermissionMode::Hierarchical;
    let options = DriveDeltaOptions {
        hierarchical_sharing: hierarchical,
        show_sharing_changes: hierarchical,
        top: Some(1000),
        select: None,
    };
    let stream = ctx.client.drive_delta(drive, start, &options)?;
    Pipeline::source("items.delta", DeltaSource(stream))
        .transform("items.assemble", Assembler::new())
        .sink(
            "items.store",
            DriveItemsSink {
                ctx: ctx.clone(),
                drive: drive.to_string(),
                full_since,
                hierarchical,
            },
        )
        .run()
        .await?;
    Ok(())
}
