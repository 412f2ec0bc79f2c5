-- +goose Up
CREATE TABLE watches (
    id      TEXT    PRIMARY KEY,
    login   TEXT    COLLATE "C" NOT NULL,
    active  BOOLEAN NOT NULL,
    started BIGINT  NOT NULL,       -- unix microseconds
    data    TEXT    NOT NULL        -- the watch as JSON
);
CREATE INDEX watches_active ON watches (active) WHERE active;
CREATE INDEX watches_login ON watches (login, started);

-- +goose Down
DROP TABLE watches;
