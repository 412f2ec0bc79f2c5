-- +goose Up
CREATE TABLE watches (
    id      TEXT    PRIMARY KEY,
    login   TEXT    NOT NULL,
    active  INTEGER NOT NULL,
    started INTEGER NOT NULL,       -- unix microseconds
    data    TEXT    NOT NULL        -- the watch as JSON
);
CREATE INDEX watches_active ON watches (active) WHERE active = 1;
CREATE INDEX watches_login ON watches (login, started);

-- +goose Down
DROP TABLE watches;
