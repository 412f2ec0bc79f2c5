package app_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"authwatch/internal/app"
	"authwatch/internal/config"
)

// demoLogin logs in as the admin the demo printed, and returns a client
// that carries the session cookie.
func demoLogin(t *testing.T, out *syncBuffer, url string) *http.Client {
	t.Helper()
	var user, pw string
	deadline := time.Now().Add(10 * time.Second)
	for pw == "" && time.Now().Before(deadline) {
		fmt.Sscanf(out.after("Log in as "), "%s with the password %s", &user, &pw)
		time.Sleep(10 * time.Millisecond)
	}
	if pw == "" {
		t.Fatalf("the demo printed no admin password: %q", out.String())
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	body, _ := json.Marshal(map[string]string{"username": user, "password": pw})
	resp, err := c.Post(url+"api/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("demo login as %s: %s", user, resp.Status)
	}
	return c
}

// accountsConfig writes a configuration with accounts on and returns its
// path.
func accountsConfig(t *testing.T, extraHTTP string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "authwatch.toml")
	text := fmt.Sprintf("[http]\nlisten = \"127.0.0.1:0\"\n%s\n[store]\npath = %q\n[radius]\nlisten = \"127.0.0.1:0\"\n",
		extraHTTP, filepath.Join(dir, "authwatch.db"))
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startLogged runs a daemon whose log goes to the returned buffer.
func startLogged(t *testing.T, cfg *config.Config) (*app.Daemon, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	d, err := app.New(ctx, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	return d, logs
}

func runUser(t *testing.T, action string, o app.UserOptions, stdin string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := app.User(context.Background(), action, o, strings.NewReader(stdin), &out, &errOut)
	return out.String() + errOut.String(), err
}

func runToken(t *testing.T, action string, o app.TokenOptions) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = app.Token(context.Background(), action, o, &out, &errOut)
	return out.String(), errOut.String(), err
}

func get(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAccountCommands: `authwatch user` and `authwatch token` against the
// store of a running daemon, which honours them at once.
func TestAccountCommands(t *testing.T) {
	path := accountsConfig(t, "")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	rootPW, anaPW := "root-password-31f", "ana-password-77c"
	steps := []struct {
		action string
		o      app.UserOptions
		stdin  string
		want   string // in the output, or in the error when fail
		fail   bool
	}{
		{"add", app.UserOptions{Role: "admin", Name: "root"}, rootPW + "\n", "user root added (admin)", false},
		{"add", app.UserOptions{Role: "agent", Name: "Ana"}, anaPW + "\r\n", "user ana added (agent)", false},
		{"add", app.UserOptions{Role: "agent", Name: "ana"}, anaPW + "\n", "already exists", true},
		{"add", app.UserOptions{Role: "agent", Name: "bia"}, "short\n", "at least 8", true},
		{"add", app.UserOptions{Role: "agent", Name: "bia"}, "", "no password on stdin", true},
		{"add", app.UserOptions{Role: "boss", Name: "bia"}, "long-enough\n", "agent or admin", true},
		{"passwd", app.UserOptions{Name: "ana"}, anaPW + "2\n", "password of ana changed", false},
		{"passwd", app.UserOptions{Name: "zed"}, "long-enough\n", "no user", true},
		{"disable", app.UserOptions{Name: "root"}, "", "last enabled admin", true},
		{"disable", app.UserOptions{Name: "ana"}, "", "user ana disabled", false},
		{"enable", app.UserOptions{Name: "ana"}, "", "user ana enabled", false},
		{"role", app.UserOptions{Name: "ana", Role: "admin"}, "", "ana is now admin", false},
		{"role", app.UserOptions{Name: "ana", Role: "agent"}, "", "ana is now agent", false},
		{"list", app.UserOptions{}, "", "ana   agent  enabled", false},
		{"remove", app.UserOptions{Name: "ana"}, "", "unknown action", true},
		{"add", app.UserOptions{Role: "agent"}, "", "which user", true},
	}
	for _, s := range steps {
		s.o.Config = path
		out, err := runUser(t, s.action, s.o, s.stdin)
		got := out
		if s.fail {
			if err == nil {
				t.Fatalf("user %s %+v: no error, output %q", s.action, s.o, out)
			}
			got = err.Error()
		} else if err != nil {
			t.Fatalf("user %s %+v: %v", s.action, s.o, err)
		}
		if !strings.Contains(got, s.want) {
			t.Errorf("user %s %+v: %q, want %q", s.action, s.o, got, s.want)
		}
		for _, pw := range []string{rootPW, anaPW} {
			if strings.Contains(out, pw) {
				t.Errorf("user %s printed a password", s.action)
			}
		}
	}

	d, logs := startLogged(t, cfg)
	api := "http://" + d.HTTPAddr() + "/api/customers/joao"
	if code := get(t, api, ""); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	token, info, err := runToken(t, "create", app.TokenOptions{Config: path, User: "ana", Name: "tail on the desk"})
	if err != nil {
		t.Fatal(err)
	}
	token = strings.TrimSpace(token)
	if !strings.HasPrefix(token, "aw_") || strings.Contains(info, token) || !strings.Contains(info, "shown only now") {
		t.Fatalf("token create: stdout %q stderr %q", token, info)
	}
	if code := get(t, api, token); code != 200 {
		t.Fatalf("with the token: %d", code)
	}
	// authwatch tail follows with it.
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.Tail(ctx, app.TailOptions{Server: "http://" + d.HTTPAddr(), Token: token, Login: "joao", JSON: true}, out)
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("tail with a token: %v", err)
	}

	list, _, err := runToken(t, "list", app.TokenOptions{Config: path})
	if err != nil || !strings.Contains(list, "tail on the desk") || strings.Contains(list, token) {
		t.Fatalf("token list: %q %v", list, err)
	}
	if _, _, err := runToken(t, "revoke", app.TokenOptions{Config: path, ID: "1"}); err != nil {
		t.Fatal(err)
	}
	if code := get(t, api, token); code != 401 {
		t.Errorf("revoked token: %d", code)
	}
	err = app.Tail(context.Background(), app.TailOptions{Server: "http://" + d.HTTPAddr(), Token: token, Login: "joao"}, &syncBuffer{})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("tail with a revoked token: %v", err)
	}
	if _, _, err := runToken(t, "revoke", app.TokenOptions{Config: path, ID: "99"}); err == nil {
		t.Error("revoking a token that does not exist succeeded")
	}
	if _, _, err := runToken(t, "create", app.TokenOptions{Config: path}); err == nil {
		t.Error("token without a user")
	}
	for _, secret := range []string{token, rootPW, anaPW} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("daemon log has a secret:\n%s", logs)
		}
	}
}

