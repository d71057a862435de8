-- 0001_core: TSEs and their signed log messages.
--
-- The database itself guarantees what the whole project promises about counters
-- (TR-03151: the signature counter is +1 for every signature, never skips or repeats):
-- a log can only be inserted with last_signature_counter + 1 of its TSE, and
-- inserting it advances that column. The store keeps the state JSON in step.

CREATE TABLE tses (
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
    extra TEXT NOT NULL,                    -- JSON object
    state TEXT NOT NULL,                    -- JSON of TSEState.to_dict()
    version INTEGER NOT NULL,               -- TSEState.version, bumped by every save
    last_signature_counter INTEGER NOT NULL -- counter of the newest stored log
);

CREATE UNIQUE INDEX tses_serial_number ON tses (serial_number);
CREATE INDEX tses_owner ON tses (owner, created_at, tse_id);

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

CREATE TRIGGER logs_counter_consecutive BEFORE INSERT ON logs
WHEN NEW.signature_counter IS NOT
    (SELECT last_signature_counter + 1 FROM tses WHERE tse_id = NEW.tse_id)
BEGIN
    SELECT RAISE(ABORT, 'E_COUNTER_GAP: signature counter does not follow the last one');
END;

CREATE TRIGGER logs_counter_advance AFTER INSERT ON logs
BEGIN
    UPDATE tses SET last_signature_counter = NEW.signature_counter
    WHERE tse_id = NEW.tse_id;
END;
