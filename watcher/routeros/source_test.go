package routeros_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/routeros"
	"authwatch/watcher/routeros/routerostest"
	"authwatch/watcher/sqlstore"
)

const routerName = "bras-test"

// harness runs a Source against the fake router, recording through a real
// Recorder into a SQLite store, with a firehose subscriber standing in for
// the websocket page.
type harness struct {
	t     *testing.T
	srv   *routerostest.Server
	src   *routeros.Source
	store *sqlstore.Store
	state *watcher.State
	sub   *watcher.Subscription
	stop  func()
	seen  []watcher.Event
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func baseConfig(srv *routerostest.Server) routeros.Config {
	return routeros.Config{
		Name: routerName, Address: srv.Addr(), User: "authwatch", Password: "s3cret",
		PollInterval: time.Second, DialTimeout: 2 * time.Second,
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
	}
}

func newFake(t *testing.T, o routerostest.Options) *routerostest.Server {
	t.Helper()
	if o.User == "" {
		o.User, o.Password = "authwatch", "s3cret"
	}
	o.Identity = "bras-test-identity"
	srv, err := routerostest.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// start runs the source until the test ends. mod may change the config.
func start(t *testing.T, srv *routerostest.Server, mod func(*routeros.Config)) *harness {
	t.Helper()
	return startWith(t, srv, mod, nil)
}

// startWith is start with a hook called before Run.
func startWith(t *testing.T, srv *routerostest.Server, mod func(*routeros.Config), before func(*routeros.Source, *watcher.State)) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	store, err := sqlstore.Open(ctx, sqlstore.Options{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "r.db"), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	state, hub := watcher.NewState(), watcher.NewHub(4096)
	rec := watcher.NewRecorder(store, state, hub, watcher.RecorderOptions{Logger: testLogger(t)})
	cfg := baseConfig(srv)
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	src := routeros.New(cfg, rec, testLogger(t))
	if before != nil {
		before(src, state)
	}
	h := &harness{t: t, srv: srv, src: src, store: store, state: state, sub: hub.Subscribe(watcher.Firehose)}

	recCtx, recCancel := context.WithCancel(context.Background())
	recDone, srcDone := make(chan struct{}), make(chan error, 1)
	var stop func()
	go func() { rec.Run(recCtx); close(recDone) }()
	go func() { srcDone <- src.Run(ctx) }()
	var once sync.Once
	h.stop = func() { once.Do(stop) }
	stop = func() {
		cancel()
		select {
		case err := <-srcDone:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
		recCancel()
		<-recDone
		store.Close()
	}
	t.Cleanup(h.stop)
	return h
}

// next waits for the next event that matches kind and login (login ""
// matches any), failing the test after a few seconds. Every event seen is
// kept in h.seen.
func (h *harness) next(kind watcher.Kind, login string) watcher.Event {
	h.t.Helper()
	timeout := time.After(4 * time.Second)
	for {
		ev := h.receive(timeout, func() string { return fmt.Sprintf("no %s event for %q", kind, login) })
		if ev.Kind == kind && (login == "" || ev.Login == login) {
			return ev
		}
	}
}

// all waits for the next event of each of kinds for login, in any order:
// what the router reports through two listens (/log and /ppp/active)
// arrives in either order. It returns the first of each kind.
func (h *harness) all(login string, kinds ...watcher.Kind) map[watcher.Kind]watcher.Event {
	h.t.Helper()
	got := map[watcher.Kind]watcher.Event{}
	timeout := time.After(4 * time.Second)
	for len(got) < len(kinds) {
		ev := h.receive(timeout, func() string { return fmt.Sprintf("not every one of %v for %q", kinds, login) })
		if _, dup := got[ev.Kind]; !dup && ev.Login == login && slices.Contains(kinds, ev.Kind) {
			got[ev.Kind] = ev
		}
	}
	return got
}

// receive returns the next event of the subscription, kept in h.seen,
// failing the test with what() when timeout comes first.
func (h *harness) receive(timeout <-chan time.Time, what func() string) watcher.Event {
	h.t.Helper()
	for {
		select {
		case m, ok := <-h.sub.C():
			if !ok {
				h.t.Fatal("subscription cut off")
			}
			if m.Event == nil {
				continue
			}
			h.seen = append(h.seen, *m.Event)
			return *m.Event
		case <-timeout:
			h.t.Fatalf("%s; seen: %s", what(), describe(h.seen))
		}
	}
}

// quiet collects events for d and fails on any session event.
func (h *harness) quiet(d time.Duration) {
	h.t.Helper()
	timeout := time.After(d)
	for {
		select {
		case m := <-h.sub.C():
			if m.Event == nil {
				continue
			}
			ev := *m.Event
			h.seen = append(h.seen, ev)
			if strings.HasPrefix(string(ev.Kind), "session.") {
				h.t.Fatalf("unexpected %s for %s (%s)", ev.Kind, ev.Login, ev.Reason)
			}
		case <-timeout:
			return
		}
	}
}

func (h *harness) waitStatus(what string, cond func(routeros.Status) bool) routeros.Status {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := h.src.Status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("status never %s: %+v", what, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// listening waits until the source has both listens up on the fake.
func (h *harness) listening() {
	h.t.Helper()
	h.waitStatus("listening", func(st routeros.Status) bool {
		return st.Connected && h.srv.Listens(routerostest.PPPActive) == 1 && h.srv.Listens(routerostest.LogMenu) == 1
	})
}

func describe(evs []watcher.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString("\n  " + string(ev.Kind) + " " + ev.Login + " " + ev.Reason)
	}
	return b.String()
}

func TestSessionsAppearAndDisappear(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routerostest.Options{})
	srv.AddSession(routerostest.Session{Name: "ana", CallerID: "18:fd:74:22:23:b7", Address: "10.99.0.7", Uptime: "1h2m3s", SessionID: "0x81A00007"})
	h := start(t, srv, nil)

	// A session already up at first start is an update, dated by its uptime.
	ev := h.next(watcher.SessionUpdate, "ana")
	if ev.Reason != "already up when authwatch connected" || ev.IP != "10.99.0.7" || ev.MAC != "18:FD:74:22:23:B7" ||
		ev.SessionID != "81a00007" || ev.Source != "routeros:"+routerName || ev.NAS != routerName || ev.Detail.SessionTime != 3723 {
		t.Fatalf("initial update = %+v %+v", ev, ev.Detail)
	}
	if c, _ := h.state.Customer("ana"); !c.Online || time.Since(c.Since) < time.Hour {
		t.Fatalf("ana = %+v, want online for an hour", c)
	}
	h.listening()

	id := srv.AddSession(routerostest.Session{Name: "joao", CallerID: "52:54:00:aa:00:03", Address: "0.0.0.0"})
	ev = h.next(watcher.SessionStart, "joao")
	if ev.IP != "" || ev.MAC != "52:54:00:AA:00:03" || ev.Detail.Attributes["id"] != id || ev.Detail.Service != "pppoe" {
		t.Fatalf("start = %+v %+v (the 0.0.0.0 placeholder is no IP)", ev, ev.Detail)
	}
	if err := srv.SetSessionAddress(id, "10.99.0.2"); err != nil {
		t.Fatal(err)
	}
	if ev = h.next(watcher.SessionUpdate, "joao"); ev.IP != "10.99.0.2" {
		t.Fatalf("update = %+v", ev)
	}
	if c, _ := h.state.Customer("joao"); !c.Online || len(c.Sessions) != 1 || c.Sessions[0].IP != "10.99.0.2" {
		t.Fatalf("joao = %+v", c)
	}

	// The router logs why it ends a session before it leaves /ppp/active;
	// the stop carries that reason.
	srv.AppendLog("pppoe,ppp,info", "<pppoe-joao>: terminating... - peer is not responding")
	h.next(watcher.Log, "joao")
	srv.RemoveSession(id)
	ev = h.next(watcher.SessionStop, "joao")
	if ev.Reason != "peer is not responding" || ev.Detail.TerminateCause != "Lost-Carrier" {
		t.Fatalf("stop = %+v %+v", ev, ev.Detail)
	}
	if c, _ := h.state.Customer("joao"); c.Online || c.LastStop == nil {
		t.Fatalf("joao after stop = %+v", c)
	}
	srv.RemoveSession("ana")
	if ev = h.next(watcher.SessionStop, "ana"); ev.Reason != "gone from /ppp/active" {
		t.Fatalf("stop = %+v", ev)
	}

	// Polls that find nothing new record nothing.
	h.quiet(1500 * time.Millisecond)

	// Everything the subscriber saw is in the store, in order.
	stored, err := h.store.Events(context.Background(), watcher.Query{Login: "joao"})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range stored {
		kinds = append(kinds, string(ev.Kind))
	}
	if got, want := strings.Join(kinds, " "), "session.start session.update log session.stop"; got != want {
		t.Fatalf("stored for joao: %s, want %s", got, want)
	}
	st := h.src.Status()
	if !st.Connected || !st.SessionsListen || !st.LogListen || st.Identity != "bras-test-identity" || st.Version == "" || st.Events < 6 {
		t.Fatalf("status = %+v", st)
	}
}

func TestAuthRejectFromLog(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routerostest.Options{})
	h := start(t, srv, nil)
	h.listening()
	srv.AppendLog("pppoe,info", "PPPoE connection established from 18:FD:74:22:23:B7")     // no login: dropped
	srv.AppendLog("system,info,account", "user authwatch logged in from 10.0.0.9 via api") // an admin, not a customer
	srv.AppendLog("pppoe,ppp,error", "<0010>: user maria authentication failed")
	ev := h.next(watcher.AuthReject, "maria")
	if ev.Reason != "authentication failed" || ev.Detail.Attributes["topics"] != "pppoe,ppp,error" {
		t.Fatalf("reject = %+v %+v", ev, ev.Detail)
	}
	if c, _ := h.state.Customer("maria"); c.LastAuth == nil || c.LastAuth.Accepted || c.LastAuth.Reason != "authentication failed" {
		t.Fatalf("maria = %+v", c)
	}

	// A RADIUS outage is told to everyone, and explains the next failure.
	srv.AppendLog("radius,debug", "RADIUS server 10.0.0.5 is not responding")
	if ev = h.next(watcher.Log, ""); ev.Login != "" || ev.Detail.Attributes["radius_server"] != "10.0.0.5" {
		t.Fatalf("radius = %+v", ev)
	}
	srv.AppendLog("pppoe,ppp,error", "<0011>: user maria authentication failed")
	if ev = h.next(watcher.AuthReject, "maria"); ev.Reason != "authentication failed (RADIUS server not responding)" {
		t.Fatalf("reject = %+v", ev)
	}
	srv.AppendLog("pppoe,ppp,info", "<pppoe-maria>: authenticated")
	h.next(watcher.AuthAccept, "maria")
	st := h.src.Status()
	if st.LogLines != 6 || st.LogDropped != 1 {
		t.Fatalf("log counters = %d lines, %d dropped; want 6, 1", st.LogLines, st.LogDropped)
	}
}

// TestReconnectResync drops every connection (a reboot, a link failure)
// while sessions change, and checks that only the real differences are
// recorded once the source is back.
func TestReconnectResync(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routerostest.Options{})
	for _, n := range []string{"ana", "bia", "caio"} {
		srv.AddSession(routerostest.Session{Name: n, CallerID: "52:54:00:00:00:0" + n[:1], Address: "10.99.1." + n[:1]})
	}
	h := start(t, srv, nil)
	for range 3 {
		h.next(watcher.SessionUpdate, "")
	}
	h.listening()

	// Keep it out while things change: the changes must be found by the
	// resync, not by the listen.
	srv.SetCredentials("authwatch", "rotated")
	if srv.KillConnections() != 2 {
		t.Fatal("expected two connections (command and listen)")
	}
	h.waitStatus("disconnected", func(st routeros.Status) bool { return !st.Connected })
	srv.RemoveSession("bia")
	srv.AddSession(routerostest.Session{Name: "duda", CallerID: "52:54:00:00:00:0d", Address: "10.99.1.4", Uptime: "42s"})
	h.waitStatus("failing login", func(st routeros.Status) bool {
		return strings.Contains(st.LastError, "invalid user name or password")
	})
	srv.SetCredentials("authwatch", "s3cret")

	ev := h.next(watcher.SessionStop, "bia")
	if ev.Reason != "ended while authwatch was not connected to the router" {
		t.Fatalf("stop = %+v", ev)
	}
	ev = h.next(watcher.SessionStart, "duda")
	if age := time.Since(ev.At); age < 40*time.Second || age > time.Minute {
		t.Fatalf("start dated %v ago, want about 42s (the router's uptime)", age)
	}
	st := h.waitStatus("reconnected", func(st routeros.Status) bool { return st.Connected && st.Reconnects == 1 })
	if st.Sessions != 3 {
		t.Fatalf("sessions = %d, want 3", st.Sessions)
	}
	for _, ev := range h.seen {
		if ev.Login == "ana" || ev.Login == "caio" {
			if strings.HasPrefix(string(ev.Kind), "session.") && ev.Kind != watcher.SessionUpdate {
				t.Fatalf("false %s for %s after reconnect", ev.Kind, ev.Login)
			}
		}
	}
	// Sessions that stayed up are not touched, now or at the next polls;
	// the new listen works.
	h.listening()
	h.quiet(1200 * time.Millisecond)
	srv.AddSession(routerostest.Session{Name: "edu", Address: "10.99.1.5"})
	h.next(watcher.SessionStart, "edu")
	for _, login := range []string{"ana", "caio", "duda", "edu"} {
		if c, _ := h.state.Customer(login); !c.Online {
			t.Errorf("%s offline after resync", login)
		}
	}
	if c, _ := h.state.Customer("bia"); c.Online {
		t.Error("bia online after resync")
	}
}

func TestBadCredentials(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routerostest.Options{})
	h := start(t, srv, func(c *routeros.Config) { c.Password = "wrong" })
	st := h.waitStatus("failed", func(st routeros.Status) bool { return st.Failures >= 2 })
	if st.Connected || !strings.Contains(st.LastError, `routeros "bras-test": login as "authwatch": login refused: invalid user name or password (6)`) {
		t.Fatalf("status = %+v", st)
	}
	if strings.Contains(st.LastError, "wrong") {
		t.Fatal("password in status")
	}
	// Once the router accepts the password it connects.
	srv.SetCredentials("authwatch", "wrong")
	h.waitStatus("connected", func(st routeros.Status) bool { return st.Connected })
}

