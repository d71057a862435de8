-- 0009_cash_book_amount (PostgreSQL, mirrors sqlite/0009_cash_book_amount.sql):
-- the cash-book entries (SonstigerVorgang
-- "<GV_TYP>^<amount>:<Bar|Unbar>[^text]", opentse pos cash over the API) indexed
-- before 0008's rule gave them an amount have none (NULL), and the dashboard's
-- backfill reads only Kassenbeleg-V1 rows. Their keys are listed here, in this
-- migration's one transaction; each amount search of the dashboard reads the Finish
-- logs of some of them, and sets the amount and removes the key in one transaction,
-- so a crash leaves the key listed, to be read again. Rows indexed from now on get
-- their amount when indexed.
CREATE TABLE IF NOT EXISTS svc_amount_backfill (
    tss_id TEXT NOT NULL,
    tx_id  TEXT NOT NULL,
    PRIMARY KEY (tss_id, tx_id)
);
INSERT INTO svc_amount_backfill (tss_id, tx_id)
    SELECT tss_id, tx_id FROM svc_transactions
    WHERE amount_cents IS NULL AND state = 'FINISHED' AND process_type = 'SonstigerVorgang';
