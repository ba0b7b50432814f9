//! Typed calls for the resources Sentinel reads.

use futures::stream::BoxStream;
use url::Url;

use crate::client::GraphClient;
use crate::delta::{DeltaEvent, DeltaStart, delta_stream, paged};
use crate::error::GraphError;
use crate::models::*;

/// Options of a drive delta round.
#[derive(Debug, Clone, Default)]
pub struct DriveDeltaOptions {
    /// `Prefer: hierarchicalsharing`: sharing facets only on permission-hierarchy roots
    /// and items whose sharing changed (needs Sites.FullControl.All).
    pub hierarchical_sharing: bool,
    /// `Prefer: deltashowremovedasdeleted, deltatraversepermissiongaps, deltashowsharingchanges`:
    /// items that changed because of sharing carry `@microsoft.graph.sharedChanged`.
    pub show_sharing_changes: bool,
    /// `Prefer: deltaExcludeParent`: an incremental round leaves out the parent folders of each
    /// change (driveitem-delta; the root may still come, Graph Explorer #4052).
    pub exclude_parents: bool,
    /// `$top` of the first request (Graph may ignore it on later rounds).
    pub top: Option<u32>,
    /// `$select` of the first request; the tokens carry it to later pages.
    pub select: Option<Vec<String>>,
}

impl DriveDeltaOptions {
    fn prefer(&self) -> Option<String> {
        let mut v = Vec::new();
        if self.hierarchical_sharing {
            v.push("hierarchicalsharing");
        }
        if self.show_sharing_changes {
            v.extend([
                "deltashowremovedasdeleted",
                "deltatraversepermissiongaps",
                "deltashowsharingchanges",
            ]);
        }
        if self.exclude_parents {
            v.push("deltaExcludeParent");
        }
        (!v.is_empty()).then(|| v.join(", "))
    }
}

/// Checks an id taken from input before it becomes a path segment: it can never
/// change which Graph path is called.
pub fn validate_id(kind: &str, id: &str) -> Result<(), GraphError> {
    if id.is_empty()
        || id.len() > 512
        || id == "."
        || id.contains("..")
        || id.contains(['/', '\\', '?', '#', '%'])
        || id.chars().any(char::is_control)
    {
        return Err(GraphError::InvalidArgument(format!(
            "invalid {kind} id: {id:?}"
        )));
    }
    Ok(())
}

fn join_query(path: String, params: &[(&str, String)]) -> String {
    if params.is_empty() {
        return path;
    }
    let q: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    format!("{path}?{}", q.join("&"))
}

fn encode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes())
        .collect::<String>()
        .replace("%2C", ",")
}

impl GraphClient {
    /// `/{segments...}` under the Graph root, each segment percent-encoded.
    fn path(&self, segments: &[&str]) -> Result<String, GraphError> {
        let mut url: Url = self.config().graph_base_url.clone();
        url.path_segments_mut()
            .map_err(|_| GraphError::Config("GRAPH_BASE_URL cannot be a base".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(self.relative(&url))
    }

    async fn get_object<T: GraphObject>(&self, path: &str) -> Result<T, GraphError> {
        let url = self.resolve(path)?;
        let fetched = self.get(&url, &[]).await?;
        T::from_json(fetched.body)
            .map_err(|e| GraphError::BadResponse(format!("unexpected object shape: {e}")))
    }

    async fn get_list<T: GraphObject>(&self, path: String) -> Result<Vec<T>, GraphError> {
        use futures::TryStreamExt;
        let pages: Vec<Vec<T>> = paged::<T>(self.clone(), path).try_collect().await?;
        Ok(pages.into_iter().flatten().collect())
    }

    /// `GET /users/delta`: members and guests; `@removed` for soft- and hard-deleted users.
    pub fn users_delta(
        &self,
        start: DeltaStart,
        select: &[&str],
    ) -> BoxStream<'static, Result<DeltaEvent<User>, GraphError>> {
        let params: Vec<(&str, String)> = if select.is_empty() {
            vec![]
        } else {
            vec![("$select", select.join(","))]
        };
        delta_stream(
            self.clone(),
            join_query("/users/delta".into(), &params),
            "/users/delta?$deltatoken=latest".into(),
            start,
            Vec::new(),
        )
    }

    /// `GET /groups/delta`; with `with_members`, pages carry `members@delta` and `owners@delta`
    /// (a large group may appear on several pages: merge, don't overwrite).
    pub fn groups_delta(
        &self,
        start: DeltaStart,
        select: &[&str],
        with_members: bool,
    ) -> BoxStream<'static, Result<DeltaEvent<Group>, GraphError>> {
        let mut fields: Vec<&str> = select.to_vec();
        if with_members && !fields.contains(&"members") {
            if fields.is_empty() {
                fields.extend(Group::SELECT);
            }
            fields.extend(["members", "owners"]);
        }
        let params: Vec<(&str, String)> = if fields.is_empty() {
            vec![]
        } else {
            vec![("$select", fields.join(","))]
        };
        delta_stream(
            self.clone(),
            join_query("/groups/delta".into(), &params),
            "/groups/delta?$deltatoken=latest".into(),
            start,
            Vec::new(),
        )
    }

