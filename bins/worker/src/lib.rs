//! Princeton Sentinel worker: scheduler loop, ingestion jobs and the internal control API.
