-- 0003_ops: operations tables (opentse.ops): organization -> locations -> TSEs ->
-- registers, the append-only archive protocol, the export archive, warnings sent,
-- outages and settings. Lives beside the engine and service tables in one database.

CREATE TABLE IF NOT EXISTS ops_organizations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    tax_number  TEXT NOT NULL DEFAULT '',
    svc_org_id  TEXT,                          -- svc_organizations.id when the service is used
    created_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS ops_locations (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES ops_organizations(id),
    name         TEXT NOT NULL,
    street       TEXT NOT NULL,
    postal_code  TEXT NOT NULL,
    city         TEXT NOT NULL,
    country      TEXT NOT NULL DEFAULT 'DE',
    address_key  TEXT NOT NULL,                -- normalised address: same key = same place
    created_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ops_locations_org ON ops_locations(org_id);
CREATE INDEX IF NOT EXISTS ops_locations_addr ON ops_locations(address_key);

CREATE TABLE IF NOT EXISTS ops_tses (
    tse_id            TEXT PRIMARY KEY,        -- engine TSE id
    location_id       TEXT NOT NULL REFERENCES ops_locations(id),
    capacity          INTEGER NOT NULL,
    hardware_version  TEXT NOT NULL DEFAULT '',
    software_version  TEXT NOT NULL DEFAULT '',
    interface_type    TEXT NOT NULL DEFAULT '',
    connection_url    TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL DEFAULT 'active',   -- active | replaced | defective
    replaced_by       TEXT,
    assigned_at       INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS ops_tse_shares (
    tse_id        TEXT NOT NULL,
    location_id   TEXT NOT NULL,
    confirmed_by  TEXT NOT NULL,
    confirmation  TEXT NOT NULL,
    confirmed_at  INTEGER NOT NULL,
    PRIMARY KEY (tse_id, location_id)
);

CREATE TABLE IF NOT EXISTS ops_registers (
    register_id       TEXT PRIMARY KEY,        -- the client id (serial) in the TSE logs
    location_id       TEXT NOT NULL REFERENCES ops_locations(id),
    tse_id            TEXT,
    model             TEXT NOT NULL DEFAULT '',
    hardware_version  TEXT NOT NULL DEFAULT '',
    software_version  TEXT NOT NULL DEFAULT '',
    created_at        INTEGER NOT NULL,
    assigned_at       INTEGER
);

CREATE TABLE IF NOT EXISTS ops_protocol (
    seq          INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    org_id       TEXT NOT NULL DEFAULT '',
    location_id  TEXT NOT NULL DEFAULT '',
    tse_id       TEXT NOT NULL DEFAULT '',
    register_id  TEXT NOT NULL DEFAULT '',
    actor        TEXT NOT NULL DEFAULT '',
    details      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS ops_protocol_tse ON ops_protocol(tse_id, seq);
CREATE TRIGGER IF NOT EXISTS ops_protocol_no_update BEFORE UPDATE ON ops_protocol
BEGIN
    SELECT RAISE(ABORT, 'ops_protocol is append-only');
END;
CREATE TRIGGER IF NOT EXISTS ops_protocol_no_delete BEFORE DELETE ON ops_protocol
BEGIN
    SELECT RAISE(ABORT, 'ops_protocol is append-only');
END;

CREATE TABLE IF NOT EXISTS ops_exports (
    id              TEXT PRIMARY KEY,
    tse_id          TEXT NOT NULL,
    path            TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    size            INTEGER NOT NULL,
    records         INTEGER NOT NULL,
    first_counter   INTEGER,
    last_counter    INTEGER,
    verified_ok     INTEGER NOT NULL,
    verification    TEXT NOT NULL DEFAULT '{}',
    created_at      INTEGER NOT NULL,
    retain_until    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ops_exports_tse ON ops_exports(tse_id, created_at);

CREATE TABLE IF NOT EXISTS ops_log_release (
    tse_id       TEXT PRIMARY KEY,
    released_up_to INTEGER NOT NULL,           -- logs up to here may be dropped
    export_id    TEXT NOT NULL,
    released_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS ops_warnings_sent (
    tse_id   TEXT NOT NULL,
    kind     TEXT NOT NULL,
    sent_at  INTEGER NOT NULL,
    PRIMARY KEY (tse_id, kind)
);

CREATE TABLE IF NOT EXISTS ops_outages (
    id           TEXT PRIMARY KEY,
    tse_id       TEXT NOT NULL DEFAULT '',
    register_id  TEXT NOT NULL DEFAULT '',
    started_at   INTEGER NOT NULL,
    ended_at     INTEGER,
    reason       TEXT NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS ops_settings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
