-- 0006_export_lease (PostgreSQL, mirrors sqlite/0006_export_lease.sql): who works on
-- a background export, and until when. Several API nodes share this database; a node
-- claims a PENDING or WORKING export with one conditional UPDATE (unclaimed, or its
-- lease ran out; the row lock makes exactly one of two racing nodes win), writes its
-- owner id and `lease_until` (unix milliseconds, the database clock) and renews the
-- lease while it works. Another node takes an export over only when the lease has
-- expired (its node died), so a starting node no longer re-runs exports a live node
-- is still writing.
ALTER TABLE svc_exports ADD COLUMN IF NOT EXISTS lease_owner TEXT;
ALTER TABLE svc_exports ADD COLUMN IF NOT EXISTS lease_until BIGINT;
CREATE INDEX IF NOT EXISTS svc_exports_lease ON svc_exports(state, lease_until);