// TestHTTPS: with tls_cert and tls_key the daemon serves HTTPS, and the
// session cookie is Secure.
func TestHTTPS(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	path := accountsConfig(t, fmt.Sprintf("tls_cert = %q\ntls_key = %q", cert, key))
	if _, err := runUser(t, "add", app.UserOptions{Config: path, Role: "agent", Name: "ana"}, "long-enough\n"); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := startLogged(t, cfg)
	if !strings.HasPrefix(d.URL(), "https://") {
		t.Fatalf("URL %s", d.URL())
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Post(d.URL()+"api/login", "application/json", strings.NewReader(`{"username":"ana","password":"long-enough"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cs := resp.Cookies(); resp.StatusCode != 200 || len(cs) != 1 || !cs[0].Secure || !cs[0].HttpOnly {
		t.Fatalf("login over TLS: %s %+v", resp.Status, resp.Cookies())
	}
	// Plain HTTP on the TLS port gets nothing.
	if resp, err := http.Get("http://" + d.HTTPAddr() + "/api/me"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS port: %s", resp.Status)
		}
	}
}

// TestPlainHTTPWarning: a non-loopback address without TLS or proxy is
// served, with a warning at start.
func TestPlainHTTPWarning(t *testing.T) {
	for _, tt := range []struct {
		listen, extra string
		warn          bool
	}{
		{"127.0.0.1:0", "", false},
		{"0.0.0.0:0", "", true},
		{"0.0.0.0:0", "[auth]\ntrusted_proxies = [\"10.0.0.5\"]", false},
	} {
		dir := t.TempDir()
		cfg, err := config.Parse(fmt.Sprintf("[http]\nlisten = %q\n[store]\npath = %q\n[radius]\nlisten = \"127.0.0.1:0\"\n%s\n",
			tt.listen, filepath.Join(dir, "a.db"), tt.extra))
		if err != nil {
			t.Fatal(err)
		}
		_, logs := startLogged(t, cfg)
		if got := strings.Contains(logs.String(), "without TLS"); got != tt.warn {
			t.Errorf("%s %q: warned %v, want %v:\n%s", tt.listen, tt.extra, got, tt.warn, logs)
		}
	}
}

// selfSigned writes a throwaway certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "authwatch test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write := func(path, typ string, b []byte) {
		var buf bytes.Buffer
		pem.Encode(&buf, &pem.Block{Type: typ, Bytes: b})
		if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(certFile, "CERTIFICATE", der)
	write(keyFile, "EC PRIVATE KEY", kb)
	return certFile, keyFile
}

// With logins required and no account yet, the start says how to make the
// first one; once one exists, it does not.
func TestNoAccountsWarning(t *testing.T) {
	path := accountsConfig(t, "")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	const warning = "no accounts yet"
	// Run checks first, then starts the parts: once the listener says it
	// listens, the warning is there or will not come.
	started := func(logs *syncBuffer) string {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if s := logs.String(); strings.Contains(s, "radius: listening for accounting") {
				return s
			}
		}
		t.Fatalf("the daemon did not start:\n%s", logs)
		return ""
	}
	_, logs := startLogged(t, cfg)
	if s := started(logs); !strings.Contains(s, warning) || !strings.Contains(s, "authwatch user add") {
		t.Fatalf("no warning without accounts:\n%s", s)
	}
	if _, err := runUser(t, "add", app.UserOptions{Config: path, Role: "admin", Name: "root"}, "root-password-31f\n"); err != nil {
		t.Fatal(err)
	}
	_, logs = startLogged(t, cfg)
	if s := started(logs); strings.Contains(s, warning) {
		t.Fatalf("warned with an account:\n%s", s)
	}
}
