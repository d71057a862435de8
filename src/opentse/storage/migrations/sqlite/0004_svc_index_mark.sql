-- 0004_svc_index_mark: how far the background-written transaction index is complete.
-- Every transaction revision signed through the API by a request that began at or
-- after `mark` (unix seconds, the service clock) may still lack its svc_transactions
-- row after a crash; earlier ones all have theirs. At startup the server rebuilds the
-- rows of logs from `mark` on (their refs "tx:<uuid>:<rev>"), so GET by number and
-- lists see every signed revision after a kill -9. One row per service node.
CREATE TABLE IF NOT EXISTS svc_index_mark (
    node  TEXT PRIMARY KEY,
    mark  BIGINT NOT NULL
);
