-- 0001_core (PostgreSQL): TSEs and their signed log messages; mirrors sqlite/0001_core.sql.
--
-- The database itself guarantees what the project promises about counters
-- (TR-03151: the signature counter is +1 for every signature, never skips or repeats):
-- a log can only be inserted with last_signature_counter + 1 of its TSE, and
-- inserting it advances that column (trigger below). The store keeps the state JSON
-- in step and serialises writers of one TSE with SELECT ... FOR UPDATE on its row.
--
-- JSON columns are TEXT on purpose: the store parses them itself (and caches the
-- state by version), byte-exact round trips need no server-side re-encoding, and
-- TEXT accepts every JSON string (JSONB rejects \u0000).

CREATE TABLE tses (
    tse_id TEXT NOT NULL PRIMARY KEY,
    owner TEXT NOT NULL DEFAULT '',
    serial_number BYTEA NOT NULL,
    curve TEXT NOT NULL,
    signature_algorithm TEXT NOT NULL,
    time_format TEXT NOT NULL,
    public_key_point BYTEA NOT NULL,
    encrypted_private_key BYTEA NOT NULL,
    certificate_chain TEXT NOT NULL,        -- JSON array of base64 DER certificates
    created_at BIGINT NOT NULL,
    extra TEXT NOT NULL,                    -- JSON object
    state TEXT NOT NULL,                    -- JSON of TSEState.to_dict()
    version BIGINT NOT NULL,                -- TSEState.version, bumped by every save
    last_signature_counter BIGINT NOT NULL  -- counter of the newest stored log
);

CREATE UNIQUE INDEX tses_serial_number ON tses (serial_number);
CREATE INDEX tses_owner ON tses (owner, created_at, tse_id);

CREATE TABLE logs (
    tse_id TEXT NOT NULL REFERENCES tses (tse_id),
    signature_counter BIGINT NOT NULL,
    log_type TEXT NOT NULL,                 -- LogType value: Tra | Sys | Aud
    operation TEXT NOT NULL,
    log_time BIGINT NOT NULL,               -- unix seconds
    filename TEXT NOT NULL,
    message BYTEA NOT NULL,                 -- the complete DER log message
    transaction_number BIGINT,
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

-- One trigger does both checks of the SQLite pair: refuse a counter that does not
-- follow the stored one, else advance it. It runs AFTER the row is in, so a row an
-- ``INSERT ... ON CONFLICT DO NOTHING`` skips (a duplicate ref) changes nothing.
-- The UPDATE also row-locks the TSE, so a writer that forgot SELECT ... FOR UPDATE
-- is still serialised.
CREATE FUNCTION opentse_logs_counter() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_counter BIGINT;
BEGIN
    UPDATE tses SET last_signature_counter = NEW.signature_counter
    WHERE tse_id = NEW.tse_id AND last_signature_counter = NEW.signature_counter - 1
    RETURNING last_signature_counter INTO last_counter;
    IF last_counter IS NULL THEN
        RAISE EXCEPTION 'E_COUNTER_GAP: signature counter does not follow the last one'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER logs_counter_consecutive AFTER INSERT ON logs
FOR EACH ROW EXECUTE FUNCTION opentse_logs_counter();
