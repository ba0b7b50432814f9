//! The documented resource-unit cost of each Graph request, so callers can budget.
//!
//! Source: "Avoid getting throttled or blocked in SharePoint Online" and
//! "Microsoft Graph throttling limits" (directory).

/// Which throttling budget a request draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Budget {
    /// SharePoint and OneDrive, per minute.
    Sharepoint,
    /// Directory (users, groups), per 10 seconds.
    Directory,
}

/// RU cost and budget of a GET to `path_and_query` (relative to the version root,
/// e.g. `/drives/b!x/root/delta?token=..`).
pub fn request_cost(path_and_query: &str) -> (Budget, u32) {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let path = path.trim_end_matches('/');
    let has = |k: &str| {
        query
            .split('&')
            .any(|p| matches!(p.split('=').next(), Some(n) if n == k || n == k.replace('$', "%24")))
    };
    if path.starts_with("/users/delta") || path.starts_with("/groups/delta") {
        return (Budget::Directory, if has("$select") { 1 } else { 2 });
    }
    if path.ends_with("/permissions") || (has("$expand") && query.contains("permissions")) {
        return (Budget::Sharepoint, 5);
    }
    if path.ends_with("/delta") {
        // A delta request carrying a token costs 1, one that starts a round costs 2.
        return (Budget::Sharepoint, if has("token") { 1 } else { 2 });
    }
    // Collections ("multi-item queries": a site's libraries or subsites, a folder's children).
    let collection = path.ends_with("/drives")
        || path.ends_with("/children")
        || (path.starts_with("/sites/") && path.ends_with("/sites"));
    // `oneDrive.getAllSites` is where getAllSites' nextLink leads (site-getallsites' example).
    let all_sites = path == "/sites/getAllSites" || path == "/sites/oneDrive.getAllSites";
    if all_sites || collection {
        return (Budget::Sharepoint, 2);
    }
    (Budget::Sharepoint, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_costs() {
        assert_eq!(
            request_cost("/drives/b!1/root/delta"),
            (Budget::Sharepoint, 2)
        );
        assert_eq!(
            request_cost("/drives/b!1/root/delta?token=abc"),
            (Budget::Sharepoint, 1)
        );
        assert_eq!(
            request_cost("/drives/b!1/items/01/permissions"),
            (Budget::Sharepoint, 5)
        );
        assert_eq!(
            request_cost("/drives/b!1/items/01?$expand=permissions"),
            (Budget::Sharepoint, 5)
        );
        assert_eq!(
            request_cost("/sites/getAllSites?$top=10"),
            (Budget::Sharepoint, 2)
        );
        assert_eq!(
            request_cost("/sites/oneDrive.getAllSites?$skiptoken=U1BH"),
            (Budget::Sharepoint, 2)
        );
        assert_eq!(request_cost("/sites/x/drives"), (Budget::Sharepoint, 2));
        assert_eq!(request_cost("/sites/x/sites"), (Budget::Sharepoint, 2));
        assert_eq!(request_cost("/drives/b!1"), (Budget::Sharepoint, 1));
        assert_eq!(request_cost("/users/delta"), (Budget::Directory, 2));
        assert_eq!(
            request_cost("/users/delta?$select=id,displayName"),
            (Budget::Directory, 1)
        );
    }
}
