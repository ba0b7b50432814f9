//! Typed Graph resources. Each keeps the JSON it was read from (`raw`), and unknown
//! fields are tolerated, so nothing Graph sends is lost.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A Graph resource read from JSON, keeping its raw form.
pub trait GraphObject: DeserializeOwned + Send + 'static {
    /// Keeps the object's JSON as Graph sent it.
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
    /// Graph's `reason`.
    pub reason: String,
}

impl Removed {
    /// Whether the object was deleted for good (`@removed.reason` is `deleted`), not soft-deleted.
    pub fn is_permanent(&self) -> bool {
        self.reason == "deleted"
    }
}

/// A license assigned to a user (`assignedLicense`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedLicense {
    /// Graph's `skuId`.
    pub sku_id: Option<String>,
}

/// A user (`user`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Graph's `id`.
    pub id: String,
    /// Graph's `displayName`.
    pub display_name: Option<String>,
    /// Graph's `userPrincipalName`.
    pub user_principal_name: Option<String>,
    /// Graph's `mail`.
    pub mail: Option<String>,
    /// `Member` or `Guest`.
    pub user_type: Option<String>,
    /// Graph's `accountEnabled`.
    pub account_enabled: Option<bool>,
    /// Graph's `department`.
    pub department: Option<String>,
    /// Graph's `createdDateTime`.
    pub created_date_time: Option<String>,
    /// Graph's `assignedLicenses`.
    pub assigned_licenses: Option<Vec<AssignedLicense>>,
    /// Graph's `@removed`.
    #[serde(rename = "@removed")]
    pub removed: Option<Removed>,
    /// The whole object as Graph sent it.
    #[serde(skip)]
    pub raw: Value,
}

impl User {
    /// The `$select` that reads every property this model keeps (`id` is always returned).
    pub const SELECT: &'static [&'static str] = &[
        "displayName",
        "userPrincipalName",
        "mail",
        "userType",
        "accountEnabled",
        "department",
        "createdDateTime",
        "assignedLicenses",
    ];

    /// Guests: `userType: Guest`, or an `#EXT#` UPN when the type is not selected.
    pub fn is_guest(&self) -> bool {
        self.user_type.as_deref() == Some("Guest")
            || self
                .user_principal_name
                .as_deref()
                .is_some_and(|u| u.contains("#EXT#"))
    }
}

/// One entry of `members@delta` or `owners@delta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberDelta {
    /// Graph's `id`.
    pub id: String,
    /// Graph's `@odata.type`.
    #[serde(rename = "@odata.type")]
    pub odata_type: Option<String>,
    /// Graph's `@removed`.
    #[serde(rename = "@removed")]
    pub removed: Option<Removed>,
}

impl MemberDelta {
    /// Whether the member is a group.
    pub fn is_group(&self) -> bool {
        self.odata_type.as_deref() == Some("#microsoft.graph.group")
    }
}

/// A group (`group`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Graph's `id`.
    pub id: String,
    /// Graph's `displayName`.
    pub display_name: Option<String>,
    /// Graph's `mailNickname`.
    pub mail_nickname: Option<String>,
    /// Graph's `mail`.
    pub mail: Option<String>,
    /// Graph's `groupTypes`.
    pub group_types: Option<Vec<String>>,
    /// Graph's `securityEnabled`.
    pub security_enabled: Option<bool>,
    /// Graph's `mailEnabled`.
    pub mail_enabled: Option<bool>,
    /// Graph's `visibility`.
    pub visibility: Option<String>,
    /// Graph's `createdDateTime`.
    pub created_date_time: Option<String>,
    /// Graph's `members@delta`.
    #[serde(rename = "members@delta")]
    pub members_delta: Option<Vec<MemberDelta>>,
    /// Graph's `owners@delta` (group-delta: any directoryObject-collection relationship, such as
    /// owners, is tracked like members when selected).
    #[serde(rename = "owners@delta")]
    pub owners_delta: Option<Vec<MemberDelta>>,
    /// Graph's `@removed`.
    #[serde(rename = "@removed")]
    pub removed: Option<Removed>,
    /// The whole object as Graph sent it.
    #[serde(skip)]
    pub raw: Value,
}

