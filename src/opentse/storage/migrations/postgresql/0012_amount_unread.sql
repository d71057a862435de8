-- 0012_amount_unread (PostgreSQL, mirrors sqlite/0012_amount_unread.sql): a finished
-- transaction whose amount the dashboard's backfill (0007-0009) could not take from
-- its Finish log is marked; see the SQLite file for the why.
ALTER TABLE svc_transactions ADD COLUMN IF NOT EXISTS amount_unread TEXT;
CREATE INDEX IF NOT EXISTS svc_transactions_amount_todo
    ON svc_transactions(organization_id, time_start)
    WHERE amount_cents IS NULL AND amount_unread IS NULL AND state = 'FINISHED'
      AND process_type = 'Kassenbeleg-V1';
CREATE INDEX IF NOT EXISTS svc_transactions_amount_unread
    ON svc_transactions(organization_id, amount_unread)
    WHERE amount_unread IS NOT NULL;
