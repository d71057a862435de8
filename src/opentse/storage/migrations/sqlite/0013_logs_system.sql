-- 0013_logs_system: the system logs of each TSE, in counter order, without its
-- transaction logs. The dashboard's TSE page lists a TSE's first system logs and
-- the exports its exportData logs record; its first view (after an installation, an
-- upgrade or a restore) asked the store for every system log (log_type IN ('Sys'))
-- and the database walked all the TSE's logs to find them: 1.4 s at 10^6 logs. This
-- partial index holds only system logs (a few per day of a till; transaction logs,
-- the millions, are not in it, so a signature costs no more), and the store's query
-- for one log type reads along it. Its WHERE is written as the store's query has
-- it, an IN list, so SQLite sees that the query implies it.
CREATE INDEX IF NOT EXISTS logs_system ON logs (tse_id, signature_counter)
    WHERE log_type IN ('Sys');