impl Group {
    /// The `$select` that reads every property this model keeps, `members` aside.
    pub const SELECT: &'static [&'static str] = &[
        "displayName",
        "mailNickname",
        "mail",
        "groupTypes",
        "securityEnabled",
        "mailEnabled",
        "visibility",
        "createdDateTime",
    ];

    /// A Microsoft 365 group (`groupTypes` contains `Unified`).
    pub fn is_unified(&self) -> bool {
        self.group_types
            .as_ref()
            .is_some_and(|t| t.iter().any(|g| g == "Unified"))
    }
}

/// `@removed`: the object left the round (`reason`: `changed` or `deleted`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Deleted {
    /// Graph's `state`.
    pub state: Option<String>,
}

/// A site (`site`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Site {
    /// Graph's `id`.
    pub id: String,
    /// Graph's `name`.
    pub name: Option<String>,
    /// Graph's `displayName`.
    pub display_name: Option<String>,
    /// Graph's `webUrl`.
    pub web_url: Option<String>,
    /// Graph's `createdDateTime`.
    pub created_date_time: Option<String>,
    /// Graph's `lastModifiedDateTime`.
    pub last_modified_date_time: Option<String>,
    /// Graph's `deleted`.
    pub deleted: Option<Deleted>,
    /// The whole object as Graph sent it.
    #[serde(skip)]
    pub raw: Value,
}

/// A user, group, application or device identity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// Graph's `id`.
    pub id: Option<String>,
    /// Graph's `displayName`.
    pub display_name: Option<String>,
    /// Graph's `email`.
    pub email: Option<String>,
}

/// A SharePoint principal (`siteUser`, `siteGroup`): carries a login name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharePointIdentity {
    /// Graph's `id`.
    pub id: Option<String>,
    /// Graph's `displayName`.
    pub display_name: Option<String>,
    /// Graph's `email`.
    pub email: Option<String>,
    /// Graph's `loginName`.
    pub login_name: Option<String>,
}

/// Who a permission is granted to (`identitySet`; `sharePointIdentitySet` adds `siteUser` and `siteGroup`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentitySet {
    /// Graph's `user`.
    pub user: Option<Identity>,
    /// Graph's `group`.
    pub group: Option<Identity>,
    /// Graph's `application`.
    pub application: Option<Identity>,
    /// Graph's `device`.
    pub device: Option<Identity>,
    /// Graph's `siteUser`.
    pub site_user: Option<SharePointIdentity>,
    /// Graph's `siteGroup`.
    pub site_group: Option<SharePointIdentity>,
}

/// A drive's quota (`quota`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    /// Graph's `total`.
    pub total: Option<i64>,
    /// Graph's `used`.
    pub used: Option<i64>,
    /// Graph's `remaining`.
    pub remaining: Option<i64>,
    /// Graph's `deleted`.
    pub deleted: Option<i64>,
    /// Graph's `state`.
    pub state: Option<String>,
}

/// A drive (`drive`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Drive {
    /// Graph's `id`.
    pub id: String,
    /// Graph's `name`.
    pub name: Option<String>,
    /// `personal`, `business` or `documentLibrary`.
    pub drive_type: Option<String>,
    /// Graph's `webUrl`.
    pub web_url: Option<String>,
    /// Graph's `createdDateTime`.
    pub created_date_time: Option<String>,
    /// Graph's `owner`.
    pub owner: Option<IdentitySet>,
    /// Graph's `quota`.
    pub quota: Option<Quota>,
    /// The whole object as Graph sent it.
    #[serde(skip)]
    pub raw: Value,
}

/// Where an item is (`itemReference`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemReference {
    /// Graph's `driveId`.
    pub drive_id: Option<String>,
    /// Graph's `driveType`.
    pub drive_type: Option<String>,
    /// Graph's `id`.
    pub id: Option<String>,
    /// Never returned by delta: derive paths from parent ids.
    pub path: Option<String>,
}

/// An item's hashes (`hashes`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hashes {
    /// Graph's `quickXorHash`.
    pub quick_xor_hash: Option<String>,
    /// Graph's `sha1Hash`.
    pub sha1_hash: Option<String>,
    /// Graph's `sha256Hash`.
    pub sha256_hash: Option<String>,
}

/// The `file` facet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileFacet {
    /// Graph's `mimeType`.
    pub mime_type: Option<String>,
    /// Graph's `hashes`.
    pub hashes: Option<Hashes>,
}