func TestDialFailure(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routerostest.Options{})
	addr := srv.Addr()
	srv.Close() // nothing listens there now
	h := start(t, srv, func(c *routeros.Config) { c.Address = addr })
	st := h.waitStatus("failed", func(st routeros.Status) bool { return st.Failures >= 2 })
	if st.Connected || !strings.Contains(st.LastError, "connect "+addr) {
		t.Fatalf("status = %+v", st)
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routerostest.Options{TLS: true})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, srv.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	pin := srv.Fingerprint()
	wrong := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name    string
		mod     func(*routeros.Config)
		wantErr string
	}{
		{"pin", func(c *routeros.Config) { c.Fingerprint = pin }, ""},
		{"pin with colons", func(c *routeros.Config) { c.Fingerprint = strings.ToUpper(colons(pin)) }, ""},
		{"ca file", func(c *routeros.Config) { c.CAFile = caFile }, ""},
		{"wrong pin", func(c *routeros.Config) { c.Fingerprint = wrong }, "certificate fingerprint does not match the pin: router presented sha256 " + pin},
		{"unknown authority", nil, "certificate signed by unknown authority"},
		{"plain client on tls port", func(c *routeros.Config) { c.TLS = false }, "login"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, srv, func(c *routeros.Config) {
				c.TLS = true
				if tc.mod != nil {
					tc.mod(c)
				}
			})
			if tc.wantErr == "" {
				h.waitStatus("connected", func(st routeros.Status) bool { return st.Connected })
				return
			}
			st := h.waitStatus("failed", func(st routeros.Status) bool { return st.Failures >= 1 })
			if st.Connected || !strings.Contains(st.LastError, tc.wantErr) {
				t.Fatalf("status = %+v, want error with %q", st, tc.wantErr)
			}
		})
	}
}

