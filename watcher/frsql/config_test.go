package frsql_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"authwatch/watcher/frsql"
)

func TestConfigValidate(t *testing.T) {
	ok := func() frsql.Config {
		return frsql.Config{Name: "radius-db", Driver: frsql.MySQL, DSN: "authwatch:pw@tcp(10.0.0.5:3306)/radius"}
	}
	off := false
	cases := []struct {
		name string
		mod  func(*frsql.Config)
		want string // "" for valid; else a substring of the error
	}{
		{"minimal mysql", func(c *frsql.Config) {}, ""},
		{"minimal postgres", func(c *frsql.Config) {
			c.Driver, c.DSN = frsql.Postgres, "postgres://authwatch:pw@10.0.0.5/radius?sslmode=disable"
		}, ""},
		{"postgres key=value", func(c *frsql.Config) { c.Driver, c.DSN = frsql.Postgres, "host=/run/postgresql dbname=radius user=aw" }, ""},
		{"everything", func(c *frsql.Config) {
			c.PostAuthTable, c.AcctTable = "radius.radpostauth", "radacct_2026"
			c.PollInterval, c.Backfill, c.TimeZone = 5*time.Second, 6*time.Hour, "America/Sao_Paulo"
			c.Columns = map[string]string{"nas": "nasipaddress", "mac": "callingstationid", "reply_message": "reply_message", "acct.session_id": "sessao"}
			c.NAS = map[string]string{"10.0.0.1": "bras-centro"}
		}, ""},
		{"dsn file", func(c *frsql.Config) { c.DSN, c.DSNFile = "", "/etc/authwatch/radius.dsn" }, ""},
		{"no name", func(c *frsql.Config) { c.Name = "" }, "name: missing"},
		{"name with space", func(c *frsql.Config) { c.Name = "a b" }, "name: must not contain white space"},
		{"no driver", func(c *frsql.Config) { c.Driver = "" }, `driver: missing (must be "mysql" or "postgres")`},
		{"bad driver", func(c *frsql.Config) { c.Driver = "sqlite" }, `driver: must be "mysql" or "postgres"`},
		{"no dsn", func(c *frsql.Config) { c.DSN = "" }, "dsn: missing"},
		{"both dsn", func(c *frsql.Config) { c.DSNFile = "/x" }, "dsn_file: set either"},
		{"relative dsn file", func(c *frsql.Config) { c.DSN, c.DSNFile = "", "radius.dsn" }, "dsn_file: \"radius.dsn\" is not absolute"},
		{"mysql url", func(c *frsql.Config) { c.DSN = "mysql://u:p@host/radius" }, "dsn: not in go-sql-driver's form"},
		{"mysql no database", func(c *frsql.Config) { c.DSN = "u:p@tcp(host:3306)/" }, "dsn: no database name"},
		{"mysql bad dsn", func(c *frsql.Config) { c.DSN = "u:p@tcp(host:3306/radius" }, "dsn: invalid DSN"},
		{"postgres bad dsn", func(c *frsql.Config) { c.Driver, c.DSN = frsql.Postgres, "postgres://u:Secret99@host:notaport/radius" }, "dsn:"},
		{"table injection", func(c *frsql.Config) { c.AcctTable = "radacct; DROP TABLE radacct" }, "acct_table: "},
		{"table quoted", func(c *frsql.Config) { c.PostAuthTable = "`radpostauth`" }, "postauth_table: "},
		{"table two dots", func(c *frsql.Config) { c.PostAuthTable = "a.b.c" }, "postauth_table: "},
		{"both off", func(c *frsql.Config) { c.PostAuth, c.Acct = &off, &off }, "nothing to follow"},
		{"poll too fast", func(c *frsql.Config) { c.PollInterval = time.Millisecond }, "poll_interval: "},
		{"bad zone", func(c *frsql.Config) { c.TimeZone = "Brasilia" }, "timezone: unknown time zone"},
		{"negative backfill", func(c *frsql.Config) { c.Backfill = -time.Hour }, "backfill: "},
		{"huge backfill", func(c *frsql.Config) { c.Backfill = 400 * 24 * time.Hour }, "backfill: "},
		{"unknown column", func(c *frsql.Config) { c.Columns = map[string]string{"password": "x"} }, "columns.password: unknown logical column"},
		{"unknown table prefix", func(c *frsql.Config) { c.Columns = map[string]string{"radcheck.login": "x"} }, `columns.radcheck.login: unknown table "radcheck"`},
		{"column of the other table", func(c *frsql.Config) { c.Columns = map[string]string{"postauth.session_id": "x"} }, "columns.postauth.session_id: unknown logical column"},
		{"column injection", func(c *frsql.Config) { c.Columns = map[string]string{"mac": "mac) FROM x --"} }, "columns.mac: "},
		{"password column", func(c *frsql.Config) { c.Columns = map[string]string{"reply_message": "pass"} }, `columns.reply_message: "pass" holds passwords`},
		{"password column, other case", func(c *frsql.Config) { c.Columns = map[string]string{"postauth.class": "Password"} }, "holds passwords"},
		{"empty nas name", func(c *frsql.Config) { c.NAS = map[string]string{"10.0.0.1": " "} }, "nas.10.0.0.1: empty NAS name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := ok()
			c.mod(&cfg)
			err := cfg.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.want != "" && err == nil:
				t.Fatalf("no error, want %q", c.want)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Fatalf("error %q, want it to contain %q", err, c.want)
			}
			if err != nil && strings.Contains(err.Error(), "Secret99") {
				t.Errorf("the password is in the error: %v", err)
			}
		})
	}
}

// TestConfigKeepsDSNOutOfLogs: printing or logging a Config never shows the
// DSN.
func TestConfigKeepsDSNOutOfLogs(t *testing.T) {
	cfg := frsql.Config{Name: "db", Driver: frsql.MySQL, DSN: "aw:Top-Secret-1@tcp(h:3306)/radius"}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "cfg", cfg)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg), b.String()} {
		if strings.Contains(s, "Top-Secret") {
			t.Errorf("DSN shown: %s", s)
		}
	}
}

// TestRunRefusesBadConfig: Run returns the configuration error at once.
func TestRunRefusesBadConfig(t *testing.T) {
	src := frsql.New(frsql.Config{Name: "db", Driver: "oracle", DSN: "x"}, nil, nil, nil)
	err := src.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "driver") {
		t.Fatalf("Run: %v", err)
	}
}
