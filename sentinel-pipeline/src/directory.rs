//! Users, groups (with membership) and sites: one delta round each.

use chrono::{DateTime, Utc};
use sentinel_graph::models::{Group, Site, User};
use sentinel_graph::{DeltaStart, GraphError};

use crate::PipelineError;
use crate::Resource;
use crate::convert::{group_row, member_changes, site_row, user_row};
use crate::job::Ctx;
use crate::progress::{Phase, Progress};
use crate::rounds::{Assembler, DeltaSource, RoundStep};
use crate::stage::{Pipeline, Sink};
use sentinel_store::TenantTable;

/// Where a round starts: the stored link, or scratch (a full round, reconciled at its end).
async fn start(
    ctx: &Ctx,
    table: TenantTable,
) -> Result<(DeltaStart, Option<DateTime<Utc>>), PipelineError> {
    match ctx.store.delta_link(table.resource(), &ctx.tenant).await? {
        Some(link) => Ok((DeltaStart::Link(link), None)),
        None => Ok((DeltaStart::Scratch, Some(ctx.store.now().await?))),
    }
}

/// Round bookkeeping shared by the directory sinks.
struct Round {
    ctx: Ctx,
    table: TenantTable,
    /// `Some` while the round is a full one: when it started.
    full_since: Option<DateTime<Utc>>,
}

impl Round {
    async fn restarted(&mut self) -> Result<(), PipelineError> {
        self.full_since = Some(self.ctx.store.now().await?);
        Ok(())
    }

    async fn completed(&mut self) -> Result<(), PipelineError> {
        if let Some(since) = self.full_since.take() {
            let n = self
                .ctx
                .store
                .reconcile_tenant_table(&self.ctx.tenant, self.table, since)
                .await?;
            tracing::info!(
                resource = self.table.resource(),
                removed = n,
                "full round reconciled"
            );
        }
        Ok(())
    }
}

struct UsersSink(Round);

#[async_trait::async_trait]
impl Sink for UsersSink {
    type In = RoundStep<User>;
    async fn consume(&mut self, step: RoundStep<User>) -> Result<(), PipelineError> {
        let RoundStep::Page { items, delta_link } = step else {
            return self.0.restarted().await;
        };
        let (removed, live): (Vec<User>, Vec<User>) =
            items.into_iter().partition(|u| u.removed.is_some());
        let rows: Vec<_> = live.iter().map(user_row).collect();
        let removed: Vec<String> = removed.into_iter().map(|u| u.id).collect();
        let ctx = &self.0.ctx;
        ctx.store
            .apply_users_page(&ctx.tenant, &rows, &removed, delta_link.as_deref())
            .await?;
        Progress::add(&ctx.progress.users, rows.len() as u64);
        if delta_link.is_some() {
            self.0.completed().await?;
        }
        Ok(())
    }
}

pub(crate) async fn sync_users(ctx: &Ctx) -> Result<(), PipelineError> {
    ctx.progress.set_phase(Phase::Reading(Resource::Users));
    let (start, full_since) = start(ctx, TenantTable::Users).await?;
    let stream = ctx.client.users_delta(start, User::SELECT);
    Pipeline::source("users.delta", DeltaSource(stream))
        .transform("users.assemble", Assembler::new())
        .sink(
            "users.store",
            UsersSink(Round {
                ctx: ctx.clone(),
                table: TenantTable::Users,
                full_since,
            }),
        )
        .run()
        .await?;
    Ok(())
}

struct GroupsSink(Round);

