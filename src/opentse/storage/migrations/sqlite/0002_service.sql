-- Service tables of the HTTP adapter (opentse.server): organizations, API keys and
-- the index that maps fiskaly-style UUIDs onto TSE objects. The signed logs and TSE
-- state stay in the engine's tables; everything here can be rebuilt from the logs'
-- refs ("tx:<uuid>:<rev>") and extra data except organizations and API keys.

CREATE TABLE IF NOT EXISTS svc_organizations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    env         TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS svc_api_keys (
    api_key         TEXT PRIMARY KEY,
    secret_hash     TEXT NOT NULL,             -- crypto.secrets.hash_secret, never the secret
    organization_id TEXT NOT NULL REFERENCES svc_organizations(id),
    env             TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    disabled        INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS svc_tss (
    tss_id          TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    env             TEXT NOT NULL,
    metadata        TEXT NOT NULL DEFAULT '{}',
    puk_sealed      BLOB,                      -- AES-GCM sealed PUK, dropped when leaving CREATED
    created_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS svc_tss_org ON svc_tss(organization_id);

CREATE TABLE IF NOT EXISTS svc_clients (
    client_id       TEXT PRIMARY KEY,
    tss_id          TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    serial_number   TEXT NOT NULL,
    state           TEXT NOT NULL,
    metadata        TEXT NOT NULL DEFAULT '{}',
    time_creation   INTEGER NOT NULL,
    time_update     INTEGER NOT NULL,
    UNIQUE (tss_id, serial_number)
);
CREATE INDEX IF NOT EXISTS svc_clients_org ON svc_clients(organization_id);

CREATE TABLE IF NOT EXISTS svc_transactions (
    tss_id          TEXT NOT NULL,
    tx_id           TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    number          INTEGER NOT NULL,
    client_id       TEXT NOT NULL,
    latest_revision INTEGER NOT NULL,
    state           TEXT NOT NULL,
    process_type    TEXT NOT NULL DEFAULT '',
    time_start      INTEGER NOT NULL,
    time_end        INTEGER,
    metadata        TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (tss_id, tx_id),
    UNIQUE (tss_id, number)
);
CREATE INDEX IF NOT EXISTS svc_transactions_org ON svc_transactions(organization_id, time_start);
CREATE INDEX IF NOT EXISTS svc_transactions_client ON svc_transactions(client_id);

CREATE TABLE IF NOT EXISTS svc_exports (
    export_id       TEXT PRIMARY KEY,
    tss_id          TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    state           TEXT NOT NULL,
    params          TEXT NOT NULL,
    exception       TEXT,
    time_request    INTEGER NOT NULL,
    time_start      INTEGER,
    time_end        INTEGER,
    time_error      INTEGER,
    file_path       TEXT,
    metadata        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS svc_exports_tss ON svc_exports(tss_id, state);
