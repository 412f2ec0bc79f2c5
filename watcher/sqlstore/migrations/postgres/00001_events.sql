-- +goose Up
-- seq comes from this sequence, taken only under the append advisory lock
-- (see sqlstore.appendPostgres): commit order is seq order across instances.
CREATE SEQUENCE events_seq AS BIGINT;

CREATE TABLE events (
    seq        BIGINT PRIMARY KEY,
    at         BIGINT NOT NULL,                  -- unix microseconds, UTC
    login      TEXT   COLLATE "C" NOT NULL,      -- byte order: prefix search is an index range
    kind       TEXT   NOT NULL,
    source     TEXT   NOT NULL,
    nas        TEXT   NOT NULL DEFAULT '',
    session_id TEXT   NOT NULL DEFAULT '',
    mac        TEXT   NOT NULL DEFAULT '',
    ip         TEXT   NOT NULL DEFAULT '',
    reason     TEXT   NOT NULL DEFAULT '',
    detail     TEXT                              -- JSON, NULL when none
);
-- The API reads one login's events by seq, finds logins by MAC and by IP, and
-- retention deletes by time.
CREATE INDEX events_login_seq ON events (login, seq);
CREATE INDEX events_mac ON events (mac, seq) WHERE mac <> '';
CREATE INDEX events_ip ON events (ip, seq) WHERE ip <> '';
CREATE INDEX events_at ON events (at);

CREATE TABLE state_checkpoint (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    seq      BIGINT  NOT NULL,
    data     BYTEA   NOT NULL,
    saved_at BIGINT  NOT NULL
);

-- +goose Down
DROP TABLE state_checkpoint;
DROP TABLE events;
DROP SEQUENCE events_seq;