func colons(h string) string {
	var parts []string
	for i := 0; i+2 <= len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// TestMalformedReplies injects what a broken router or middlebox could send
// and checks each is counted, never fatal, and leaves the table right.
func TestMalformedReplies(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routerostest.Options{})
	srv.AddSession(routerostest.Session{Name: "ana", Address: "10.99.2.1"})
	h := start(t, srv, nil)
	h.next(watcher.SessionUpdate, "ana")
	h.listening()

	malformed := func() int64 { return h.src.Status().Malformed }
	steps := []struct {
		name       string
		do         func()
		reconnects bool
	}{
		{"item without name", func() { srv.InjectListen(routerostest.PPPActive, "!re", "=.id=*77", "=address=10.0.0.1") }, false},
		{"item without .id", func() { srv.InjectListen(routerostest.PPPActive, "!re", "=name=ghost") }, false},
		{"log line without message", func() { srv.InjectListen(routerostest.LogMenu, "!re", "=topics=ppp") }, false},
		{"unknown reply word", func() { srv.InjectListen(routerostest.LogMenu, "!weird", "=x=y") }, true},
		{"trap on listen", func() { srv.TrapListens(routerostest.LogMenu, "something broke") }, false},
		{"huge word length", func() { srv.InjectRaw([]byte{0xF0, 0x7F, 0xFF, 0xFF, 0xFF}) }, true},
		{"control byte", func() { srv.InjectRaw([]byte{0xF8}) }, true},
		{"word over the limit", func() { srv.InjectRaw(routerostest.EncodeSentence("!re", "=message="+strings.Repeat("x", 2<<20))) }, true},
		{"sentence without reply word", func() { srv.InjectRaw(routerostest.EncodeSentence("garbage")) }, true},
	}
	for _, step := range steps {
		before, reconnects := malformed(), h.src.Status().Reconnects
		step.do()
		h.waitStatus(step.name+" counted", func(st routeros.Status) bool { return st.Malformed > before })
		if step.reconnects {
			h.waitStatus(step.name+" reconnected", func(st routeros.Status) bool { return st.Reconnects > reconnects && st.Connected })
		}
		if step.name == "trap on listen" {
			st := h.waitStatus("log listen off", func(st routeros.Status) bool { return !st.LogListen })
			if !strings.Contains(st.LastError, "/log/listen refused by the router: something broke") || !st.Connected {
				t.Fatalf("after trap: %+v", st)
			}
			srv.KillConnections() // bring the log listen back for the next steps
		}
		h.listening()
	}
	// Through all of it ana stayed up and nothing was invented.
	h.quiet(1200 * time.Millisecond)
	srv.AppendLog("pppoe,ppp,error", "<0010>: user ana authentication failed")
	h.next(watcher.AuthReject, "ana")
}

