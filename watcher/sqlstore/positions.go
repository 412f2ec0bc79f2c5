package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"authwatch/watcher"
)

var _ watcher.PositionStore = (*Store)(nil)

// SavePosition replaces the position kept for source. It goes through the
// writer like every other write, and is durable when it returns.
func (s *Store) SavePosition(ctx context.Context, source string, pos []byte) error {
	if pos == nil {
		pos = []byte{} // the column is NOT NULL; an empty position is still one
	}
	defer s.writer()()
	_, err := s.w.ExecContext(ctx, s.w.Rebind(`INSERT INTO source_positions (source, position, saved_at) VALUES (?, ?, ?)
		ON CONFLICT (source) DO UPDATE SET position = excluded.position, saved_at = excluded.saved_at`),
		source, pos, time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("sqlstore: save position of %s: %w", source, err)
	}
	return nil
}

// LoadPosition returns the position kept for source, or watcher.ErrNotFound.
func (s *Store) LoadPosition(ctx context.Context, source string) ([]byte, error) {
	var pos []byte
	err := s.r.GetContext(ctx, &pos, s.r.Rebind("SELECT position FROM source_positions WHERE source = ?"), source)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, watcher.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: load position of %s: %w", source, err)
	}
	return pos, nil
}
