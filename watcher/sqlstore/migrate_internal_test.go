package sqlstore

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"

	"authwatch/watcher"
	"authwatch/watcher/sqlstore/pgtest"
)

// A checkpoint saved whole by a version before migration 6 still restores
// the customers after the upgrade.
func TestMigrateWholeCheckpoint(t *testing.T) {
	legacy := `{"seq": 3, "customers": [{"login": "joao", "online": true, "since": "2026-11-02T10:00:00Z",
		"sessions": [{"nas": "bras1", "session_id": "s1", "source": "radius", "ip": "100.64.0.9",
		"start": "2026-11-02T10:00:00Z", "updated": "2026-11-02T10:00:00Z"}], "last_seq": 3}]}`
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		d    dialect
		opts func(t *testing.T) (dsn string, o Options)
	}{
		{sqliteDialect, func(t *testing.T) (string, Options) {
			path := filepath.Join(t.TempDir(), "old.db")
			return sqliteDSN(path, "", true), Options{Path: path, Logger: quiet}
		}},
		{postgresDialect, func(t *testing.T) (string, Options) {
			dsn := pgtest.DSN(t)
			return dsn, Options{Driver: "postgres", DSN: dsn, Logger: quiet}
		}},
	} {
		t.Run(tc.d.name, func(t *testing.T) {
			ctx := context.Background()
			dsn, o := tc.opts(t)
			db, err := sqlx.Open(tc.d.driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			fsys, err := tc.d.migrations()
			if err != nil {
				t.Fatal(err)
			}
			p, err := goose.NewProvider(tc.d.goose, db.DB, fsys)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.UpTo(ctx, 5); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, db.Rebind("INSERT INTO state_checkpoint (id, seq, data, saved_at) VALUES (1, 3, ?, 0)"), []byte(legacy)); err != nil {
				t.Fatal(err)
			}
			db.Close()

			s, err := Open(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			state := watcher.NewState()
			if _, err := watcher.Rebuild(ctx, s, state); err != nil {
				t.Fatal(err)
			}
			c, ok := state.Customer("joao")
			if !ok || !c.Online || len(c.Sessions) != 1 || c.Sessions[0].IP != "100.64.0.9" || state.Stats().Seq != 3 {
				t.Fatalf("after the upgrade: %+v, stats %+v", c, state.Stats())
			}
			// And back down: the checkpoint is dropped, the schema is 5's.
			if p, err = goose.NewProvider(tc.d.goose, s.w.DB, fsys); err != nil {
				t.Fatal(err)
			}
			if _, err := p.DownTo(ctx, 5); err != nil {
				t.Fatal(err)
			}
			if _, err := s.w.ExecContext(ctx, s.w.Rebind("INSERT INTO state_checkpoint (id, seq, data, saved_at) VALUES (1, 3, ?, 0)"), []byte(legacy)); err != nil {
				t.Fatalf("version 5's checkpoint after the down migration: %v", err)
			}
		})
	}
}