func TestPollingWhenListenUnsupported(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routerostest.Options{})
	srv.FailCommand("/ppp/active/listen", "no such command prefix")
	h := start(t, srv, nil)
	st := h.waitStatus("polling only", func(st routeros.Status) bool {
		return st.Connected && !st.SessionsListen && !st.LastPoll.IsZero()
	})
	if !strings.Contains(st.LastError, "no such command prefix") {
		t.Fatalf("status = %+v", st)
	}
	srv.AddSession(routerostest.Session{Name: "lia", Address: "10.99.3.1"})
	h.next(watcher.SessionStart, "lia")
	srv.RemoveSession("lia")
	if ev := h.next(watcher.SessionStop, "lia"); ev.Reason != "gone from /ppp/active" {
		t.Fatalf("stop = %+v", ev)
	}
}

func TestLogOnly(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routerostest.Options{})
	srv.AddSession(routerostest.Session{Name: "ana", Address: "10.99.2.1"})
	h := start(t, srv, func(c *routeros.Config) { c.Sessions = new(false) })
	h.waitStatus("listening", func(st routeros.Status) bool { return st.Connected && srv.Listens(routerostest.LogMenu) == 1 })
	srv.AppendLog("pppoe,ppp,info,account", "rui logged in, 10.99.0.2 from 52:54:00:AA:00:03")
	ev := h.next(watcher.SessionStart, "rui")
	if ev.IP != "10.99.0.2" || ev.MAC != "52:54:00:AA:00:03" {
		t.Fatalf("start = %+v", ev)
	}
	srv.AppendLog("pppoe,ppp,info,account", "rui logged out, 143 115036 112418 106 92 from 52:54:00:AA:00:03")
	ev = h.next(watcher.SessionStop, "rui")
	if ev.Detail.SessionTime != 143 || ev.Detail.InputOctets != 115036 || ev.Detail.OutputPackets != 92 {
		t.Fatalf("stop = %+v %+v", ev, ev.Detail)
	}
	if c, _ := h.state.Customer("rui"); c.Online {
		t.Fatalf("rui = %+v", c)
	}
	if c, ok := h.state.Customer("ana"); ok {
		t.Fatalf("sessions are off, yet ana = %+v", c)
	}
}

