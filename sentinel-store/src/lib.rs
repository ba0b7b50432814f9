//! Postgres store for Princeton Sentinel: typed Graph tables, delta state, update log, materialized views, audit events.
