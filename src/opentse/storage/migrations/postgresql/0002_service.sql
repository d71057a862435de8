-- 0002_service (PostgreSQL): the HTTP adapter's tables; mirrors sqlite/0002_service.sql.
--
-- Every table has a ``rowid`` identity column: the service store breaks ordering
-- ties by insertion order (``ORDER BY ..., rowid``) as SQLite's implicit rowid does.

CREATE TABLE IF NOT EXISTS svc_organizations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    env         TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    rowid       BIGINT GENERATED ALWAYS AS IDENTITY
);

CREATE TABLE IF NOT EXISTS svc_api_keys (
    api_key         TEXT PRIMARY KEY,
    secret_hash     TEXT NOT NULL,             -- crypto.secrets.hash_secret, never the secret
    organization_id TEXT NOT NULL REFERENCES svc_organizations(id),
    env             TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    disabled        INTEGER NOT NULL DEFAULT 0,
    rowid           BIGINT GENERATED ALWAYS AS IDENTITY
);

CREATE TABLE IF NOT EXISTS svc_tss (
    tss_id          TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    env             TEXT NOT NULL,
    metadata        TEXT NOT NULL DEFAULT '{}',
    puk_sealed      BYTEA,                     -- AES-GCM sealed PUK, dropped when leaving CREATED
    created_at      BIGINT NOT NULL,
    rowid           BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX IF NOT EXISTS svc_tss_org ON svc_tss(organization_id);

CREATE TABLE IF NOT EXISTS svc_clients (
    client_id       TEXT PRIMARY KEY,
    tss_id          TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    serial_number   TEXT NOT NULL,
    state           TEXT NOT NULL,
    metadata        TEXT NOT NULL DEFAULT '{}',
    time_creation   BIGINT NOT NULL,
    time_update     BIGINT NOT NULL,
    rowid           BIGINT GENERATED ALWAYS AS IDENTITY,
    UNIQUE (tss_id, serial_number)
);
CREATE INDEX IF NOT EXISTS svc_clients_org ON svc_clients(organization_id);

CREATE TABLE IF NOT EXISTS svc_transactions (
    tss_id          TEXT NOT NULL,
    tx_id           TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    number          BIGINT NOT NULL,
    client_id       TEXT NOT NULL,
    latest_revision BIGINT NOT NULL,
    state           TEXT NOT NULL,
    process_type    TEXT NOT NULL DEFAULT '',
    time_start      BIGINT NOT NULL,
    time_end        BIGINT,
    metadata        TEXT NOT NULL DEFAULT '{}',
    rowid           BIGINT GENERATED ALWAYS AS IDENTITY,
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
    time_request    BIGINT NOT NULL,
    time_start      BIGINT,
    time_end        BIGINT,
    time_error      BIGINT,
    file_path       TEXT,
    metadata        TEXT NOT NULL DEFAULT '{}',
    rowid           BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX IF NOT EXISTS svc_exports_tss ON svc_exports(tss_id, state);
