-- +goose Up
-- Audit entries past [auth] audit_retention are deleted oldest first.
CREATE INDEX audit_at ON audit (at);

-- +goose Down
DROP INDEX audit_at;
