-- 0012_amount_unread: a finished transaction whose amount the dashboard's backfill
-- (0007-0009) could not take from its Finish log is marked, so it is not read again
-- at every amount search and counted where the search says what it cannot find.
-- amount_unread is NULL for every other row; else why the amount is missing:
-- 'unreadable' (the stored log does not decode), 'gone' (no log any more: deleted
-- after an export) or 'no_amount' (a Kassenbeleg-V1 whose processData has no
-- readable total). Before this, such rows kept their place at the head of the
-- backfill (newest first, 5,000 a search) and 5,000 of them kept every older receipt
-- from ever getting its amount. The backfill reads along a new index without the
-- marked rows (0007's, which holds them, is read by nothing now); a
-- second partial index holds only marked rows (none in a healthy shop) for the
-- count. "Read them again" on the search page clears the marks (after a restore).
ALTER TABLE svc_transactions ADD COLUMN amount_unread TEXT;
CREATE INDEX IF NOT EXISTS svc_transactions_amount_todo
    ON svc_transactions(organization_id, time_start)
    WHERE amount_cents IS NULL AND amount_unread IS NULL AND state = 'FINISHED'
      AND process_type = 'Kassenbeleg-V1';
CREATE INDEX IF NOT EXISTS svc_transactions_amount_unread
    ON svc_transactions(organization_id, amount_unread)
    WHERE amount_unread IS NOT NULL;
