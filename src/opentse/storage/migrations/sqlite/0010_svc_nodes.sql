-- 0010_svc_nodes: the API nodes running on this database and the schema level their
-- code knows (the highest migration number below 0900 it ships). Each node writes
-- its row at start and at every export lease heartbeat (seen_ms: unix milliseconds,
-- the database clock) and deletes it when it stops on purpose. `opentse migrate`, and
-- a node that would migrate at start, refuse to apply migrations while a node of a
-- lower level is alive (storage/nodes.py): an older node would go on writing with the
-- rules of before (0008: cash movements indexed with amount 0). A row is alive while
-- seen_ms is within three heartbeats (beat_ms) and five seconds.
CREATE TABLE IF NOT EXISTS svc_nodes (
    node          TEXT PRIMARY KEY,   -- host:pid:random, one per server process
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    schema_level  INTEGER NOT NULL,
    version       TEXT NOT NULL,      -- opentse.__version__
    beat_ms       BIGINT NOT NULL,
    started_ms    BIGINT NOT NULL,
    seen_ms       BIGINT NOT NULL
);
