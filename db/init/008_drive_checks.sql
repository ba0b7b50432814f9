-- Freshness per RU: when each drive was last read (a delta round completed) and when a round
-- last found it changed. With an adaptive cadence (graph_ingest `max_staleness_minutes`) a
-- drive is read again once as long as it had been idle at its last read has passed, never
-- later than the staleness an admin allows: busy drives every run, idle ones backing off.
ALTER TABLE msgraph_drives ADD COLUMN IF NOT EXISTS checked_at timestamptz;
ALTER TABLE msgraph_drives ADD COLUMN IF NOT EXISTS changed_at timestamptz;
