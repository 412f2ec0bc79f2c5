package routeros

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("s3cret\n"), 0o600)
	notPEM := filepath.Join(dir, "ca.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	ok := Config{Name: "bras-centro", Address: "10.0.0.1:8728", User: "authwatch", Password: "x"}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string // "" for valid
	}{
		{"minimal", func(*Config) {}, ""},
		{"no port", func(c *Config) { c.Address = "10.0.0.1" }, ""},
		{"ipv6 no port", func(c *Config) { c.Address = "[2001:db8::1]" }, ""},
		{"password file", func(c *Config) { c.Password, c.PasswordFile = "", pwFile }, ""},
		{"pin", func(c *Config) { c.TLS, c.Fingerprint = true, strings.Repeat("AB:", 31)+"AB" }, ""},
		{"no name", func(c *Config) { c.Name = "" }, "routeros: name: missing"},
		{"no address", func(c *Config) { c.Address = "" }, `routeros "bras-centro": address: missing`},
		{"bad port", func(c *Config) { c.Address = "10.0.0.1:http" }, `address: bad port "http"`},
		{"no user", func(c *Config) { c.User = "" }, "user: missing"},
		{"both passwords", func(c *Config) { c.PasswordFile = pwFile }, "password_file: set either"},
		{"missing password file", func(c *Config) { c.Password, c.PasswordFile = "", filepath.Join(dir, "nope") }, "password_file: open"},
		{"ca without tls", func(c *Config) { c.CAFile = notPEM }, "ca_file: only used with tls = true"},
		{"bad ca", func(c *Config) { c.TLS, c.CAFile = true, notPEM }, "ca_file: " + notPEM + ": no PEM certificate"},
		{"short pin", func(c *Config) { c.TLS, c.Fingerprint = true, "abcd" }, "fingerprint: 2 bytes"},
		{"non-hex pin", func(c *Config) { c.TLS, c.Fingerprint = true, "zz" }, "fingerprint: not hex"},
		{"fast poll", func(c *Config) { c.PollInterval = time.Millisecond }, "poll_interval: 1ms is too short"},
		{"backoff", func(c *Config) { c.ReconnectMin, c.ReconnectMax = time.Minute, time.Second }, "reconnect_max"},
		{"nothing on", func(c *Config) { c.Sessions, c.Log = new(false), new(false) }, "nothing to watch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Name: "r", Address: "10.0.0.1", TLS: true}.withDefaults()
	if c.Address != "10.0.0.1:8729" || c.PollInterval != 10*time.Second || c.DialTimeout != 10*time.Second ||
		!c.SessionsEnabled() || !c.LogEnabled() {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestConfigNeverShowsPassword(t *testing.T) {
	c := Config{Name: "r", Address: "10.0.0.1", User: "u", Password: "hunter2"}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("cfg", "config", c)
	if s := b.String() + c.String(); strings.Contains(s, "hunter2") {
		t.Fatalf("password shown: %s", s)
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		for range 20 {
			if d := backoff(time.Second, time.Minute, n); d < want/2 || d >= want {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v)", n, d, want/2, want)
			}
		}
	}
	if d := backoff(time.Second, time.Minute, 100); d < 30*time.Second || d >= time.Minute {
		t.Fatalf("backoff(100) = %v, want capped", d)
	}
}