// TestNoGoroutineLeak runs a source through connects, drops and a stop, and
// checks every goroutine it (and the library under it) started has ended.
// It is not parallel: it counts the process's goroutines (parallel tests
// start only after the sequential ones are done).
func TestNoGoroutineLeak(t *testing.T) {
	srv := newFake(t, routerostest.Options{})
	srv.AddSession(routerostest.Session{Name: "ana", Address: "10.99.2.1"})
	before := runtime.NumGoroutine()
	func() {
		h := start(t, srv, nil)
		h.next(watcher.SessionUpdate, "ana")
		for range 3 {
			h.listening()
			srv.KillConnections()
			h.waitStatus("down", func(st routeros.Status) bool { return !st.Connected })
		}
		h.listening()
		h.stop()
	}()
	srv.KillConnections()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	src := routeros.New(routeros.Config{Name: "x"}, nil, nil)
	if err := src.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "address") {
		t.Fatalf("Run = %v", err)
	}
}

// TestResumeAfterRestart: authwatch restarts; its state still has sessions
// open from before. Those still on the router record nothing, those gone
// are stopped, new ones are updates.
func TestResumeAfterRestart(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routerostest.Options{})
	srv.AddSession(routerostest.Session{Name: "ana", CallerID: "52:54:00:00:00:01", Address: "10.99.4.1", SessionID: "0x81A00001"})
	srv.AddSession(routerostest.Session{Name: "bia", Address: "10.99.4.2", SessionID: "0x81A00002"})
	h := startWith(t, srv, nil, func(src *routeros.Source, _ *watcher.State) {
		src.Resume([]routeros.OpenSession{
			{Login: "ana", SessionID: "81a00001", MAC: "52:54:00:00:00:01", IP: "10.99.4.1"},
			{Login: "caio", SessionID: "81a00003", IP: "10.99.4.3"},
		})
	})
	ev := h.next(watcher.SessionStop, "caio")
	if ev.Reason != "ended while authwatch was not running" || ev.SessionID != "81a00003" || ev.NAS != routerName {
		t.Fatalf("stop = %+v", ev)
	}
	h.next(watcher.SessionUpdate, "bia")
	h.listening()
	h.quiet(1200 * time.Millisecond)
	for _, ev := range h.seen {
		if ev.Login == "ana" {
			t.Fatalf("event for ana, who stayed up: %+v", ev)
		}
	}
}

