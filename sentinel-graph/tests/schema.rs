//! Every property the client asks Graph for (`$select`) and every property its models read is
//! one Microsoft's v1.0 schema defines for that type (`../shared/graph-metadata/v1.0-Prod.csdl`,
//! derived into `testkit/fixtures/graph-v1.0-schema.json`). Graph answers an unknown `$select`
//! with 400, and a misspelt model field reads as absent forever: neither shows against a
//! simulator written by the same hands.
use sentinel_graph::models::*;
use sentinel_testkit::graph_schema::{knows, property_names};
use serde::Serialize;

/// The JSON property names a model reads: serializing its default writes every field.
fn fields_of<T: Serialize + Default>() -> Vec<String> {
    let value = serde_json::to_value(T::default()).expect("serializes");
    value
        .as_object()
        .expect("a model is an object")
        .keys()
        .filter(|k| !k.contains('@')) // annotations (`@removed`, `members@delta`)
        .cloned()
        .collect()
}

/// Fields read beyond the schema, each with the documented response that carries it (above).
fn documented_extras(fields: Vec<String>, extras: &[&str]) -> Vec<String> {
    for e in extras {
        assert!(
            fields.iter().any(|f| f == e),
            "{e} is no longer read: drop it from the extras"
        );
    }
    fields
        .into_iter()
        .filter(|f| !extras.contains(&f.as_str()))
        .collect()
}

fn unknown_to(graph_type: &str, names: &[String]) -> Vec<String> {
    assert!(
        knows(graph_type),
        "{graph_type} is not in the schema fixture"
    );
    let defined = property_names(graph_type);
    names
        .iter()
        .filter(|n| !defined.contains(n))
        .map(|n| format!("{graph_type}.{n}"))
        .collect()
}

#[test]
fn every_field_the_models_read_is_defined_by_the_v1_schema() {
    let pairs: Vec<(&str, Vec<String>)> = vec![
        ("user", fields_of::<User>()),
        ("assignedLicense", fields_of::<AssignedLicense>()),
        ("group", fields_of::<Group>()),
        // `deleted` is not in the schema: `sites/delta` adds it to removed sites (site-delta,
        // Example 1: `"deleted": {"state": "deleted"}`); the read keeps it out of this check.
        ("site", documented_extras(fields_of::<Site>(), &["deleted"])),
        ("deleted", fields_of::<Deleted>()),
        ("drive", fields_of::<Drive>()),
        ("quota", fields_of::<Quota>()),
        ("driveItem", fields_of::<DriveItem>()),
        ("itemReference", fields_of::<ItemReference>()),
        ("hashes", fields_of::<Hashes>()),
        ("file", fields_of::<FileFacet>()),
        ("folder", fields_of::<FolderFacet>()),
        ("shared", fields_of::<Shared>()),
        ("permission", fields_of::<Permission>()),
        ("sharingLink", fields_of::<SharingLink>()),
        ("sharingInvitation", fields_of::<Invitation>()),
        ("sharePointIdentitySet", fields_of::<IdentitySet>()),
        // Both identity types are open: SharePoint adds `email` to users and site users
        // (driveitem-list-permissions' owner and the permission examples print it on `user`).
        (
            "sharePointIdentity",
            documented_extras(fields_of::<SharePointIdentity>(), &["email"]),
        ),
        (
            "identity",
            documented_extras(fields_of::<Identity>(), &["email"]),
        ),
    ];
    let mut unknown = Vec::new();
    for (graph_type, names) in &pairs {
        assert!(!names.is_empty(), "{graph_type}: the model has no fields?");
        unknown.extend(unknown_to(graph_type, names));
    }
    assert!(
        unknown.is_empty(),
        "fields the v1.0 schema does not define: {unknown:?}"
    );
}

#[test]
fn every_property_the_client_selects_is_defined_by_the_v1_schema() {
    let mut unknown = Vec::new();
    for (graph_type, select) in [("user", User::SELECT), ("group", Group::SELECT)] {
        let names: Vec<String> = select.iter().map(|s| s.to_string()).collect();
        unknown.extend(unknown_to(graph_type, &names));
    }
    // `members` is the navigation property `groups/delta` selects to carry `members@delta`.
    unknown.extend(unknown_to("group", &["members".to_string()]));
    assert!(
        unknown.is_empty(),
        "$select names Graph would answer 400 to: {unknown:?}"
    );
}
