-- +goose Up
-- Ended reboot watches past the retention are deleted oldest first.
CREATE INDEX watches_started ON watches (started);

-- +goose Down
DROP INDEX watches_started;
