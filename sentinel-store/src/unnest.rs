//! Bulk upserts whose columns are named once.
//!
//! A bulk upsert sends one array per column and `UNNEST`s them into rows. Written by hand, the
//! column list, the `UNNEST` casts, the aliases and the binds are four lists that must agree by
//! position, and two `text[]` binds swapped still compile and run. Here each column is added
//! once, with its name and its values together; the cast comes from the values' Rust type, and
//! the SQL and the binds are generated from that one list.

use chrono::{DateTime, Utc};
use sqlx::Arguments;
use sqlx::postgres::{PgArguments, Postgres};
use sqlx::{Executor, Transaction};

use crate::StoreError;

/// A Rust value that travels to Postgres in an array of a known type.
pub(crate) trait PgElement:
    for<'q> sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + sqlx::postgres::PgHasArrayType
{
    const ARRAY: &'static str;
}

macro_rules! pg_element {
    ($($t:ty => $array:literal),* $(,)?) => {
        $(impl PgElement for $t {
            const ARRAY: &'static str = $array;
        })*
    };
}

pg_element! {
    String => "text[]",
    Option<String> => "text[]",
    bool => "bool[]",
    Option<bool> => "bool[]",
    i64 => "int8[]",
    Option<i64> => "int8[]",
    Option<DateTime<Utc>> => "timestamptz[]",
}

/// How a bound column reaches the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Inserted as it is.
    Column,
    /// JSON text, inserted as `jsonb`.
    Json,
    /// Bound for an expression of [`Unnest::computed`] only; not a column of the table.
    Input,
}

/// The rows of one bulk upsert into `table`, column by column; `$1` is the tenant.
#[derive(Debug)]
pub(crate) struct Unnest {
    table: &'static str,
    rows: usize,
    bound: Vec<(&'static str, &'static str, Role)>,
    /// Columns set by an SQL expression over the bound ones (`u.<name>`) and `now()`.
    computed: Vec<(&'static str, String)>,
    args: PgArguments,
    error: Option<String>,
}

impl Unnest {
    pub(crate) fn new(table: &'static str, tenant: &str, rows: usize) -> Unnest {
        let mut u = Unnest {
            table,
            rows,
            bound: Vec::new(),
            computed: Vec::new(),
            args: PgArguments::default(),
            error: None,
        };
        u.bind(tenant.to_string());
        u
    }

    fn bind<T: for<'q> sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>>(&mut self, v: T) {
        if let Err(e) = self.args.add(v) {
            self.error.get_or_insert(e.to_string());
        }
    }

    fn add<T: PgElement>(
        &mut self,
        name: &'static str,
        role: Role,
        values: impl IntoIterator<Item = T>,
    ) -> &mut Unnest {
        let values: Vec<T> = values.into_iter().collect();
        if values.len() != self.rows {
            self.error.get_or_insert(format!(
                "{}.{name}: {} values for {} rows",
                self.table,
                values.len(),
                self.rows
            ));
        }
        if self.bound.iter().any(|(n, _, _)| *n == name) {
            self.error
                .get_or_insert(format!("{}.{name} is bound twice", self.table));
        }
        self.bound.push((name, T::ARRAY, role));
        self.bind(values);
        self
    }

    /// A column of the table and its value in every row.
    pub(crate) fn column<T: PgElement>(
        &mut self,
        name: &'static str,
        values: impl IntoIterator<Item = T>,
    ) -> &mut Unnest {
        self.add(name, Role::Column, values)
    }

    /// A `jsonb` column, sent as JSON text.
    pub(crate) fn json(
        &mut self,
        name: &'static str,
        values: impl IntoIterator<Item = String>,
    ) -> &mut Unnest {
        self.add(name, Role::Json, values)
    }

    /// A value the computed columns read as `u.<name>`; not itself a column of the table.
    pub(crate) fn input<T: PgElement>(
        &mut self,
        name: &'static str,
        values: impl IntoIterator<Item = T>,
    ) -> &mut Unnest {
        self.add(name, Role::Input, values)
    }

    /// A column set by `expr` (over `u.<bound>` and `now()`).
    pub(crate) fn computed(&mut self, name: &'static str, expr: impl Into<String>) -> &mut Unnest {
        self.computed.push((name, expr.into()));
        self
    }