// flakyRecorder fails every commit while failing is set, like a store whose
// disk is full.
type flakyRecorder struct {
	mu      sync.Mutex
	failing bool
	got     []watcher.Event
}

func (r *flakyRecorder) Commit(_ context.Context, evs ...watcher.Event) ([]watcher.Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failing {
		return nil, errors.New("disk full")
	}
	r.got = append(r.got, evs...)
	return evs, nil
}

func (r *flakyRecorder) set(failing bool) {
	r.mu.Lock()
	r.failing = failing
	r.mu.Unlock()
}

func (r *flakyRecorder) events() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.got {
		out = append(out, string(ev.Kind)+" "+ev.Login)
	}
	return strings.Join(out, ", ")
}

// TestStoreFailure: while the store refuses commits nothing is lost: the
// session table is not advanced (the next read finds the difference again)
// and log events are kept and retried.
func TestStoreFailure(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routerostest.Options{})
	srv.AddSession(routerostest.Session{Name: "ana", Address: "10.99.5.1"})
	rec := &flakyRecorder{failing: true}
	src := routeros.New(baseConfig(srv), rec, testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- src.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "store error", func() bool { return strings.Contains(src.Status().LastError, "disk full") })
	waitFor(t, "log listen", func() bool { return srv.Listens(routerostest.LogMenu) == 1 })
	srv.AppendLog("pppoe,ppp,error", "<0010>: user maria authentication failed")
	time.Sleep(100 * time.Millisecond)
	rec.set(false)
	want := "session.update ana, auth.reject maria"
	waitFor(t, "events recorded", func() bool {
		got := rec.events()
		return got == want || got == "auth.reject maria, session.update ana"
	})
	time.Sleep(1200 * time.Millisecond) // a poll later, still once each
	if got := rec.events(); len(got) != len(want) {
		t.Fatalf("recorded %q, want %q once each", got, want)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not in time", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRebootStory is the agent's phone call: the customer power-cycles the
// router, the first redial is refused, the second comes up with a new IP.
func TestRebootStory(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routerostest.Options{})
	srv.ConnectSession(routerostest.Session{Name: "joao", CallerID: "52:54:00:AA:00:03", Address: "10.99.0.2"})
	h := start(t, srv, nil)
	h.next(watcher.SessionUpdate, "joao")
	h.listening()

	srv.DisconnectSession("joao", "peer is not responding")
	if ev := h.next(watcher.SessionStop, "joao"); ev.Reason != "peer is not responding" || ev.Detail.TerminateCause != "Lost-Carrier" {
		t.Fatalf("stop = %+v", ev)
	}
	srv.RejectLogin("joao", "52:54:00:AA:00:03")
	h.next(watcher.AuthReject, "joao")
	srv.ConnectSession(routerostest.Session{Name: "joao", CallerID: "52:54:00:AA:00:03", Address: "10.99.0.9"})
	// The accept comes from the log, the session from /ppp/active: either
	// may be first.
	evs := h.all("joao", watcher.AuthAccept, watcher.SessionStart, watcher.SessionUpdate)
	if ev := evs[watcher.SessionUpdate]; ev.IP != "10.99.0.9" {
		t.Fatalf("update = %+v", ev)
	}
	c, _ := h.state.Customer("joao")
	if !c.Online || len(c.Sessions) != 1 || c.Sessions[0].IP != "10.99.0.9" || c.LastAuth == nil || !c.LastAuth.Accepted ||
		c.LastStop == nil || c.LastStop.Reason != "peer is not responding" {
		t.Fatalf("joao = %+v", c)
	}
}
