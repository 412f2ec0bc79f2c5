package config_test

import (
	"strings"
	"testing"

	"authwatch/internal/config"
)

func TestPostgresDSN(t *testing.T) {
	withDSN := func(dsn string) string {
		return strings.Replace(minimal, `driver = "sqlite"`, "driver = \"postgres\"\ndsn = \""+dsn+"\"", 1)
	}
	for _, dsn := range []string{"postgres://authwatch:secret@db.example.net/authwatch", "host=/run/postgresql dbname=authwatch"} {
		c, err := config.Parse(withDSN(dsn))
		if err != nil {
			t.Fatalf("%s: %v", dsn, err)
		}
		if c.Store.DSN.Reveal() != dsn || c.Store.DSN.String() == dsn {
			t.Errorf("dsn %q kept as %q", dsn, c.Store.DSN.Reveal())
		}
	}
	// A DSN that does not parse is refused by key, without repeating it:
	// it may hold a password.
	_, err := config.Parse(withDSN("postgres://authwatch:hunter2@db.example.net:notaport/authwatch"))
	if err == nil || !strings.Contains(err.Error(), "store.dsn") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad dsn: %v", err)
	}
}
