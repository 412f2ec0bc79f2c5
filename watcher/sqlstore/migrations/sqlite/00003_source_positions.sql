-- +goose Up
-- Where sources that read something sequential (the FreeRADIUS log, an SQL
-- table) got to, so that a restart neither replays nor skips. position is
-- opaque to the store: each source encodes its own.
CREATE TABLE source_positions (
    source   TEXT    PRIMARY KEY,
    position BLOB    NOT NULL,
    saved_at INTEGER NOT NULL       -- unix microseconds
);

-- +goose Down
DROP TABLE source_positions;
