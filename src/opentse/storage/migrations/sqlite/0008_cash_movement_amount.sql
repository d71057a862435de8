-- 0008_cash_movement_amount: the amount in the transaction index (0007) of a cash
-- movement signed as a Kassenbeleg-V1 (Einzahlung, Auszahlung, Geldtransit: five
-- gross sums 0.00, the money moved in its payments) is the payments' sum, as the
-- dashboard shows it; 0007 stored the zero gross total, so a search for the money
-- moved found nothing. Those rows go back to NULL here, in this migration's one
-- transaction, and the dashboard's backfill (the svc_transactions_amount_missing
-- rows, newest first, at most SEARCH_SCAN per amount search) reads their Finish logs
-- again with the new rule; a crash in between leaves them NULL, to be read again.
-- A zero sale without payments gets its 0 back the same way.
UPDATE svc_transactions SET amount_cents = NULL
    WHERE amount_cents = 0 AND state = 'FINISHED' AND process_type = 'Kassenbeleg-V1';
