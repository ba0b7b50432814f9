//! Everything the simulator serves for the resources we read uses only the properties, and the
//! value kinds, of Microsoft's own v1.0 schema (`../shared/graph-metadata/v1.0-Prod.csdl`, derived
//! into `testkit/fixtures/graph-v1.0-schema.json`). The Learn resource pages print the same
//! schema as their "JSON representation"; an invented or misspelt property, a number sent as a
//! string, or a date Graph would not write fails here, whoever wrote the simulator.
mod common;

use common::{Sim, start};
use sentinel_testkit::graph_schema::violations;
use serde_json::Value;

const PREFER: &str = "hierarchicalsharing, deltashowremovedasdeleted, deltatraversepermissiongaps, deltashowsharingchanges";

fn check(kind: &str, values: &[Value], found: &mut Vec<String>, seen: &mut usize) {
    for v in values {
        *seen += 1;
        found.extend(violations(kind, v));
    }
}

async fn walk(s: &Sim) -> (usize, Vec<String>) {
    let (mut seen, mut found) = (0, Vec::new());
    // The directory, as a full round (every property we read) and as the default round.
    for (kind, path) in [
        (
            "user",
            "/v1.0/users/delta?$select=id,displayName,userPrincipalName,mail,userType,accountEnabled,department,createdDateTime,assignedLicenses",
        ),
        ("user", "/v1.0/users/delta"),
        (
            "group",
            "/v1.0/groups/delta?$select=id,displayName,mailNickname,mail,groupTypes,securityEnabled,mailEnabled,visibility,createdDateTime,members",
        ),
        ("group", "/v1.0/groups/delta"),
        ("site", "/v1.0/sites/getAllSites"),
        ("site", "/v1.0/sites/delta"),
    ] {
        let (values, _) = s.follow(path, &[]).await;
        assert!(!values.is_empty(), "{path} served nothing");
        check(kind, &values, &mut found, &mut seen);
    }
    let (sites, _) = s.follow("/v1.0/sites/getAllSites", &[]).await;
    let mut drives = Vec::new();
    for site in &sites {
        let id = site["id"].as_str().expect("site id");
        let r = s.get_raw(&format!("/v1.0/sites/{id}/drives"), &[]).await;
        if r.status() != 200 {
            continue; // a locked site
        }
        let page: Value = r.json().await.expect("json");
        drives.extend(page["value"].as_array().cloned().unwrap_or_default());
        let (subsites, _) = s.follow(&format!("/v1.0/sites/{id}/sites"), &[]).await;
        check("site", &subsites, &mut found, &mut seen);
    }
    check("drive", &drives, &mut found, &mut seen);
    let mut permissions_read = 0;
    for drive in drives.iter().take(6) {
        let id = drive["id"].as_str().expect("drive id");
        let (items, _) = s
            .follow(
                &format!("/v1.0/drives/{id}/root/delta"),
                &[("Prefer", PREFER)],
            )
            .await;
        check("driveItem", &items, &mut found, &mut seen);
        for item in items.iter().filter(|i| i["shared"].is_object()).take(40) {
            let path = format!(
                "/v1.0/drives/{id}/items/{}/permissions",
                item["id"].as_str().expect("item id")
            );
            let (perms, _) = s.follow(&path, &[]).await;
            permissions_read += perms.len();
            check("permission", &perms, &mut found, &mut seen);
        }
    }
    assert!(permissions_read > 0, "no permission was read");
    (seen, found)
}

#[tokio::test]
async fn every_resource_the_simulator_serves_fits_microsofts_v1_schema() {
    let s = start(31, |c| c.profile = sentinel_sim::Profile::Small).await;
    let (seen, found) = walk(&s).await;
    assert!(seen > 500, "only {seen} objects were checked");
    assert!(
        found.is_empty(),
        "{} departures from the v1.0 schema, first: {:#?}",
        found.len(),
        &found[..found.len().min(20)]
    );
}
