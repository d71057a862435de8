-- 0014_tx_log_deleted (PostgreSQL, mirrors sqlite/0014_tx_log_deleted.sql): whether
-- the log of a transaction's latest revision was deleted after an export, in the
-- transaction index, so the API's lists filter on a column instead of a NOT EXISTS
-- over deleted_refs per row; see the SQLite file for the why. An INTEGER (0/1), not
-- a boolean: ServiceStore's SQL is shared by both dialects. ADD COLUMN with a
-- constant default does not rewrite the table; the UPDATE writes only the rows of
-- deleted logs.
ALTER TABLE svc_transactions ADD COLUMN IF NOT EXISTS log_deleted INTEGER NOT NULL DEFAULT 0;
UPDATE svc_transactions SET log_deleted = 1
    WHERE EXISTS (SELECT 1 FROM deleted_refs d WHERE d.tse_id = svc_transactions.tss_id
        AND d.ref = 'tx:' || svc_transactions.tx_id || ':' || svc_transactions.latest_revision);
CREATE INDEX IF NOT EXISTS svc_transactions_listed
    ON svc_transactions(organization_id, time_start, log_deleted, state)
    WHERE (log_deleted = 0 OR state = 'ACTIVE');
