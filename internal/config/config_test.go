package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"authwatch/internal/config"
)

const minimal = `
[http]
listen = "127.0.0.1:8080"

[store]
driver = "sqlite"            # or "postgres" (dsn = "...")
path = "/var/lib/authwatch/authwatch.db"

[radius]
listen = "0.0.0.0:1813"      # accounting

[[nas]]
name = "bras-centro"
address = "10.0.0.1"         # an IP or a CIDR
secret = "s3cret"
`

func TestMinimalFileFromTheDesign(t *testing.T) {
	c, err := config.Parse(minimal)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.NAS) != 1 || c.NAS[0].Prefix().String() != "10.0.0.1/32" || c.NAS[0].Secret.Reveal() != "s3cret" {
		t.Errorf("nas %+v", c.NAS)
	}
	if c.Store.Retention.D() != 90*24*time.Hour || c.RADIUS.DuplicateWindow.D() != 30*time.Second {
		t.Errorf("defaults not applied: %+v %+v", c.Store, c.RADIUS)
	}
}

func TestExampleFileIsValid(t *testing.T) {
	c, err := config.Load(filepath.Join("..", "..", "authwatch.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.NAS) == 0 {
		t.Error("example has no NAS")
	}
}

func TestRefused(t *testing.T) {
	tests := []struct {
		name, text, wantKey string
	}{
		{"unknown key", minimal + "\n[radius2]\nlisten = \"x\"\n", "radius2"},
		{"unknown nested key", strings.Replace(minimal, `secret = "s3cret"`, "secret = \"s3cret\"\nsecrte = \"x\"", 1), "nas.secrte"},
		{"bad listen", strings.Replace(minimal, `"0.0.0.0:1813"`, `"1813"`, 1), "radius.listen"},
		{"bad address", strings.Replace(minimal, `"10.0.0.1"`, `"10.0.0.300"`, 1), "nas[0].address"},
		{"bad cidr", strings.Replace(minimal, `"10.0.0.1"`, `"10.0.0.0/33"`, 1), "nas[0].address"},
		{"no secret", strings.Replace(minimal, `secret = "s3cret"`, "", 1), "nas[0].secret"},
		{"bad driver", strings.Replace(minimal, `driver = "sqlite"`, `driver = "mysql"`, 1), "store.driver"},
		{"postgres without dsn", strings.Replace(minimal, `driver = "sqlite"`, `driver = "postgres"`, 1), "store.dsn"},
		{"bad duration", minimal + "\n[log]\nlevel = \"loud\"\n", "log.level"},
		{"duplicate nas", minimal + "\n[[nas]]\nname = \"bras-centro\"\naddress = \"10.0.0.2\"\nsecret = \"x\"\n", "nas[1].name"},
		{"wrong type", strings.Replace(minimal, `listen = "127.0.0.1:8080"`, `listen = 8080`, 1), "listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse(tt.text)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.wantKey) {
				t.Errorf("error %q does not name %q", err, tt.wantKey)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
}

func TestRetentionDuration(t *testing.T) {
	with := func(v string) string {
		return strings.Replace(minimal, `driver = "sqlite"`, `driver = "sqlite"`+"\nretention = "+v, 1)
	}
	if _, err := config.Parse(with(`"week"`)); err == nil || !strings.Contains(err.Error(), "retention") {
		t.Errorf("bad duration: err %v", err)
	}
	c, err := config.Parse(with(`"720h"`))
	if err != nil || c.Store.Retention.D() != 720*time.Hour {
		t.Errorf("720h: %v %v", c, err)
	}
}

func TestSecretFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(minimal, `secret = "s3cret"`, `secret_file = "`+f+`"`, 1)
	c, err := config.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.NAS[0].Secret.Reveal(); got != "from-file" {
		t.Errorf("secret %q", got)
	}
	_, err = config.Parse(strings.Replace(minimal, `secret = "s3cret"`, `secret = "x"`+"\n"+`secret_file = "`+f+`"`, 1))
	if err == nil {
		t.Error("secret and secret_file both accepted")
	}
}

func TestSecretNeverPrints(t *testing.T) {
	c, _ := config.Parse(minimal)
	for _, s := range []string{c.NAS[0].Secret.String(), string(must(c.NAS[0].Secret.MarshalText()))} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("secret printed: %q", s)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestProbeSectionFromTheIssue(t *testing.T) {
	c, err := config.Parse(minimal + `
[probe]
ports = [80, 8080]
timeout = "3s"
allow = ["127.0.0.0/8"]   # CIDRs that may be probed
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Probe.AllowPrefixes()) != 1 || c.Probe.AllowPrefixes()[0].String() != "127.0.0.0/8" || c.Probe.Timeout.D() != 3*time.Second || !c.Probe.Enabled {
		t.Errorf("probe %+v", c.Probe)
	}
	for _, bad := range []string{`ports = [0]`, `allow = ["10.0.0.0/40"]`, `timeout = "1h"`, `source = "host"`} {
		if _, err := config.Parse(minimal + "\n[probe]\n" + bad + "\n"); err == nil || !strings.Contains(err.Error(), "probe.") {
			t.Errorf("%s: err %v", bad, err)
		}
	}
}

func TestRouterOSFromTheIssue(t *testing.T) {
	c, err := config.Parse(minimal + `
[[routeros]]
name = "bras-centro"
address = "10.0.0.1:8728"   # 8729 with tls = true
user = "authwatch"
password = "..."
`)
	if err != nil {
		t.Fatal(err)
	}
	src := c.RouterOS[0].Source()
	if src.Name != "bras-centro" || src.Password != "..." || !src.SessionsEnabled() || !src.LogEnabled() {
		t.Errorf("router %+v", src)
	}
	_, err = config.Parse(minimal + "\n[[routeros]]\nname = \"x\"\naddress = \"10.0.0.1\"\nuser = \"u\"\npassword = \"p\"\npoll_interval = \"1ms\"\n")
	if err == nil || !strings.Contains(err.Error(), "poll_interval") {
		t.Errorf("short poll interval: %v", err)
	}
}

func TestSourcesFromTheIssues(t *testing.T) {
	c, err := config.Parse(minimal + `
[proxy]
listen = "0.0.0.0:1812"        # Access-Request from the [[nas]] clients
forward_accounting = true      # relay what [radius] receives, after storing it

[[proxy.upstream]]             # first is primary, the next ones are failover
address = "10.0.0.5:1812"
acct_address = "10.0.0.5:1813"
secret = "upstream-secret"

[[freeradius_log]]
name = "radius-1"
path = "/var/log/freeradius/radius.log"
`)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Proxy.Enabled() || !c.Proxy.ForwardAccounting || len(c.FreeRADIUSLog) != 1 || c.FreeRADIUSLog[0].Name != "radius-1" {
		t.Errorf("proxy %+v, logs %+v", c.Proxy, c.FreeRADIUSLog)
	}
	for _, bad := range []struct{ text, key string }{
		{"[proxy]\nlisten = \"0.0.0.0:1812\"\n[[proxy.upstream]]\naddress = \"nope\"\nsecret = \"s\"\n", "proxy.upstream[0].address"},
		{"[[freeradius_log]]\nname = \"x\"\npath = \"relative.log\"\n", "freeradius_log[0]"},
	} {
		if _, err := config.Parse(minimal + bad.text); err == nil || !strings.Contains(err.Error(), bad.key) {
			t.Errorf("%q: err %v, want it to name %s", bad.text, err, bad.key)
		}
	}
}

func TestSQLSource(t *testing.T) {
	c, err := config.Parse(minimal + "\n[[sql_source]]\nname = \"radius-db\"\ndriver = \"mysql\"\ndsn = \"authwatch:pw@tcp(10.0.0.5:3306)/radius\"\n")
	if err != nil || len(c.SQLSources) != 1 {
		t.Fatalf("%v %+v", err, c)
	}
	_, err = config.Parse(minimal + "\n[[sql_source]]\nname = \"x\"\ndriver = \"oracle\"\ndsn = \"secret-dsn\"\n")
	if err == nil || !strings.Contains(err.Error(), "sql_source[0]") || strings.Contains(err.Error(), "secret-dsn") {
		t.Errorf("bad driver: %v", err)
	}
}
