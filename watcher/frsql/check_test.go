package frsql_test

import (
	"context"
	"strings"
	"testing"

	"authwatch/watcher/frsql"
)

// Check finds both tables; it names a refused grant; a connection refused
// (MariaDB: a wrong password; the test PostgreSQL trusts local users, so
// there a database that does not exist) is an error without the password.
func TestCheck(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := b.new(t, false)
		ctx := context.Background()
		check := func(cfg frsql.Config) (string, error) {
			return frsql.New(cfg, nil, nil, nil).Check(ctx)
		}
		detail, err := check(f.config())
		if err != nil || !strings.Contains(detail, "radpostauth") || !strings.Contains(detail, "radacct") {
			t.Fatalf("check: %q %v", detail, err)
		}

		f.revoke("radacct")
		if _, err := check(f.config()); err == nil || !strings.Contains(err.Error(), "radacct") {
			t.Errorf("with radacct refused: %v", err)
		}
		f.grant("radacct")

		bad := f.config()
		if !strings.Contains(bad.DSN, roPassword) {
			t.Fatal("the fixture's DSN does not hold its password")
		}
		if b.driver == frsql.MySQL {
			bad.DSN = strings.Replace(bad.DSN, roPassword, "wrong-Pw-77", 1)
		} else {
			bad.DSN += " dbname=no_such_db"
		}
		_, err = check(bad)
		if err == nil || strings.Contains(err.Error(), "wrong-Pw-77") || strings.Contains(err.Error(), roPassword) {
			t.Errorf("with a refused connection: %v", err)
		}
	})
}
