//! Microsoft's schema of Graph v1.0 as an oracle: does a JSON value use only the properties, and the
//! value kinds, that the metadata defines for its type?
//!
//! The schema is `fixtures/graph-v1.0-schema.json`, derived by `scripts/graph-schema.py` from
//! Microsoft's `v1.0-Prod.csdl` (never written by hand). What it cannot say (paging, special values,
//! which properties are absent) the Learn pages' examples and prose do; see docs/graph-conformance.md.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(serde::Deserialize)]
struct TypeDef {
    entity: bool,
    open: bool,
    properties: HashMap<String, String>,
    navigation: HashMap<String, String>,
}

#[derive(serde::Deserialize)]
struct Schema {
    types: HashMap<String, TypeDef>,
    enums: HashMap<String, Vec<String>>,
}

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        serde_json::from_str(include_str!("../fixtures/graph-v1.0-schema.json"))
            .expect("the committed schema fixture parses")
    })
}

/// Whether the schema knows `type_name` (e.g. `driveItem`).
pub fn knows(type_name: &str) -> bool {
    schema().types.contains_key(type_name)
}

/// The property (or navigation property) names the schema defines for `type_name`.
pub fn property_names(type_name: &str) -> Vec<String> {
    let t = &schema().types[type_name];
    t.properties
        .keys()
        .chain(t.navigation.keys())
        .cloned()
        .collect()
}

/// Every way `value` departs from the schema of `type_name`, each as `path: what`. Empty when it
/// conforms. Entity types are held to their declared properties (see `check_object`). Annotations (`@odata.*`, `members@delta`, `@microsoft.graph.*`) are not properties and
/// are not checked; `null` is accepted anywhere.
pub fn violations(type_name: &str, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check_type(type_name, value, type_name, &mut out);
    out
}

fn check_type(type_name: &str, value: &Value, path: &str, out: &mut Vec<String>) {
    let Some(object) = value.as_object() else {
        if !value.is_null() {
            out.push(format!(
                "{path}: a {type_name} must be an object, got {value}"
            ));
        }
        return;
    };
    // A subtype may be served where its base is declared, and says so.
    let actual = object
        .get("@odata.type")
        .and_then(Value::as_str)
        .and_then(|t| t.strip_prefix("#microsoft.graph."))
        .filter(|t| knows(t))
        .unwrap_or(type_name);
    let Some(def) = schema().types.get(actual) else {
        out.push(format!(
            "{path}: type {actual} is not in the schema fixture"
        ));
        return;
    };
    check_object(def, actual, object, path, out);
}

fn check_object(
    def: &TypeDef,
    name: &str,
    object: &Map<String, Value>,
    path: &str,
    out: &mut Vec<String>,
) {
    for (key, v) in object {
        if key.contains('@') {
            continue;
        }
        let here = format!("{path}.{key}");
        match def.properties.get(key).or_else(|| def.navigation.get(key)) {
            Some(t) => check_value(t, v, &here, out),
            // Open complex types (identity, identitySet) carry more than they declare, as
            // SharePoint's grantees do. Open entity types (user, group, driveItem) take dynamic
            // properties only as directory extensions; anything else is a misspelling.
            None if def.open && (!def.entity || key.starts_with("extension_")) => {}
            None => out.push(format!("{here}: {name} has no property {key}")),
        }
    }
}

fn check_value(csdl_type: &str, value: &Value, path: &str, out: &mut Vec<String>) {
    if value.is_null() {
        return;
    }
    if let Some(inner) = csdl_type
        .strip_prefix("Collection(")
        .and_then(|t| t.strip_suffix(')'))
    {
        match value.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    check_value(inner, item, &format!("{path}[{i}]"), out);
                }
            }
            None => out.push(format!("{path}: {csdl_type} must be an array, got {value}")),
        }
        return;
    }
    let local = csdl_type
        .strip_prefix("graph.")
        .or_else(|| csdl_type.strip_prefix("microsoft.graph."));
    let ok = match csdl_type {
        "Edm.String" | "Edm.Guid" | "Edm.Binary" | "Edm.Duration" | "Edm.TimeOfDay" => {
            value.is_string()
        }
        "Edm.DateTimeOffset" => value.as_str().is_some_and(is_date_time),
        "Edm.Date" => value.as_str().is_some_and(|s| is_date(s) && s.len() == 10),
        "Edm.Boolean" => value.is_boolean(),
        "Edm.Int16" | "Edm.Int32" | "Edm.Int64" | "Edm.Byte" => value.is_i64() || value.is_u64(),
        "Edm.Double" | "Edm.Single" | "Edm.Decimal" => value.is_number(),
        _ => match local {
            Some(t) if schema().types.contains_key(t) => {
                check_type(t, value, path, out);
                return;
            }
            Some(t) if schema().enums.contains_key(t) => {
                let members = &schema().enums[t];
                // Flags enums are written as comma-separated members.
                value
                    .as_str()
                    .is_some_and(|s| s.split(',').all(|m| members.iter().any(|x| x == m.trim())))
            }
            // Types outside the resources we read (and Edm.Stream, Edm.Geography...) are not
            // checked deeper.
            _ => true,
        },
    };
    if !ok {
        out.push(format!("{path}: {value} is not a valid {csdl_type}"));
    }
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && b[4] == b'-'
        && b[7] == b'-'
        && [0, 1, 2, 3, 5, 6, 8, 9]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
}

/// RFC 3339 as Graph writes it: a date, `T`, a time, and `Z` or an offset.
fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    is_date(s)
        && b.len() >= 20
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (s.ends_with('Z') || b[19..].contains(&b'+') || b[19..].contains(&b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_misspelt_property_or_a_wrong_kind_is_reported_and_annotations_are_not() {
        let ok = json!({"id": "1", "displayName": "A", "accountEnabled": true,
            "assignedLicenses": [{"skuId": "c7df2760-2c81-4ef7-b578-5b5392b571df"}],
            "@odata.type": "#microsoft.graph.user"});
        assert!(
            violations("user", &ok).is_empty(),
            "{:?}",
            violations("user", &ok)
        );
        let bad = json!({"id": "1", "displayname": "A", "accountEnabled": "yes",
            "createdDateTime": "yesterday", "assignedLicenses": {"skuId": "x"}});
        let found = violations("user", &bad);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found.iter().any(|v| v.contains("no property displayname")));
    }

    #[test]
    fn open_types_and_subtypes_are_honoured() {
        // identitySet is open; a sharePointIdentitySet says so and may carry siteUser.
        let v = json!({"user": {"id": "1", "displayName": "A", "email": "a@b"},
            "siteUser": {"loginName": "i:0#.f|membership|a@b", "displayName": "A"},
            "@odata.type": "#microsoft.graph.sharePointIdentitySet"});
        assert!(
            violations("identitySet", &v).is_empty(),
            "{:?}",
            violations("identitySet", &v)
        );
        let enum_bad = json!({"roles": ["read"], "link": {"type": "view", "scope": "everyone"}});
        // sharingLink.scope is a string in the schema, not an enum: only the kind is checked.
        assert!(violations("permission", &enum_bad).is_empty());
        assert_eq!(violations("permission", &json!({"roles": "read"})).len(), 1);
    }
}