#[async_trait::async_trait]
impl Sink for GroupsSink {
    type In = RoundStep<Group>;
    async fn consume(&mut self, step: RoundStep<Group>) -> Result<(), PipelineError> {
        let RoundStep::Page { items, delta_link } = step else {
            return self.0.restarted().await;
        };
        let (removed, live): (Vec<Group>, Vec<Group>) =
            items.into_iter().partition(|g| g.removed.is_some());
        let rows: Vec<_> = live.iter().map(group_row).collect();
        // A group split over several pages carries a slice of its members on each: merge them.
        let members: Vec<_> = live.iter().flat_map(member_changes).collect();
        let removed: Vec<String> = removed.into_iter().map(|g| g.id).collect();
        let ctx = &self.0.ctx;
        ctx.store
            .apply_groups_page(
                &ctx.tenant,
                &rows,
                &removed,
                &members,
                delta_link.as_deref(),
            )
            .await?;
        Progress::add(&ctx.progress.groups, rows.len() as u64);
        if delta_link.is_some() {
            self.0.completed().await?;
        }
        Ok(())
    }
}

pub(crate) async fn sync_groups(ctx: &Ctx) -> Result<(), PipelineError> {
    ctx.progress.set_phase(Phase::Reading(Resource::Groups));
    let (start, full_since) = start(ctx, TenantTable::Groups).await?;
    let stream = ctx.client.groups_delta(start, &[], true);
    Pipeline::source("groups.delta", DeltaSource(stream))
        .transform("groups.assemble", Assembler::new())
        .sink(
            "groups.store",
            GroupsSink(Round {
                ctx: ctx.clone(),
                table: TenantTable::Groups,
                full_since,
            }),
        )
        .run()
        .await?;
    Ok(())
}

struct SitesSink(Round);

#[async_trait::async_trait]
impl Sink for SitesSink {
    type In = RoundStep<Site>;
    async fn consume(&mut self, step: RoundStep<Site>) -> Result<(), PipelineError> {
        let RoundStep::Page { items, delta_link } = step else {
            return self.0.restarted().await;
        };
        let (deleted, live): (Vec<Site>, Vec<Site>) =
            items.into_iter().partition(|s| s.deleted.is_some());
        let rows: Vec<_> = live.iter().map(site_row).collect();
        let deleted: Vec<String> = deleted.into_iter().map(|s| s.id).collect();
        let ctx = &self.0.ctx;
        ctx.store
            .apply_sites_page(&ctx.tenant, &rows, &deleted, delta_link.as_deref())
            .await?;
        Progress::add(&ctx.progress.sites, rows.len() as u64);
        if delta_link.is_some() {
            self.0.completed().await?;
        }
        Ok(())
    }
}

pub(crate) async fn sync_sites(ctx: &Ctx) -> Result<(), PipelineError> {
    ctx.progress.set_phase(Phase::Reading(Resource::Sites));
    let (start, full_since) = start(ctx, TenantTable::Sites).await?;
    let stream = ctx.client.sites_delta(start);
    Pipeline::source("sites.delta", DeltaSource(stream))
        .transform("sites.assemble", Assembler::new())
        .sink(
            "sites.store",
            SitesSink(Round {
                ctx: ctx.clone(),
                table: TenantTable::Sites,
                full_since,
            }),
        )
        .run()
        .await?;
    link_group_sites(ctx).await
}

/// Links Microsoft 365 groups to their team sites (`GET /groups/{id}/sites/root`), so that the
/// sites' Owners and Members groups resolve to the groups' owners and members. One request per
/// group not linked yet; a refusal (a locked site) is logged and asked again next scan.
async fn link_group_sites(ctx: &Ctx) -> Result<(), PipelineError> {
    let groups = ctx.store.groups_to_link_to_sites(&ctx.tenant).await?;
    let mut links = Vec::with_capacity(groups.len());
    for group in groups {
        ctx.check_stop()?;
        match ctx.client.group_root_site(&group).await {
            Ok(site) => links.push((group, site.map(|s| s.id))),
            Err(GraphError::Forbidden { code, message }) => {
                tracing::warn!(%group, %code, %message, "a group's team site refused: looked up next scan");
            }
            Err(e) => return Err(e.into()),
        }
    }
    ctx.store.link_group_sites(&ctx.tenant, &links).await?;
    Ok(())
}
