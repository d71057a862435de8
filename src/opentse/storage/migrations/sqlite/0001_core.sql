-- 0001_core: TSEs and their signed log messages.
--
-- The database itself guarantees what the whole project promises about counters
-- (TR-03151: the signature counter is +1 for every signature, never skips or repeats):
-- a log can only be inserted with last_signature_counter + 1 of its TSE, and
-- inserting it advances that counter. The store keeps the state JSON in step.

CREATE TABLE tses (                         -- the record: never changes after creation
    tse_id TEXT NOT NULL PRIMARY KEY,
    owner TEXT NOT NULL DEFAULT '',
    serial_number BLOB NOT NULL,
    curve TEXT NOT NULL,
    signature_algorithm TEXT NOT NULL,
    time_format TEXT NOT NULL,
    public_key_point BLOB NOT NULL,
    encrypted_private_key BLOB NOT NULL,
    certificate_chain TEXT NOT NULL,        -- JSON array of base64 DER certificates
    created_at INTEGER NOT NULL,
    extra TEXT NOT NULL                     -- JSON object
);

CREATE UNIQUE INDEX tses_serial_number ON tses (serial_number);
CREATE INDEX tses_owner ON tses (owner, created_at, tse_id);

-- The mutable state, apart from the record (certificates are kilobytes): a save
-- rewrites this row only.
CREATE TABLE tse_states (
    tse_id TEXT NOT NULL PRIMARY KEY REFERENCES tses (tse_id),
    version INTEGER NOT NULL,               -- TSEState.version, bumped by every save
    state TEXT NOT NULL                     -- JSON of TSEState.to_dict()
);

-- The newest stored signature counter of each TSE, in a row of a few bytes that
-- the trigger below advances for every log.
CREATE TABLE tse_counters (
    tse_id TEXT NOT NULL PRIMARY KEY REFERENCES tses (tse_id),
    last_signature_counter INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE logs (
    tse_id TEXT NOT NULL REFERENCES tses (tse_id),
    signature_counter INTEGER NOT NULL,
    log_type TEXT NOT NULL,                 -- LogType value: Tra | Sys | Aud
    operation TEXT NOT NULL,
    log_time INTEGER NOT NULL,              -- unix seconds
    filename TEXT NOT NULL,
    message BLOB NOT NULL,                  -- the complete DER log message
    transaction_number INTEGER,
    client_id TEXT,
    ref TEXT,                               -- caller's idempotency key
    extra TEXT,                             -- JSON object or NULL
    PRIMARY KEY (tse_id, signature_counter)
);

CREATE UNIQUE INDEX logs_ref ON logs (tse_id, ref) WHERE ref IS NOT NULL;
CREATE INDEX logs_transaction ON logs (tse_id, transaction_number)
    WHERE transaction_number IS NOT NULL;
CREATE INDEX logs_time ON logs (tse_id, log_time);
CREATE INDEX logs_client ON logs (tse_id, client_id, signature_counter)
    WHERE client_id IS NOT NULL;

-- One trigger (cheaper than two): reject a counter that is not the last one + 1,
-- then advance the last one. If the INSERT fails afterwards (duplicate ref), the
-- statement's rollback undoes the advance too.
CREATE TRIGGER logs_counter BEFORE INSERT ON logs
BEGIN
    SELECT RAISE(ABORT, 'E_COUNTER_GAP: signature counter does not follow the last one')
    WHERE NEW.signature_counter IS NOT
        (SELECT last_signature_counter + 1 FROM tse_counters WHERE tse_id = NEW.tse_id);
    UPDATE tse_counters SET last_signature_counter = NEW.signature_counter
    WHERE tse_id = NEW.tse_id;
END;
