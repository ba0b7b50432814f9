//! Read models for the dashboard: the posture from the materialized views and the drill-down
//! from the tables. Every list is paged and filtered here, in SQL, never in the caller.

/// The words of an enum (`ALL`, `as_str`, `Display`, and a `FromStr` whose error says what
/// `$what` must be): one list per enum, so the SQL, JSON, query strings and 400s agree. Exported
/// for `sentinel-sched`'s run status and trigger, which add their SQL type on top.
#[macro_export]
macro_rules! words {
    ($t:ty, $what:literal, $($variant:ident = $text:literal),+ $(,)?) => {
        impl $t {
            /// Every value.
            pub const ALL: &'static [$t] = &[$(<$t>::$variant),+];
            /// The word for it in SQL, JSON and query strings.
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$variant => $text),+ }
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<$t, String> {
                match s {
                    $($text => Ok(<$t>::$variant),)+
                    other => Err(format!("{} must be one of {}, got '{other}'", $what, [$($text),+].join(", "))),
                }
            }
        }
    };
}

mod audience;
mod browse;
mod exposure;
mod largest;
mod person;
mod posture;
mod reach;
mod recompute;

pub use audience::*;
pub use browse::*;
pub use exposure::*;
pub use largest::*;
pub use person::*;
pub use posture::*;
pub use reach::*;
pub use recompute::*;

use serde::Serialize;

/// Which page of a list, and whether soft-deleted rows are included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Zero-based page number.
    pub page: u32,
    /// Rows per page; [`PageRequest::limit`] bounds it.
    pub per_page: u32,
    /// Case-insensitive substring filter on the list's name column.
    pub filter: Option<String>,
    /// Include soft-deleted rows.
    pub include_deleted: bool,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            page: 0,
            per_page: 50,
            filter: None,
            include_deleted: false,
        }
    }
}

impl PageRequest {
    /// At most 10,000 rows per page: a CSV download asks for all of a table at once.
    pub fn limit(&self) -> i64 {
        i64::from(self.per_page.clamp(1, 10_000))
    }
    /// Rows to skip: the pages before this one.
    pub fn offset(&self) -> i64 {
        i64::from(self.page) * self.limit()
    }
    /// `ILIKE` pattern for the filter (`%` when none), with the wildcards in it escaped.
    pub fn pattern(&self) -> String {
        match self.filter.as_deref().map(str::trim) {
            Some(f) if !f.is_empty() => format!(
                "%{}%",
                f.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            ),
            _ => "%".to_string(),
        }
    }
}

/// One page of a list and how many rows the whole list has.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// This page's rows.
    pub rows: Vec<T>,
    /// Rows in the whole list, filter applied.
    pub total: i64,
    /// Which page this is (zero-based).
    pub page: u32,
    /// Rows per page asked for.
    pub per_page: u32,
}

/// The rows of a windowed list query (`count(*) OVER ()` gives the total on each row) with the
/// list's total. The window counts only what a page returns, so a page past the last has no
/// row to carry it: the first row is then asked for, and the total is still right.
pub(crate) async fn windowed<T, Fut>(
    req: &PageRequest,
    total_of: fn(&T) -> i64,
    fetch: impl Fn(i64, i64) -> Fut,
) -> Result<(Vec<T>, i64), crate::StoreError>
where
    Fut: std::future::Future<Output = Result<Vec<T>, crate::StoreError>>,
{
    let rows = fetch(req.limit(), req.offset()).await?;
    let total = match rows.first() {
        Some(r) => total_of(r),
        None if req.offset() > 0 => fetch(1, 0).await?.first().map_or(0, total_of),
        None => 0,
    };
    Ok((rows, total))
}

impl<T> Page<T> {
    pub(crate) fn new(rows: Vec<T>, total: i64, req: &PageRequest) -> Page<T> {
        Page {
            rows,
            total,
            page: req.page,
            per_page: req.limit() as u32,
        }
    }
}
