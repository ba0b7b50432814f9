//! Princeton Sentinel dashboard: axum + tera web UI and API over the store.
