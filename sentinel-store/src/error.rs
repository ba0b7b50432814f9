/// An error from the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("schema file {file}: {source}")]
    Schema {
        file: &'static str,
        source: sqlx::Error,
    },
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
}
