package frlog_test

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"authwatch/watcher/frlog"
)

// TestConfigFromTheIssue: the minimal [[freeradius_log]] table of the issue
// decodes into Config as written and is valid.
func TestConfigFromTheIssue(t *testing.T) {
	var file struct {
		FreeRADIUSLog []frlog.Config `toml:"freeradius_log"`
	}
	md, err := toml.Decode(`
[[freeradius_log]]
name = "radius-1"
path = "/var/log/freeradius/radius.log"

[[freeradius_log]]
name = "radius-2"
path = "/srv/logs/radius2/radius.log"
timezone = "America/Sao_Paulo"
backfill = 200
clients = { bras1 = "bras-centro", "bras 2" = "bras-norte" }
`, &file)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("undecoded keys %v", u)
	}
	if len(file.FreeRADIUSLog) != 2 {
		t.Fatalf("%+v", file)
	}
	for _, c := range file.FreeRADIUSLog {
		if err := c.Validate(); err != nil {
			t.Errorf("%v", err)
		}
	}
	c := file.FreeRADIUSLog[1]
	if c.TimeZone != "America/Sao_Paulo" || c.Backfill != 200 || c.Clients["bras 2"] != "bras-norte" {
		t.Errorf("%+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	good := frlog.Config{Name: "radius-1", Path: "/var/log/freeradius/radius.log"}
	for _, tc := range []struct {
		name string
		mod  func(*frlog.Config)
		want string // in the error; "" for none
	}{
		{"minimal", func(*frlog.Config) {}, ""},
		{"utc", func(c *frlog.Config) { c.TimeZone = "UTC" }, ""},
		{"no name", func(c *frlog.Config) { c.Name = "" }, "freeradius_log: name: missing"},
		{"name with space", func(c *frlog.Config) { c.Name = "radius 1" }, "name: must not contain white space"},
		{"long name", func(c *frlog.Config) { c.Name = strings.Repeat("r", 65) }, "name: longer than 64 bytes"},
		{"no path", func(c *frlog.Config) { c.Path = "" }, `freeradius_log "radius-1": path: missing`},
		{"relative path", func(c *frlog.Config) { c.Path = "radius.log" }, "path: \"radius.log\" is not absolute"},
		{"directory", func(c *frlog.Config) { c.Path = "/var/log/freeradius/" }, "path: \"/var/log/freeradius/\" names a directory"},
		{"bad zone", func(c *frlog.Config) { c.TimeZone = "Mars/Olympus" }, `timezone: unknown time zone "Mars/Olympus"`},
		{"empty NAS", func(c *frlog.Config) { c.Clients = map[string]string{"bras1": " "} }, "clients.bras1: empty NAS name"},
		{"empty client", func(c *frlog.Config) { c.Clients = map[string]string{"": "x"} }, "clients: empty client short name"},
		{"negative backfill", func(c *frlog.Config) { c.Backfill = -1 }, "backfill: -1 is out of range"},
		{"huge backfill", func(c *frlog.Config) { c.Backfill = frlog.MaxBackfill + 1 }, "backfill:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mod(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestRunRefusesBadConfig: Run says what is wrong instead of following.
func TestRunRefusesBadConfig(t *testing.T) {
	src := frlog.New(frlog.Config{Name: "x"}, nil, nil, nil)
	if err := src.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "path: missing") {
		t.Fatalf("got %v", err)
	}
}
