-- 0900_installation_check (PostgreSQL only): which installation secret and CA this
-- database belongs to.
--
-- Several API nodes share one database; each must use the SAME installation secret
-- (it decrypts every TSE key) and the same local CA. The first node to start records
-- an HMAC of its secret (reveals nothing about it) and a hash of its CA certificates;
-- a node with other files is refused at start (E_INSTALLATION_MISMATCH) instead of
-- creating TSEs no other node could sign with. Numbered apart from the mirrored
-- 0001, 0002 ... so SQLite and PostgreSQL keep sharing those numbers.

CREATE TABLE installation_check (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    secret_check TEXT NOT NULL,             -- hex HMAC-SHA256(secret, label)
    ca_check TEXT NOT NULL,                 -- hex SHA-256 of the CA certificates (DER)
    created_at BIGINT NOT NULL
);
