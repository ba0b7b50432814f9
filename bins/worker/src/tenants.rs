//! `sentinel-worker tenants ...`: the tenants one deployment scans with its one app
//! registration. Needs only `DATABASE_URL`; every change is written to `audit_events`.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use secrecy::{ExposeSecret, SecretString};
use sentinel_store::{AuditEvent, Store};
use serde_json::json;

use sentinel_pipeline::schedule_first_scan;

#[derive(Debug, clap::Subcommand)]
pub enum TenantsCommand {
    /// List every tenant: enabled, consent, budget band.
    List,
    /// Add a tenant (its id, or its domain as Entra knows it) and schedule its hourly scan,
    /// run at once, unless it has jobs already or `--no-scan` is given.
    Add {
        tenant: String,
        /// What admins call it.
        #[arg(long)]
        name: Option<String>,
        /// SharePoint budget band by license count, 1 (up to 1,000) to 5 (over 50,000).
        #[arg(long, value_parser = clap::value_parser!(i16).range(1..=5))]
        band: Option<i16>,
        /// Do not schedule a scan.
        #[arg(long)]
        no_scan: bool,
    },
    /// Let a tenant's jobs run again.
    Enable { tenant: String },
    /// Stop running a tenant's jobs (its data stays).
    Disable { tenant: String },
    /// Set a tenant's budget band (1 to 5), or `none` for the deployment's own settings.
    Band { tenant: String, band: String },
    /// Limit a reader (Entra object id or sign-in name) to the tenants granted to them, this
    /// one among them. Readers granted none see every tenant; admins always do.
    Grant { tenant: String, user: String },
    /// Take a granted tenant from a reader (with none left, they see every tenant again).
    Revoke { tenant: String, user: String },
}

async fn audit(
    store: &Store,
    action: &str,
    tenant: &str,
    details: serde_json::Value,
) -> Result<()> {
    store
        .audit(&AuditEvent {
            actor_name: Some("sentinel-worker (command line)".into()),
            action: action.into(),
            entity_type: Some("tenant".into()),
            entity_id: Some(tenant.into()),
            details,
            tenant_id: Some(tenant.into()),
            ..AuditEvent::default()
        })
        .await
        .context("writing the audit event")?;
    Ok(())
}

fn unknown(tenant: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "no tenant '{tenant}': `sentinel-worker tenants list` shows them, `tenants add` adds one"
    )
}

pub async fn run(database_url: &SecretString, command: TenantsCommand) -> Result<ExitCode> {
    let store = Store::connect(database_url.expose_secret(), 2)
        .await
        .context("connecting to DATABASE_URL")?;
    store.migrate().await.context("applying the schema")?;
    match command {
        TenantsCommand::List => {
            println!("tenant\tname\tenabled\tconsent\tband");
            for t in store.tenants().await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    t.tenant_id,
                    t.name.unwrap_or_default(),
                    t.enabled,
                    match t.consent_error {
                        Some(e) => format!("{} ({e})", t.consent_state),
                        None => t.consent_state,
                    },
                    t.budget_band.map_or("-".into(), |b| b.to_string()),
                );
            }
        }
        TenantsCommand::Add {
            tenant,
            name,
            band,
            no_scan,
        } => {
            let tenant = sentinel_store::checked_tenant_id(&tenant)?;
            if !store.register_tenant(&tenant, name.as_deref()).await? {
                bail!("tenant '{tenant}' is already added");
            }
            store.set_tenant_band(&tenant, band).await?;
            let scan = if no_scan {
                None
            } else {
                schedule_first_scan(&store, &tenant).await?
            };
            audit(
                &store,
                "tenant.add",
                &tenant,
                json!({"name": name, "band": band, "scan_job": scan}),
            )
            .await?;
            println!("added tenant {tenant}");
            if let Some(job) = scan {
                println!("scheduled its hourly scan (job {job}), to run at once");
            }
        }
        TenantsCommand::Enable { tenant } => {
            if !store.set_tenant_enabled(&tenant, true).await? {
                return Err(unknown(&tenant));
            }
            audit(&store, "tenant.enable", &tenant, json!({})).await?;
            println!("tenant {tenant} enabled");
        }
        TenantsCommand::Disable { tenant } => {
            if !store.set_tenant_enabled(&tenant, false).await? {
                return Err(unknown(&tenant));
            }
            audit(&store, "tenant.disable", &tenant, json!({})).await?;
            println!("tenant {tenant} disabled: its jobs wait until it is enabled");
        }
        TenantsCommand::Band { tenant, band } => {
            let band = match band.as_str() {
                "none" => None,
                b => match b.parse::<i16>() {
                    Ok(n) if (1..=5).contains(&n) => Some(n),
                    _ => bail!("a band is 1 to 5 (by license count), or none; got '{b}'"),
                },
            };
            if !store.set_tenant_band(&tenant, band).await? {
                return Err(unknown(&tenant));
            }
            audit(&store, "tenant.band", &tenant, json!({"band": band})).await?;
            println!(
                "tenant {tenant}: band {}",
                band.map_or("none".into(), |b| b.to_string())
            );
        }
        TenantsCommand::Grant { tenant, user } => {
            if user.trim().is_empty() {
                bail!("name the reader by their Entra object id or sign-in name");
            }
            if !store.grant_reader(&tenant, &user).await? {
                return Err(unknown(&tenant));
            }
            audit(
                &store,
                "tenant.grant_reader",
                &tenant,
                json!({"user": user}),
            )
            .await?;
            println!("{user} now sees tenant {tenant} (and only the tenants granted to them)");
        }
        TenantsCommand::Revoke { tenant, user } => {
            if !store.revoke_reader(&tenant, &user).await? {
                bail!("tenant '{tenant}' was not granted to '{user}'");
            }
            audit(
                &store,
                "tenant.revoke_reader",
                &tenant,
                json!({"user": user}),
            )
            .await?;
            println!("{user} no longer sees tenant {tenant}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
