package app_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2866"

	"authwatch/internal/app"
	"authwatch/radius/radiustest"
	"authwatch/watcher/routeros/routerostest"
)

func TestTailPrintsTheEvents(t *testing.T) {
	cfg := testConfig(t, filepath.Join(t.TempDir(), "authwatch.db"))
	d, stop := start(t, cfg)
	send(t, d, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "joao", SessionID: "s1", IP: netip.MustParseAddr("100.64.3.7")})

	for _, tt := range []struct {
		name  string
		opts  app.TailOptions
		wants []string
	}{
		{"lines", app.TailOptions{Login: "joao"}, []string{"session.start", "joao", "ip=100.64.3.7", "Lost-Carrier"}},
		{"json", app.TailOptions{Login: "*", JSON: true}, []string{`"kind":"session.start"`, `"reason":"Lost-Carrier"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := &syncBuffer{}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			o := tt.opts
			o.Server = "http://" + d.HTTPAddr()
			go func() { done <- app.Tail(ctx, o, out) }()
			// The snapshot brings the Start; a Stop sent now arrives live.
			waitFor(t, out, "session.start")
			send(t, d, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Stop, User: "joao", SessionID: "s1",
				TerminateCause: rfc2866.AcctTerminateCause_Value_LostCarrier})
			waitFor(t, out, "Lost-Carrier")
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.wants {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			send(t, d, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "joao", SessionID: "s1"})
		})
	}

	stop()
	err := app.Tail(context.Background(), app.TailOptions{Server: "http://" + d.HTTPAddr(), Login: "joao"}, &syncBuffer{})
	if err == nil || !strings.Contains(err.Error(), "cannot follow") {
		t.Errorf("unreachable server: %v", err)
	}
}

func waitFor(t *testing.T, out *syncBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in output:\n%s", s, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCheckReports(t *testing.T) {
	router, err := routerostest.New(routerostest.Options{User: "authwatch", Password: "right", Identity: "bras-norte"})
	if err != nil {
		t.Fatal(err)
	}
	defer router.Close()
	// A port nobody listens on stands in for a router that is down.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()

	dir := t.TempDir()
	write := func(routers string) string {
		path := filepath.Join(dir, "authwatch.toml")
		text := fmt.Sprintf("[store]\npath = %q\n[[nas]]\nname = \"bras-centro\"\naddress = \"10.0.0.1\"\nsecret = \"s\"\n%s", filepath.Join(dir, "a.db"), routers)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	router1 := fmt.Sprintf("[[routeros]]\nname = \"bras-norte\"\naddress = %q\nuser = \"authwatch\"\npassword = \"%%s\"\n", router.Addr())

	out := &syncBuffer{}
	if err := app.Check(context.Background(), write(fmt.Sprintf(router1, "right")), true, out); err != nil {
		t.Fatalf("all good: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), `OK   routeros bras-norte`) || !strings.Contains(out.String(), `identity "bras-norte"`) {
		t.Errorf("output:\n%s", out)
	}

	out = &syncBuffer{}
	cfg := fmt.Sprintf(router1, "wrong") + fmt.Sprintf("[[routeros]]\nname = \"bras-sul\"\naddress = %q\nuser = \"a\"\npassword = \"b\"\ndial_timeout = \"2s\"\n", dead)
	err = app.Check(context.Background(), write(cfg), true, out)
	if err == nil || !strings.Contains(err.Error(), "2 check(s) failed") {
		t.Fatalf("err %v\n%s", err, out)
	}
	for _, want := range []string{"FAIL routeros bras-norte", "login refused", "FAIL routeros bras-sul", "connection refused", "OK   store"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out.String(), "wrong") {
		t.Errorf("the password is printed:\n%s", out)
	}

	out = &syncBuffer{}
	if err := app.Check(context.Background(), write("[bogus]\n"), false, out); err == nil || !strings.Contains(out.String(), "unknown key bogus") {
		t.Errorf("bad config: %v\n%s", err, out)
	}
}

// TestCheckUpstreams: `check -connect` asks each proxy upstream with
// Status-Server; a live one answers, a dead one is named.
func TestCheckUpstreams(t *testing.T) {
	live := statusServerStandIn(t, "upstream-secret")
	ln, _ := net.ListenPacket("udp", "127.0.0.1:0")
	dead := ln.LocalAddr().String()
	ln.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "authwatch.toml")
	text := fmt.Sprintf(`[store]
path = %q
[[nas]]
name = "bras-centro"
address = "10.0.0.1"
secret = "s"
[proxy]
listen = "127.0.0.1:0"
[[proxy.upstream]]
name = "fr-1"
address = %q
secret = "upstream-secret"
[[proxy.upstream]]
name = "fr-2"
address = %q
secret = "upstream-secret"
`, filepath.Join(dir, "a.db"), live, dead)
	out := checkConnect(t, path, text, 1, "OK   upstream fr-1 auth", "answered Status-Server", "FAIL upstream fr-2 auth", "no verified answer")
	if strings.Contains(out, "upstream-secret") {
		t.Errorf("the secret is printed:\n%s", out)
	}
}

// checkConnect writes text to path, runs `check -connect` on it, and
// expects failed checks to fail and the output to say each of want.
func checkConnect(t *testing.T, path, text string, failed int, want ...string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	err := app.Check(context.Background(), path, true, out)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d check(s) failed", failed)) {
		t.Fatalf("err %v\n%s", err, out)
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	return out.String()
}

// statusServerStandIn answers Status-Server with Access-Accept, as
// FreeRADIUS does with status_server = yes.
func statusServerStandIn(t *testing.T, secret string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &radius.PacketServer{
		SecretSource: radius.StaticSecretSource([]byte(secret)),
		Handler: radius.HandlerFunc(func(w radius.ResponseWriter, r *radius.Request) {
			if r.Code == radius.CodeStatusServer {
				w.Write(r.Response(radius.CodeAccessAccept))
			}
		}),
	}
	go srv.Serve(pc)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return pc.LocalAddr().String()
}

// TestCheckSources: `check -connect` opens each FreeRADIUS log file and
// connects to each SQL source, naming what fails without the DSN's password.
func TestCheckSources(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "radius.log")
	if err := os.WriteFile(logPath, []byte("Wed Nov 25 10:00:01 2026 : Info: Ready to process requests\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "authwatch.toml")
	text := fmt.Sprintf(`[store]
path = %q
[[freeradius_log]]
name = "radius-1"
path = %q
[[freeradius_log]]
name = "radius-2"
path = %q
[[sql_source]]
name = "radius-db"
driver = "postgres"
dsn = "postgres://authwatch:Pw-in-dsn-42@127.0.0.1:1/radius?connect_timeout=1"
`, filepath.Join(dir, "a.db"), logPath, filepath.Join(dir, "missing.log"))
	out := checkConnect(t, path, text, 2, "2 FreeRADIUS log(s), 1 SQL source(s)", "OK   freeradius_log radius-1", "readable, 59 bytes",
		"FAIL freeradius_log radius-2", "no such file", "FAIL sql_source radius-db (postgres)")
	if strings.Contains(out, "Pw-in-dsn-42") {
		t.Errorf("the DSN's password is printed:\n%s", out)
	}
}
