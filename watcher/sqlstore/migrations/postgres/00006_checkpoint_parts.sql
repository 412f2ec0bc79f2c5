-- +goose Up
-- The state checkpoint is kept in parts of a few hundred customers each, so
-- that neither saving nor loading it holds the whole serialised state (36 MB
-- at 100,000 sessions) in one piece, in Go or in the database. A checkpoint
-- saved whole by an earlier version becomes part 0; it still reads.
CREATE TABLE state_checkpoint_parts (
    idx  INTEGER PRIMARY KEY,
    data BYTEA   NOT NULL
);
INSERT INTO state_checkpoint_parts (idx, data) SELECT 0, data FROM state_checkpoint WHERE id = 1;
ALTER TABLE state_checkpoint DROP COLUMN data;

-- +goose Down
-- Parts do not go back into one row: the checkpoint is dropped, and the next
-- start replays the events retention kept.
DELETE FROM state_checkpoint;
ALTER TABLE state_checkpoint ADD COLUMN data BYTEA NOT NULL DEFAULT '';
DROP TABLE state_checkpoint_parts;
