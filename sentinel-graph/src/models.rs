//! Typed Graph resources. Each keeps the JSON it was read from (`raw`), and unknown
//! fields are tolerated, so nothing Graph sends is lost.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A Graph resource read from JSON, keeping its raw form.
pub trait GraphObject: DeserializeOwned + Send + 'static {
    fn set_raw(&mut self, raw: Value);

    /// Reads a resource, keeping `raw`.
    fn from_json(raw: Value) -> Result<Self, serde_json::Error> {
        // From a borrow: the typed fields copy only what they keep.
        let mut v = Self::deserialize(&raw)?;
        v.set_raw(raw);
        Ok(v)
    }
}

macro_rules! graph_object {
    ($($t:ty),*) => {$(
        impl GraphObject for $t {
            fn set_raw(&mut self, raw: Value) {
                self.raw = raw;
            }
        }
    )*};
}

graph_object!(User, Group, Site, Drive, DriveItem, Permission);

/// `@removed` on a directory object: `changed` (soft-deleted, restorable) or `deleted` (permanent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    pub reason: String,
}

impl Removed {
    pub fn is_permanent(&self) -> bool {
        self.reason == "deleted"
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedLicense {
    pub sku_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub mail: Option<String>,
    /// `Member` or `Guest`.
    pub user_type: Option<String>,
    pub account_enabled: Option<bool>,
    pub department: Option<String>,
    pub created_date_time: Option<String>,
    pub assigned_licenses: Option<Vec<AssignedLicense>>,
    #[serde(rename = "@removed")]
    pub removed: Option<Removed>,
    #[serde(skip)]
    pub raw: Value,
}

impl User {
    /// Guests: `userType: Guest`, or an `#EXT#` UPN when the type is not selected.
    pub fn is_guest(&self) -> bool {
        self.user_type.as_deref() == Some("Guest")
            || self
                .user_principal_name
                .as_deref()
                .is_some_and(|u| u.contains("#EXT#"))
    }
}

/// One entry of `members@delta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberDelta {
    pub id: String,
    #[serde(rename = "@odata.type")]
    pub odata_type: Option<String>,
    #[serde(rename = "@removed")]
    pub removed: Option<Removed>,
}

impl MemberDelta {
    pub fn is_group(&self) -> bool {
        self.odata_type.as_deref() == Some("#microsoft.graph.group")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    pub display_name: Option<String>,
    pub mail_nickname: Option<String>,
    pub mail: Option<String>,
    pub group_types: Option<Vec<String>>,
    pub security_enabled: Option<bool>,
    pub mail_enabled: Option<bool>,
    pub visibility: Option<String>,
    pub created_date_time: Option<String>,
    #[serde(rename = "members@delta")]
    pub members_delta: Option<Vec<MemberDelta>>,
    #[serde(rename = "@removed")]
    pub removed: Option<Removed>,
    #[serde(skip)]
    pub raw: Value,
}

impl Group {
    /// A Microsoft 365 group (`groupTypes` contains `Unified`).
    pub fn is_unified(&self) -> bool {
        self.group_types
            .as_ref()
            .is_some_and(|t| t.iter().any(|g| g == "Unified"))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Deleted {
    pub state: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Site {
    pub id: String,
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub web_url: Option<String>,
    pub created_date_time: Option<String>,
    pub last_modified_date_time: Option<String>,
    pub deleted: Option<Deleted>,
    #[serde(skip)]
    pub raw: Value,
}

/// A user, group, application or device identity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub id: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
}

/// A SharePoint principal (`siteUser`, `siteGroup`): carries a login name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharePointIdentity {
    pub id: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub login_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentitySet {
    pub user: Option<Identity>,
    pub group: Option<Identity>,
    pub application: Option<Identity>,
    pub device: Option<Identity>,
    pub site_user: Option<SharePointIdentity>,
    pub site_group: Option<SharePointIdentity>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    pub total: Option<i64>,
    pub used: Option<i64>,
    pub remaining: Option<i64>,
    pub deleted: Option<i64>,
    pub state: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Drive {
    pub id: String,
    pub name: Option<String>,
    /// `personal`, `business` or `documentLibrary`.
    pub drive_type: Option<String>,
    pub web_url: Option<String>,
    pub created_date_time: Option<String>,
    pub owner: Option<IdentitySet>,
    pub quota: Option<Quota>,
    #[serde(skip)]
    pub raw: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemReference {
    pub drive_id: Option<String>,
    pub drive_type: Option<String>,
    pub id: Option<String>,
    /// Never returned by delta: derive paths from parent ids.
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hashes {
    pub quick_xor_hash: Option<String>,
    pub sha1_hash: Option<String>,
    pub sha256_hash: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileFacet {
    pub mime_type: Option<String>,
    pub hashes: Option<Hashes>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FolderFacet {
    pub child_count: Option<i64>,
}

/// The `shared` facet. With `Prefer: hierarchicalsharing` an empty one marks the root
/// of a permission hierarchy that is not shared.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shared {
    pub scope: Option<String>,
    pub owner: Option<IdentitySet>,
    pub shared_by: Option<IdentitySet>,
    pub shared_date_time: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriveItem {
    pub id: String,
    /// Absent on deleted items in OneDrive for Business and SharePoint.
    pub name: Option<String>,
    pub size: Option<i64>,
    pub web_url: Option<String>,
    pub e_tag: Option<String>,
    pub c_tag: Option<String>,
    pub created_date_time: Option<String>,
    pub last_modified_date_time: Option<String>,
    pub created_by: Option<IdentitySet>,
    pub last_modified_by: Option<IdentitySet>,
    pub parent_reference: Option<ItemReference>,
    pub file: Option<FileFacet>,
    pub folder: Option<FolderFacet>,
    pub root: Option<Value>,
    pub deleted: Option<Deleted>,
    pub shared: Option<Shared>,
    #[serde(rename = "@microsoft.graph.sharedChanged")]
    pub shared_changed: Option<String>,
    #[serde(skip)]
    pub raw: Value,
}

impl DriveItem {
    pub fn is_deleted(&self) -> bool {
        self.deleted.is_some()
    }
    pub fn is_folder(&self) -> bool {
        self.folder.is_some() || self.root.is_some()
    }
    pub fn is_root(&self) -> bool {
        self.root.is_some()
    }
    pub fn parent_id(&self) -> Option<&str> {
        self.parent_reference.as_ref().and_then(|p| p.id.as_deref())
    }
    /// `@microsoft.graph.sharedChanged: "True"` (with `Prefer: deltashowsharingchanges`).
    pub fn sharing_changed(&self) -> bool {
        self.shared_changed
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharingLink {
    /// `view`, `edit`, `embed`, ...
    #[serde(rename = "type")]
    pub link_type: Option<String>,
    /// `anonymous`, `organization`, `existingAccess`, `users`.
    pub scope: Option<String>,
    /// A bearer secret for anonymous links: never store it in clear.
    pub web_url: Option<String>,
    pub prevents_download: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    pub email: Option<String>,
    pub sign_in_required: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    pub id: String,
    #[serde(default)]
    pub roles: Vec<String>,
    pub link: Option<SharingLink>,
    #[serde(rename = "grantedToV2")]
    pub granted_to_v2: Option<IdentitySet>,
    #[serde(rename = "grantedToIdentitiesV2")]
    pub granted_to_identities_v2: Option<Vec<IdentitySet>>,
    /// Deprecated for `grantedToV2` but still sent, and the only grantee in the examples of
    /// driveitem-list-permissions: read when `grantedToV2` is absent.
    pub granted_to: Option<IdentitySet>,
    /// Deprecated for `grantedToIdentitiesV2`; read when that is absent.
    pub granted_to_identities: Option<Vec<IdentitySet>>,
    pub invitation: Option<Invitation>,
    pub inherited_from: Option<ItemReference>,
    pub share_id: Option<String>,
    pub expiration_date_time: Option<String>,
    pub has_password: Option<bool>,
    #[serde(skip)]
    pub raw: Value,
}

impl Permission {
    /// Who the permission is granted to: `grantedToV2`, else the deprecated `grantedTo`.
    pub fn grantee(&self) -> Option<&IdentitySet> {
        self.granted_to_v2.as_ref().or(self.granted_to.as_ref())
    }

    /// Who a link is granted to: `grantedToIdentitiesV2`, else the deprecated
    /// `grantedToIdentities`.
    pub fn link_grantees(&self) -> &[IdentitySet] {
        self.granted_to_identities_v2
            .as_deref()
            .or(self.granted_to_identities.as_deref())
            .unwrap_or_default()
    }
}

/// Hex SHA-256 of a secret: what is kept instead of a sharing link's URL.
pub fn sha256_hex(s: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A permission's raw JSON with its bearer secrets (the link's `webUrl`, the `shareId`)
/// replaced by their SHA-256: safe to store or to show.
pub fn scrub_link_secrets(raw: &Value) -> Value {
    let mut v = raw.clone();
    if let Some(url) = v
        .pointer("/link/webUrl")
        .and_then(Value::as_str)
        .map(String::from)
    {
        v["link"]["webUrl"] = Value::Null;
        v["link"]["webUrlSha256"] = Value::String(sha256_hex(&url));
    }
    if let Some(share) = v.get("shareId").and_then(Value::as_str).map(String::from) {
        v["shareId"] = Value::Null;
        v["shareIdSha256"] = Value::String(sha256_hex(&share));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_kept_in_raw_and_deleted_items_need_no_name() {
        let v = serde_json::json!({"id": "1", "deleted": {"state": "deleted"}, "parentReference": {"driveId": "d"}, "newThing": 3});
        let item = DriveItem::from_json(v.clone()).expect("parse");
        assert!(item.is_deleted());
        assert_eq!(item.name, None);
        assert_eq!(item.raw["newThing"], 3);
        let bad = DriveItem::from_json(serde_json::json!({"name": "no id"}));
        assert!(
            bad.is_err(),
            "an item without id is rejected, not defaulted"
        );
    }
}
