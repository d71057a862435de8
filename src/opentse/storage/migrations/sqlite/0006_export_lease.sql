-- 0006_export_lease: who works on a background export, and until when.
-- Several API nodes share one database (PostgreSQL); a node claims a PENDING or
-- WORKING export with one conditional UPDATE (unclaimed, or its lease ran out),
-- writes its owner id and `lease_until` (unix milliseconds, the database clock) and
-- renews the lease while it works. Another node takes an export over only when the
-- lease has expired (its node died), so a starting node no longer re-runs exports a
-- live node is still writing. On SQLite (one node) the lease is harmless.
ALTER TABLE svc_exports ADD COLUMN lease_owner TEXT;
ALTER TABLE svc_exports ADD COLUMN lease_until INTEGER;
CREATE INDEX IF NOT EXISTS svc_exports_lease ON svc_exports(state, lease_until);
