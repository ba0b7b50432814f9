//! The other spellings Graph accepts for the routes we serve, as Microsoft's SDKs send them.
//!
//! Sources:
//! - Functions with or without parentheses, and fully qualified: "`/delta` is a shortcut for
//!   `/microsoft.graph.delta`" (learn.microsoft.com/graph/delta-query-overview, "Tip");
//!   `GET /users/delta()` and `GET /sites/getAllSites()` are what `msgraph-sdk` (PyPI) requests
//!   (its `users/delta/delta_request_builder.py`: `{+baseurl}/users/delta(){?...}`).
//! - A drive's root addressed as an item: `drives/{id}/items/root` (driveitem-get: "root" is an
//!   item id alias), as the SDKs do for `drives/{id}/items/root/delta()`.
//!

use axum::extract::Request;
use axum::http::Uri;

/// Functions we serve, by the name in their canonical path segment.
const FUNCTIONS: &[&str] = &["delta", "getAllSites"];

/// The canonical form of a Graph path, or `None` when it is already canonical (or unknown).
pub fn canonical_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v1.0/")?;
    let mut segments: Vec<String> = rest.split('/').map(canonical_segment).collect();
    // `drives/{id}/items/root/delta` is `drives/{id}/root/delta`; `drives/{id}/root` is the
    // root item, `drives/{id}/items/root`.
    if segments.len() == 5
        && segments[0] == "drives"
        && segments[2] == "items"
        && segments[3] == "root"
        && segments[4] == "delta"
    {
        segments.remove(2);
    } else if segments.len() >= 3
        && segments[0] == "drives"
        && segments[2] == "root"
        && segments.get(3).is_none_or(|s| s != "delta")
    {
        segments.insert(2, "items".to_string());
    }
    let canonical = format!("/v1.0/{}", segments.join("/"));
    (canonical != path).then_some(canonical)
}

fn canonical_segment(segment: &str) -> String {
    let decoded = segment.replace("%28", "(").replace("%29", ")");
    let bare = decoded.strip_suffix("()").unwrap_or(&decoded);
    let bare = bare.strip_prefix("microsoft.graph.").unwrap_or(bare);
    if FUNCTIONS.contains(&bare) {
        bare.to_string()
    } else {
        segment.to_string()
    }
}

/// Serves a request in another accepted spelling by its canonical route: applied before routing
/// (a parameter segment would otherwise capture `getAllSites()` as a site id), so the request
/// goes through the same middleware (auth, RU, throttling) and is logged as its route.
pub fn canonical_request(mut req: Request) -> Request {
    if let Some(path) = canonical_path(req.uri().path()) {
        let target = match req.uri().query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        if let Ok(uri) = target.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    req
}

#[cfg(test)]
mod tests {
    use super::canonical_path;

    #[test]
    fn sdk_spellings_map_to_our_routes() {
        let cases = [
            ("/v1.0/users/delta()", Some("/v1.0/users/delta")),
            (
                "/v1.0/groups/microsoft.graph.delta",
                Some("/v1.0/groups/delta"),
            ),
            (
                "/v1.0/groups/microsoft.graph.delta()",
                Some("/v1.0/groups/delta"),
            ),
            ("/v1.0/sites/delta%28%29", Some("/v1.0/sites/delta")),
            ("/v1.0/sites/getAllSites()", Some("/v1.0/sites/getAllSites")),
            (
                "/v1.0/sites/microsoft.graph.getAllSites()",
                Some("/v1.0/sites/getAllSites"),
            ),
            (
                "/v1.0/drives/b!x/items/root/delta()",
                Some("/v1.0/drives/b!x/root/delta"),
            ),
            (
                "/v1.0/drives/b!x/items/root/delta",
                Some("/v1.0/drives/b!x/root/delta"),
            ),
            ("/v1.0/drives/b!x/root", Some("/v1.0/drives/b!x/items/root")),
            (
                "/v1.0/drives/b!x/root/permissions",
                Some("/v1.0/drives/b!x/items/root/permissions"),
            ),
            ("/v1.0/drives/b!x/root/delta", None),
            ("/v1.0/users/delta", None),
            ("/v1.0/users/nodelta()", None),
            ("/v2.0/users/delta()", None),
        ];
        for (path, want) in cases {
            assert_eq!(canonical_path(path).as_deref(), want, "{path}");
        }
    }
}
