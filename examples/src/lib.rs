//! Worked examples of the Sentinel crates, kept compiling and tested against the simulator.

pub mod exposure;

use futures::StreamExt;
use sentinel_graph::{
    BatchRequest, DeltaEvent, DeltaStart, DriveDeltaOptions, GraphClient, GraphError,
};

/// One anonymous ("anyone with the link") sharing link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnonymousLink {
    pub drive_id: String,
    pub item_id: String,
    pub item_name: String,
    /// `view` or `edit`.
    pub link_type: String,
    pub expires: Option<String>,
    pub has_password: bool,
}

/// Every drive of the tenant: each site's libraries (subsites' included: `getAllSites` lists
/// site collections only) and each user's OneDrive.
pub async fn all_drives(client: &GraphClient) -> Result<Vec<String>, GraphError> {
    let mut drives = Vec::new();
    let mut site_ids = Vec::new();
    let mut sites = client.all_sites();
    while let Some(page) = sites.next().await {
        site_ids.extend(page?.into_iter().map(|s| s.id));
    }
    while let Some(site) = site_ids.pop() {
        site_ids.extend(client.subsites(&site).await?.into_iter().map(|s| s.id));
        drives.extend(client.site_drives(&site).await?.into_iter().map(|d| d.id));
    }
    let mut users = client.users_delta(DeltaStart::Scratch, &["id"]);
    while let Some(event) = users.next().await {
        if let DeltaEvent::Page(page) = event? {
            for user in page.into_iter().filter(|u| u.removed.is_none()) {
                // Unlicensed users have no OneDrive: `None`, not an error.
                if let Some(drive) = client.user_drive(&user.id).await? {
                    drives.push(drive.id);
                }
            }
        }
    }
    Ok(drives)
}

/// Lists anonymous links at the lowest cost Graph allows: a hierarchical-sharing delta
/// marks the roots of permission hierarchies, and only the roots whose sharing scope is
/// `anonymous` get their permissions read, twenty per `$batch`.
pub async fn anonymous_links(client: &GraphClient) -> Result<Vec<AnonymousLink>, GraphError> {
    let options = DriveDeltaOptions {
        hierarchical_sharing: true,
        ..Default::default()
    };
    let mut candidates = Vec::new();
    for drive in all_drives(client).await? {
        let mut delta = client.drive_delta(&drive, DeltaStart::Scratch, &options)?;
        while let Some(event) = delta.next().await {
            if let DeltaEvent::Page(items) = event? {
                for item in items {
                    if item.shared.as_ref().and_then(|s| s.scope.as_deref()) == Some("anonymous") {
                        candidates.push((
                            drive.clone(),
                            item.id.clone(),
                            item.name.clone().unwrap_or_default(),
                        ));
                    }
                }
            }
        }
    }
    let requests = candidates
        .iter()
        .map(|(drive, item, _)| {
            Ok(BatchRequest::get(
                item.clone(),
                client.item_permissions_path(drive, item)?,
            ))
        })
        .collect::<Result<Vec<_>, GraphError>>()?;
    let mut links = Vec::new();
    for (resp, (drive, item, name)) in client.batch(requests).await?.into_iter().zip(&candidates) {
        if !resp.is_success() {
            return Err(GraphError::Api {
                status: resp.status,
                code: "batch".into(),
                message: format!("permissions of {item}"),
            });
        }
        for p in resp.body["value"].as_array().into_iter().flatten() {
            if p["link"]["scope"] == "anonymous" {
                links.push(AnonymousLink {
                    drive_id: drive.clone(),
                    item_id: item.clone(),
                    item_name: name.clone(),
                    link_type: p["link"]["type"].as_str().unwrap_or("unknown").to_string(),
                    expires: p["expirationDateTime"].as_str().map(String::from),
                    has_password: p["hasPassword"].as_bool().unwrap_or(false),
                });
            }
        }
    }
    Ok(links)
}
