package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"authwatch/watcher"
)

var _ watcher.WatchStore = (*Store)(nil)

type watchRow struct {
	ID      string `db:"id"`
	Login   string `db:"login"`
	Active  bool   `db:"active"`
	Started int64  `db:"started"`
	Data    string `db:"data"`
}

func (r watchRow) record() watcher.WatchRecord {
	return watcher.WatchRecord{ID: r.ID, Login: r.Login, Active: r.Active, Started: time.UnixMicro(r.Started).UTC(), Data: []byte(r.Data)}
}

// SaveWatch inserts or replaces a watch. An ended watch is never replaced:
// with several instances following one watch, the first to end it (a
// cancel, a verdict) wins, and a later save of a copy still running cannot
// bring it back.
func (s *Store) SaveWatch(ctx context.Context, r watcher.WatchRecord) error {
	defer s.writer()()
	_, err := s.w.ExecContext(ctx, s.w.Rebind(`INSERT INTO watches (id, login, active, started, data) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET active = excluded.active, data = excluded.data WHERE watches.active`),
		r.ID, r.Login, r.Active, r.Started.UnixMicro(), string(r.Data))
	if err != nil {
		return fmt.Errorf("sqlstore: save watch %s: %w", r.ID, err)
	}
	return nil
}

// PruneWatches deletes the ended watches started before before, in small
// transactions; running ones stay, however old.
func (s *Store) PruneWatches(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.deleteOlder(ctx, "SELECT id FROM watches WHERE started < ? AND NOT active ORDER BY started LIMIT ?", "DELETE FROM watches WHERE id IN", before)
	if err != nil {
		return n, fmt.Errorf("sqlstore: prune watches: %w", err)
	}
	return n, nil
}

// LoadWatch returns one watch, or watcher.ErrNotFound.
func (s *Store) LoadWatch(ctx context.Context, id string) (watcher.WatchRecord, error) {
	var r watchRow
	err := s.r.GetContext(ctx, &r, s.r.Rebind("SELECT id, login, active, started, data FROM watches WHERE id = ?"), id)
	if errors.Is(err, sql.ErrNoRows) {
		return watcher.WatchRecord{}, watcher.ErrNotFound
	}
	if err != nil {
		return watcher.WatchRecord{}, fmt.Errorf("sqlstore: load watch %s: %w", id, err)
	}
	return r.record(), nil
}

// ActiveWatches returns every watch still running.
func (s *Store) ActiveWatches(ctx context.Context) ([]watcher.WatchRecord, error) {
	return s.selectWatches(ctx, "SELECT id, login, active, started, data FROM watches WHERE active = ? ORDER BY started", true)
}

// Watches returns a login's watches, newest first.
func (s *Store) Watches(ctx context.Context, login string, limit int) ([]watcher.WatchRecord, error) {
	if limit <= 0 {
		limit = 20
	}
	return s.selectWatches(ctx, "SELECT id, login, active, started, data FROM watches WHERE login = ? ORDER BY started DESC LIMIT ?", login, limit)
}

func (s *Store) selectWatches(ctx context.Context, q string, args ...any) ([]watcher.WatchRecord, error) {
	var rows []watchRow
	if err := s.r.SelectContext(ctx, &rows, s.r.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("sqlstore: watches: %w", err)
	}
	out := make([]watcher.WatchRecord, len(rows))
	for i, r := range rows {
		out[i] = r.record()
	}
	return out, nil
}