    /// The columns written, in order: the bound ones (inputs aside), then the computed ones.
    fn written(&self) -> Vec<&'static str> {
        self.bound
            .iter()
            .filter(|(_, _, r)| *r != Role::Input)
            .map(|(n, _, _)| *n)
            .chain(self.computed.iter().map(|(n, _)| *n))
            .collect()
    }

    /// `col = EXCLUDED.col` for every written column but the conflict key's.
    pub(crate) fn excluded_except(&self, key: &[&str]) -> String {
        self.update_set(key, &[])
    }

    /// [`Unnest::excluded_except`], but a column named in `overrides` takes its expression
    /// (over `t.<col>`, the stored row, and `EXCLUDED.<col>`, the incoming one).
    pub(crate) fn update_set(&self, key: &[&str], overrides: &[(&str, &str)]) -> String {
        self.written()
            .into_iter()
            .filter(|c| !key.contains(c))
            .map(|c| match overrides.iter().find(|(o, _)| *o == c) {
                Some((_, expr)) => format!("{c} = {expr}"),
                None => format!("{c} = EXCLUDED.{c}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `INSERT ... SELECT ... FROM UNNEST(...) ON CONFLICT (tenant_id, key) DO UPDATE SET set`.
    /// The table is aliased `t` for `set`.
    pub(crate) fn upsert_sql(&self, key: &[&str], set: &str) -> String {
        let selected = self
            .bound
            .iter()
            .filter_map(|(n, _, role)| match role {
                Role::Column => Some(format!("u.{n}")),
                Role::Json => Some(format!("u.{n}::jsonb")),
                Role::Input => None,
            })
            .chain(self.computed.iter().map(|(_, e)| e.clone()));
        let arrays = self
            .bound
            .iter()
            .enumerate()
            .map(|(i, (_, array, _))| format!("${}::{array}", i + 2));
        let aliases = self.bound.iter().map(|(n, _, _)| *n);
        format!(
            "INSERT INTO {table} AS t (tenant_id, {columns}) SELECT $1, {selected} \
             FROM UNNEST({arrays}) AS u({aliases}) \
             ON CONFLICT (tenant_id, {key}) DO UPDATE SET {set}",
            table = self.table,
            columns = self.written().join(", "),
            selected = selected.collect::<Vec<_>>().join(", "),
            arrays = arrays.collect::<Vec<_>>().join(", "),
            aliases = aliases.collect::<Vec<_>>().join(", "),
            key = key.join(", "),
        )
    }

    /// Runs the upsert; the number of rows written.
    pub(crate) async fn upsert(
        self,
        tx: &mut Transaction<'_, Postgres>,
        key: &[&str],
        set: &str,
    ) -> Result<u64, StoreError> {
        if let Some(e) = self.error {
            return Err(StoreError::Invalid(e));
        }
        if self.rows == 0 {
            return Ok(0);
        }
        let sql = self.upsert_sql(key, set);
        Ok((&mut **tx)
            .execute(sqlx::query_with(&sql, self.args))
            .await?
            .rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_column_is_named_once_and_cast_by_its_type() {
        let mut u = Unnest::new("msgraph_sites", "t1", 2);
        u.column("id", ["a".to_string(), "b".to_string()])
            .column("web_url", [Some("u".to_string()), None])
            .json("raw_json", ["{}".to_string(), "{}".to_string()])
            .input("gone", [false, true])
            .computed("deleted_at", "CASE WHEN u.gone THEN now() END");
        let set = u.excluded_except(&["id"]);
        assert_eq!(
            set,
            "web_url = EXCLUDED.web_url, raw_json = EXCLUDED.raw_json, deleted_at = EXCLUDED.deleted_at"
        );
        assert_eq!(
            u.upsert_sql(&["id"], &set),
            "INSERT INTO msgraph_sites AS t (tenant_id, id, web_url, raw_json, deleted_at) \
             SELECT $1, u.id, u.web_url, u.raw_json::jsonb, CASE WHEN u.gone THEN now() END \
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::bool[]) AS u(id, web_url, raw_json, gone) \
             ON CONFLICT (tenant_id, id) DO UPDATE SET web_url = EXCLUDED.web_url, \
             raw_json = EXCLUDED.raw_json, deleted_at = EXCLUDED.deleted_at"
        );
    }

    #[test]
    fn a_short_column_or_a_column_twice_is_refused() {
        let mut u = Unnest::new("msgraph_sites", "t1", 2);
        u.column("id", ["a".to_string()]);
        assert_eq!(
            u.error.as_deref(),
            Some("msgraph_sites.id: 1 values for 2 rows")
        );
        let mut u = Unnest::new("msgraph_sites", "t1", 1);
        u.column("id", ["a".to_string()])
            .column("id", ["b".to_string()]);
        assert_eq!(u.error.as_deref(), Some("msgraph_sites.id is bound twice"));
    }
}
