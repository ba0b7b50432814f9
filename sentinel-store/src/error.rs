/// An error from the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A query failed (connection, constraint, timeout, ...).
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A schema file failed to apply at start-up.
    #[error("schema file {file}: {source}")]
    Schema {
        /// Which file of `db/init/`.
        file: &'static str,
        /// Why.
        source: sqlx::Error,
    },
    /// The caller passed something the store refuses; the text says what.
    #[error("invalid input: {0}")]
    Invalid(String),
}

impl StoreError {
    /// The statement ran past the connection's `statement_timeout` and was cancelled.
    pub fn is_timeout(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => e.code().as_deref() == Some("57014"),
            _ => false,
        }
    }

    /// Postgres failed the transaction to break a deadlock (SQLSTATE 40P01) or a serialization
    /// conflict (40001): nothing of it was written, and running it again is the remedy
    /// Postgres documents (postgresql.org/docs/current/mvcc-serialization-failure-handling.html).
    pub fn is_transient(&self) -> bool {
        let e = match self {
            StoreError::Database(e) | StoreError::Schema { source: e, .. } => e,
            StoreError::Invalid(_) => return false,
        };
        match e {
            sqlx::Error::Database(e) => matches!(e.code().as_deref(), Some("40P01" | "40001")),
            _ => false,
        }
    }

    /// Postgres refused a value the caller passed (SQLSTATE class 22, "data exception": a NUL
    /// character in text, a number out of range, ...): the input is at fault, not the database.
    pub fn is_bad_value(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => {
                e.code().is_some_and(|c| c.starts_with("22"))
            }
            _ => false,
        }
    }
}
