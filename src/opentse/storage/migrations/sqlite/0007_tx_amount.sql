-- 0007_tx_amount: the gross total of a finished Kassenbeleg-V1 in the transaction
-- index, in cents, so the dashboard finds a receipt by its amount with one indexed
-- query instead of reading the signed Finish logs of the newest transactions.
-- Written with the index row of a FINISHED revision (and when rows are rebuilt from
-- the logs); NULL for ACTIVE and CANCELLED transactions, orders and other process
-- types, and for rows written before this migration until the dashboard backfills
-- them from their Finish logs. Both indexes are partial: the first holds only rows
-- with an amount, the second only receipts still to backfill (none, once done).
ALTER TABLE svc_transactions ADD COLUMN amount_cents INTEGER;
CREATE INDEX IF NOT EXISTS svc_transactions_amount
    ON svc_transactions(organization_id, amount_cents, time_start)
    WHERE amount_cents IS NOT NULL;
CREATE INDEX IF NOT EXISTS svc_transactions_amount_missing
    ON svc_transactions(organization_id, time_start)
    WHERE amount_cents IS NULL AND state = 'FINISHED' AND process_type = 'Kassenbeleg-V1';
