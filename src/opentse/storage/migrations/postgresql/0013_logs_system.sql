-- 0013_logs_system (PostgreSQL, mirrors sqlite/0013_logs_system.sql): the system
-- logs of each TSE in counter order, without its transaction logs, for the first
-- view of the dashboard's TSE page. The store writes the log types as literals
-- (storage/rows.filter_sql), and PostgreSQL reads its one-type IN list as
-- log_type = 'Sys', which implies this predicate in a generic plan too. The
-- CREATE INDEX reads the logs table once and holds off new logs meanwhile (run
-- opentse migrate in a quiet hour on a database of many millions of logs).
CREATE INDEX IF NOT EXISTS logs_system ON logs (tse_id, signature_counter)
    WHERE log_type = 'Sys';
