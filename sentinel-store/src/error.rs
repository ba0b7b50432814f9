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
