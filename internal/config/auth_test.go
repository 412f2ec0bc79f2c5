package config_test

import (
	"strings"
	"testing"
	"time"

	"authwatch/internal/config"
)

// withHTTP is the minimal file with the [http] table replaced.
func withHTTP(http string) string {
	return strings.Replace(minimal, "[http]\nlisten = \"127.0.0.1:8080\"\n", "[http]\n"+http+"\n", 1)
}

func TestAuthDefaults(t *testing.T) {
	c, err := config.Parse(minimal)
	if err != nil {
		t.Fatal(err)
	}
	a := c.Auth
	if !c.HTTP.Auth || a.SessionIdle.D() != 2*time.Hour || a.SessionMax.D() != 12*time.Hour ||
		a.LoginFailuresPerUser != 5 || a.LoginFailuresPerAddress != 20 || a.LoginWindow.D() != 15*time.Minute || c.HTTP.TLS() {
		t.Errorf("defaults: %+v %+v", c.HTTP, a)
	}
}

// Desk mode (no accounts) only where nobody but the machine's user can
// connect.
func TestDeskModeOnlyOnLoopback(t *testing.T) {
	tests := []struct {
		listen string
		ok     bool
	}{
		{"127.0.0.1:8080", true},
		{"127.9.9.9:8080", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{"[::ffff:127.0.0.1]:8080", true},
		{"0.0.0.0:8080", false},
		{":8080", false},
		{"[::]:8080", false},
		{"10.0.0.5:8080", false},
		{"authwatch.example.net:8080", false},
	}
	for _, tt := range tests {
		t.Run(tt.listen, func(t *testing.T) {
			_, err := config.Parse(withHTTP("listen = \"" + tt.listen + "\"\nauth = false"))
			if tt.ok && err != nil {
				t.Fatal(err)
			}
			if !tt.ok && (err == nil || !strings.Contains(err.Error(), "http.auth = false is only allowed when http.listen is a loopback address")) {
				t.Fatalf("accepted or wrong error: %v", err)
			}
			// With accounts, any address will do.
			if _, err := config.Parse(withHTTP("listen = \"" + tt.listen + "\"")); err != nil {
				t.Errorf("with auth: %v", err)
			}
		})
	}
}

func TestAuthRefused(t *testing.T) {
	tests := []struct {
		name, text, wantKey string
	}{
		{"cert without key", withHTTP("listen = \"127.0.0.1:8080\"\ntls_cert = \"/x.pem\""), "http.tls_key"},
		{"key without cert", withHTTP("listen = \"127.0.0.1:8080\"\ntls_key = \"/x.pem\""), "http.tls_cert"},
		{"missing cert files", withHTTP("listen = \"127.0.0.1:8080\"\ntls_cert = \"/nonexistent/c.pem\"\ntls_key = \"/nonexistent/k.pem\""), "http.tls_cert"},
		{"public url with a path", withHTTP("listen = \"127.0.0.1:8080\"\npublic_urls = [\"https://a.example.net/authwatch\"]"), "http.public_urls[0]"},
		{"public url without scheme", withHTTP("listen = \"127.0.0.1:8080\"\npublic_urls = [\"https://ok.example.net\", \"a.example.net\"]"), "http.public_urls[1]"},
		{"short idle", minimal + "\n[auth]\nsession_idle = \"10s\"\n", "auth.session_idle"},
		{"max under idle", minimal + "\n[auth]\nsession_idle = \"2h\"\nsession_max = \"1h\"\n", "auth.session_max"},
		{"proxy header alone", minimal + "\n[auth]\nproxy_header = \"X-Remote-User\"\n", "auth.proxy_header"},
		{"proxy header Authorization", minimal + "\n[auth]\nproxy_header = \"Authorization\"\ntrusted_proxies = [\"10.0.0.1\"]\n", "auth.proxy_header"},
		{"proxy header garbage", minimal + "\n[auth]\nproxy_header = \"X Remote\"\ntrusted_proxies = [\"10.0.0.1\"]\n", "auth.proxy_header"},
		{"bad proxy", minimal + "\n[auth]\ntrusted_proxies = [\"10.0.0.0/33\"]\n", "auth.trusted_proxies[0]"},
		{"no failures allowed", minimal + "\n[auth]\nlogin_failures_per_user = 0\n", "auth.login_failures_per_user"},
		{"address limit", minimal + "\n[auth]\nlogin_failures_per_address = -1\n", "auth.login_failures_per_address"},
		{"window", minimal + "\n[auth]\nlogin_window = \"1s\"\n", "auth.login_window"},
		{"negative audit retention", minimal + "\n[auth]\naudit_retention = \"-1h\"\n", "auth.audit_retention"},
		{"unknown auth key", minimal + "\n[auth]\nsession_timeout = \"1h\"\n", "auth.session_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse(tt.text)
			if err == nil || !strings.Contains(err.Error(), tt.wantKey) {
				t.Fatalf("error %v, want one naming %s", err, tt.wantKey)
			}
		})
	}
}

func TestAuthAccepted(t *testing.T) {
	c, err := config.Parse(withHTTP("listen = \"0.0.0.0:8080\"\npublic_urls = [\"https://authwatch.example.net/\"]") + `
[auth]
session_idle = "30m"
session_max = "8h"
proxy_header = "X-Remote-User"
trusted_proxies = ["10.0.0.5", "192.168.10.0/24"]
login_failures_per_user = 10
`)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Auth.TrustedPrefixes(); len(p) != 2 || p[0].String() != "10.0.0.5/32" || p[1].String() != "192.168.10.0/24" {
		t.Errorf("trusted proxies %v", p)
	}
	if c.Auth.SessionIdle.D() != 30*time.Minute || c.Auth.LoginFailuresPerUser != 10 || c.Auth.LoginFailuresPerAddress != 20 {
		t.Errorf("%+v", c.Auth)
	}
}
