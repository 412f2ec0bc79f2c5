package frlog_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"authwatch/watcher"
	"authwatch/watcher/sqlstore"
)

// TestPositionStore checks the contract the source relies on, against the
// SQLite store (sqlstore's own files belong to another change): nothing
// saved is ErrNotFound, a save replaces, sources do not mix, and a position
// survives reopening the database.
func TestPositionStore(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "p.db")
	open := func() *sqlstore.Store {
		s, err := sqlstore.Open(ctx, sqlstore.Options{Path: db})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	var ps watcher.PositionStore = s
	if _, err := ps.LoadPosition(ctx, "freeradius:a"); !errors.Is(err, watcher.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	for _, p := range []string{"one", "two"} {
		if err := ps.SavePosition(ctx, "freeradius:a", []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := ps.SavePosition(ctx, "sql:b", nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open()
	defer s.Close()
	if p, err := s.LoadPosition(ctx, "freeradius:a"); err != nil || string(p) != "two" {
		t.Fatalf("got %q, %v", p, err)
	}
	if p, err := s.LoadPosition(ctx, "sql:b"); err != nil || len(p) != 0 {
		t.Fatalf("got %q, %v", p, err)
	}
}
