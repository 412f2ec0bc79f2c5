-- +goose Up
-- Accounts of support agents and admins. Accounts are disabled, never
-- deleted, so the audit log always names someone who existed.
CREATE TABLE users (
    id               INTEGER PRIMARY KEY,
    name             TEXT    NOT NULL UNIQUE,   -- lower case
    role             TEXT    NOT NULL CHECK (role IN ('agent', 'admin')),
    password_hash    BLOB    NOT NULL,          -- bcrypt
    disabled         INTEGER NOT NULL DEFAULT 0,
    created          INTEGER NOT NULL,          -- unix microseconds
    password_changed INTEGER NOT NULL           -- unix microseconds
);

-- Web sessions. hash is the SHA-256 of the cookie value, which is never
-- stored: a copy of the database opens no session.
CREATE TABLE sessions (
    hash      BLOB    PRIMARY KEY,
    user_id   INTEGER NOT NULL,
    csrf      TEXT    NOT NULL,
    created   INTEGER NOT NULL,                 -- unix microseconds
    last_seen INTEGER NOT NULL,                 -- unix microseconds
    remote    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_last_seen ON sessions (last_seen);

-- API tokens, by the SHA-256 of the token.
CREATE TABLE api_tokens (
    id        INTEGER PRIMARY KEY,
    hash      BLOB    NOT NULL UNIQUE,
    user_id   INTEGER NOT NULL,
    name      TEXT    NOT NULL DEFAULT '',
    created   INTEGER NOT NULL,                 -- unix microseconds
    last_used INTEGER NOT NULL DEFAULT 0,       -- unix microseconds; 0 never
    revoked   INTEGER NOT NULL DEFAULT 0        -- unix microseconds; 0 valid
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- Who looked at which customer's data, when and from where.
CREATE TABLE audit (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,                  -- unix microseconds
    username TEXT    NOT NULL,
    method   TEXT    NOT NULL,                  -- session, token, proxy, desk
    action   TEXT    NOT NULL,
    login    TEXT    NOT NULL DEFAULT '',
    query    TEXT    NOT NULL DEFAULT '',
    remote   TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_login ON audit (login, id);
CREATE INDEX audit_query ON audit (query, id) WHERE query <> '';
CREATE INDEX audit_user ON audit (username, id);

-- +goose Down
DROP TABLE audit;
DROP TABLE api_tokens;
DROP TABLE sessions;
DROP TABLE users;
