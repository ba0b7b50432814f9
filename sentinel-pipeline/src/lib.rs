//! Composable async ingestion stages where Microsoft Graph meets the Princeton Sentinel store.