    /// `GET /sites/delta`: deleted sites carry `deleted`.
    pub fn sites_delta(
        &self,
        start: DeltaStart,
    ) -> BoxStream<'static, Result<DeltaEvent<Site>, GraphError>> {
        delta_stream(
            self.clone(),
            "/sites/delta".into(),
            "/sites/delta?token=latest".into(),
            start,
            Vec::new(),
        )
    }

    /// `GET /sites/getAllSites`, a page at a time.
    pub fn all_sites(&self) -> BoxStream<'static, Result<Vec<Site>, GraphError>> {
        paged(self.clone(), "/sites/getAllSites".into())
    }

    /// The site `site_id` (`GET /sites/{id}`; `root` for the tenant's root site).
    pub async fn site(&self, site_id: &str) -> Result<Site, GraphError> {
        validate_id("site", site_id)?;
        self.get_object(&self.path(&["sites", site_id])?).await
    }

    /// The document libraries of a site.
    pub async fn site_drives(&self, site_id: &str) -> Result<Vec<Drive>, GraphError> {
        validate_id("site", site_id)?;
        self.get_list(self.path(&["sites", site_id, "drives"])?)
            .await
    }

    /// The direct subsites of a site (`GET /sites/{id}/sites`). `getAllSites` and
    /// `sites/delta` list site collections only: each subsite is found under its parent.
    pub async fn subsites(&self, site_id: &str) -> Result<Vec<Site>, GraphError> {
        validate_id("site", site_id)?;
        self.get_list(self.path(&["sites", site_id, "sites"])?)
            .await
    }

    /// Application permissions granted on a site.
    pub async fn site_permissions(&self, site_id: &str) -> Result<Vec<Permission>, GraphError> {
        validate_id("site", site_id)?;
        self.get_list(self.path(&["sites", site_id, "permissions"])?)
            .await
    }

    /// A user's OneDrive; `None` when the user has none (unlicensed: Graph answers 404).
    pub async fn user_drive(&self, user_id: &str) -> Result<Option<Drive>, GraphError> {
        validate_id("user", user_id)?;
        match self
            .get_object(&self.path(&["users", user_id, "drive"])?)
            .await
        {
            Ok(d) => Ok(Some(d)),
            Err(GraphError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A Microsoft 365 group's team site (`GET /groups/{id}/sites/root`: site-get, "Access a
    /// group's team site"); `None` when the group has none (404).
    pub async fn group_root_site(&self, group_id: &str) -> Result<Option<Site>, GraphError> {
        validate_id("group", group_id)?;
        match self
            .get_object(&self.path(&["groups", group_id, "sites", "root"])?)
            .await
        {
            Ok(s) => Ok(Some(s)),
            Err(GraphError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The drive `drive_id` (`GET /drives/{id}`).
    pub async fn drive(&self, drive_id: &str) -> Result<Drive, GraphError> {
        validate_id("drive", drive_id)?;
        self.get_object(&self.path(&["drives", drive_id])?).await
    }

    /// `GET /drives/{id}/root/delta` as a stream of pages, resyncs and the final deltaLink.
    pub fn drive_delta(
        &self,
        drive_id: &str,
        start: DeltaStart,
        options: &DriveDeltaOptions,
    ) -> Result<BoxStream<'static, Result<DeltaEvent<DriveItem>, GraphError>>, GraphError> {
        validate_id("drive", drive_id)?;
        let base = self.path(&["drives", drive_id, "root", "delta"])?;
        let mut params = Vec::new();
        if let Some(t) = options.top {
            params.push(("$top", t.to_string()));
        }
        if let Some(s) = &options.select {
            params.push(("$select", s.join(",")));
        }
        let headers = options
            .prefer()
            .map(|p| vec![("Prefer".to_string(), p)])
            .unwrap_or_default();
        Ok(delta_stream(
            self.clone(),
            join_query(base.clone(), &params),
            format!("{base}?token=latest"),
            start,
            headers,
        ))
    }

    /// The item `item_id` of drive `drive_id` (`GET /drives/{d}/items/{i}`).
    pub async fn item(&self, drive_id: &str, item_id: &str) -> Result<DriveItem, GraphError> {
        validate_id("drive", drive_id)?;
        validate_id("item", item_id)?;
        self.get_object(&self.path(&["drives", drive_id, "items", item_id])?)
            .await
    }

    /// Every permission of an item, inherited ones included (5 RU).
    pub async fn item_permissions(
        &self,
        drive_id: &str,
        item_id: &str,
    ) -> Result<Vec<Permission>, GraphError> {
        validate_id("drive", drive_id)?;
        validate_id("item", item_id)?;
        self.get_list(self.path(&["drives", drive_id, "items", item_id, "permissions"])?)
            .await
    }

    /// The relative URL of an item's permissions, for `$batch`.
    pub fn item_permissions_path(
        &self,
        drive_id: &str,
        item_id: &str,
    ) -> Result<String, GraphError> {
        validate_id("drive", drive_id)?;
        validate_id("item", item_id)?;
        let full = self.path(&["drives", drive_id, "items", item_id, "permissions"])?;
        Ok(full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_change_the_path_are_rejected() {
        for bad in ["", "..", "a/b", "a?b", "a#b", "a%2Fb", "a\\b", "x\n"] {
            assert!(validate_id("item", bad).is_err(), "{bad:?} accepted");
        }
        for ok in ["01ABCDEF", "b!xYz-_", "contoso.sharepoint.com,1234,5678"] {
            assert!(validate_id("site", ok).is_ok(), "{ok:?} rejected");
        }
    }
}
