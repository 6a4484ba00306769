-- Every collection in one table: argus' bucket/id/owner/ttl model. Times are Unix milliseconds.
-- STRICT makes SQLite check the column types; the primary key is the only access path needed,
-- so the table is clustered on it (WITHOUT ROWID).
CREATE TABLE records (
    collection  TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    owner       TEXT    NOT NULL,
    partner_ids TEXT    NOT NULL, -- JSON array of strings
    data        TEXT    NOT NULL, -- the service's JSON document
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (collection, id)
) STRICT, WITHOUT ROWID;

CREATE INDEX records_by_expiry ON records (expires_at);
CREATE INDEX records_by_owner ON records (collection, owner);
