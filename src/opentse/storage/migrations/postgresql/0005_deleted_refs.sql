-- 0005_deleted_refs: the refs of logs dropped by deleteStoredData. A retry of a
-- request whose log was deleted after an export must not be signed again as if it
-- were new; find_ref answers E_REF_DELETED for these instead of "not found".
CREATE TABLE IF NOT EXISTS deleted_refs (
    tse_id TEXT NOT NULL REFERENCES tses (tse_id),
    ref TEXT NOT NULL,
    signature_counter BIGINT NOT NULL,
    PRIMARY KEY (tse_id, ref)
);