/// The `folder` facet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FolderFacet {
    /// Graph's `childCount`.
    pub child_count: Option<i64>,
}

/// The `shared` facet. With `Prefer: hierarchicalsharing` an empty one marks the root
/// of a permission hierarchy that is not shared.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shared {
    /// Graph's `scope`.
    pub scope: Option<String>,
    /// Graph's `owner`.
    pub owner: Option<IdentitySet>,
    /// Graph's `sharedBy`.
    pub shared_by: Option<IdentitySet>,
    /// Graph's `sharedDateTime`.
    pub shared_date_time: Option<String>,
}

/// A drive item (`driveItem`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriveItem {
    /// Graph's `id`.
    pub id: String,
    /// Absent on deleted items in OneDrive for Business and SharePoint.
    pub name: Option<String>,
    /// Graph's `size`.
    pub size: Option<i64>,
    /// Graph's `webUrl`.
    pub web_url: Option<String>,
    /// Graph's `eTag`.
    pub e_tag: Option<String>,
    /// Graph's `cTag`.
    pub c_tag: Option<String>,
    /// Graph's `createdDateTime`.
    pub created_date_time: Option<String>,
    /// Graph's `lastModifiedDateTime`.
    pub last_modified_date_time: Option<String>,
    /// Graph's `createdBy`.
    pub created_by: Option<IdentitySet>,
    /// Graph's `lastModifiedBy`.
    pub last_modified_by: Option<IdentitySet>,
    /// Graph's `parentReference`.
    pub parent_reference: Option<ItemReference>,
    /// Graph's `file`.
    pub file: Option<FileFacet>,
    /// Graph's `folder`.
    pub folder: Option<FolderFacet>,
    /// Graph's `root`.
    pub root: Option<Value>,
    /// Graph's `deleted`.
    pub deleted: Option<Deleted>,
    /// Graph's `shared`.
    pub shared: Option<Shared>,
    /// Graph's `@microsoft.graph.sharedChanged`.
    #[serde(rename = "@microsoft.graph.sharedChanged")]
    pub shared_changed: Option<String>,
    /// The whole object as Graph sent it.
    #[serde(skip)]
    pub raw: Value,
}

impl DriveItem {
    /// Whether the item is a tombstone (`deleted` facet).
    pub fn is_deleted(&self) -> bool {
        self.deleted.is_some()
    }
    /// Whether the item is a folder (or the root).
    pub fn is_folder(&self) -> bool {
        self.folder.is_some() || self.root.is_some()
    }
    /// Whether the item is its drive's root.
    pub fn is_root(&self) -> bool {
        self.root.is_some()
    }
    /// The parent's id, if any.
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

/// A sharing link (`sharingLink`).
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
    /// Graph's `preventsDownload`.
    pub prevents_download: Option<bool>,
}

/// An invitation (`sharingInvitation`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    /// Graph's `email`.
    pub email: Option<String>,
    /// Graph's `signInRequired`.
    pub sign_in_required: Option<bool>,
}

/// A permission (`permission`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    /// Graph's `id`.
    pub id: String,
    /// Graph's `roles`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Graph's `link`.
    pub link: Option<SharingLink>,
    /// Graph's `grantedToV2`.
    #[serde(rename = "grantedToV2")]
    pub granted_to_v2: Option<IdentitySet>,
    /// Graph's `grantedToIdentitiesV2`.
    #[serde(rename = "grantedToIdentitiesV2")]
    pub granted_to_identities_v2: Option<Vec<IdentitySet>>,
    /// Deprecated for `grantedToV2` but still sent, and the only grantee in the examples of
    /// driveitem-list-permissions: read when `grantedToV2` is absent.
    pub granted_to: Option<IdentitySet>,
    /// Deprecated for `grantedToIdentitiesV2`; read when that is absent.
    pub granted_to_identities: Option<Vec<IdentitySet>>,
    /// Graph's `invitation`.
    pub invitation: Option<Invitation>,
    /// Graph's `inheritedFrom`.
    pub inherited_from: Option<ItemReference>,
    /// Graph's `shareId`.
    pub share_id: Option<String>,
    /// Graph's `expirationDateTime`.
    pub expiration_date_time: Option<String>,
    /// Graph's `hasPassword`.
    pub has_password: Option<bool>,
    /// The whole object as Graph sent it.
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
