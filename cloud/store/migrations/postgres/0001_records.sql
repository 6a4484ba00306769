-- Every collection in one table: argus' bucket/id/owner/ttl model. Times are Unix milliseconds
-- (BIGINT), as on SQLite. The JSON columns are TEXT, which sqlx's Any driver reads on every
-- backend. Replicas starting together are serialised by the migrator's advisory lock.
CREATE TABLE records (
    collection  TEXT   NOT NULL,
    id          TEXT   NOT NULL,
    owner       TEXT   NOT NULL,
    partner_ids TEXT   NOT NULL, -- JSON array of strings
    data        TEXT   NOT NULL, -- the service's JSON document
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (collection, id)
);

CREATE INDEX records_by_expiry ON records (expires_at);
CREATE INDEX records_by_owner ON records (collection, owner);
