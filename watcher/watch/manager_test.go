package watch_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/probe"
	"authwatch/watcher/sqlstore"
	"authwatch/watcher/watch"
)

type managerRig struct {
	t     *testing.T
	path  string
	store *sqlstore.Store
	state *watcher.State
	rec   *watcher.Recorder
	m     *watch.Manager
	stop  func()

	mu    sync.Mutex
	views []watch.View
}

// cpe starts an HTTP server standing in for the customer's router and
// returns its port.
func cpe(t *testing.T) int {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<title>TP-Link Archer C6</title>"))
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

func newManagerRig(t *testing.T, path string, port int) *managerRig {
	t.Helper()
	var prober *probe.Prober
	if port != 0 {
		prober = probe.New(probe.Config{Ports: []int{port}, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Timeout: time.Second, MinInterval: time.Millisecond})
	}
	return newManagerRigProber(t, path, prober)
}

// newManagerRigProber is newManagerRig with a prober of the test's making
// (nil: no probing).
func newManagerRigProber(t *testing.T, path string, prober *probe.Prober) *managerRig {
	t.Helper()
	r := &managerRig{t: t, path: path}
	var err error
	r.store, err = sqlstore.Open(context.Background(), sqlstore.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	r.state = watcher.NewState()
	if _, err := watcher.Rebuild(context.Background(), r.store, r.state); err != nil {
		t.Fatal(err)
	}
	hub := watcher.NewHub(256)
	r.rec = watcher.NewRecorder(r.store, r.state, hub, watcher.RecorderOptions{})
	r.m = watch.NewManager(watch.Options{Store: r.store, Events: r.store, State: r.state, Recorder: r.rec, Prober: prober,
		Notify: func(v watch.View) { r.mu.Lock(); r.views = append(r.views, v); r.mu.Unlock() }})
	r.rec.OnApplied(r.m.Observe)
	if err := r.m.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.rec.Run(ctx) }()
	go func() { defer wg.Done(); r.m.Run(ctx) }()
	r.stop = func() { cancel(); wg.Wait(); r.store.Close() }
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *managerRig) commit(evs ...watcher.Event) {
	r.t.Helper()
	for i := range evs {
		if evs[i].At.IsZero() {
			evs[i].At = time.Now()
		}
	}
	if _, err := r.rec.Commit(context.Background(), evs...); err != nil {
		r.t.Fatal(err)
	}
}

func (r *managerRig) waitVerdict(id string, want watch.Verdict) watch.View {
	r.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		v, err := r.m.Get(context.Background(), id)
		if err != nil {
			r.t.Fatal(err)
		}
		if v.Verdict == want {
			return v
		}
		if v.Verdict != "" {
			r.t.Fatalf("verdict %q, want %q: %+v", v.Verdict, want, v.Watch)
		}
		time.Sleep(20 * time.Millisecond)
	}
	v, _ := r.m.Get(context.Background(), id)
	r.t.Fatalf("no verdict %q in time: %+v", want, v.Watch)
	return v
}

func session(kind watcher.Kind, id, ip string) watcher.Event {
	return watcher.Event{Login: "joao", Kind: kind, Source: "radius", NAS: "bras1", SessionID: id, MAC: macOld, IP: ip, Reason: "Lost-Carrier"}
}

func TestManagerRebootToReachable(t *testing.T) {
	r := newManagerRig(t, filepath.Join(t.TempDir(), "m.db"), cpe(t))
	r.commit(session(watcher.SessionStart, "old", "127.0.0.1"))
	v, err := r.m.Start(context.Background(), watch.StartRequest{Login: "joao", Ticket: "123", Agent: "ana", Timeout: watch.Duration(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if v.Step != watch.WaitingDrop || v.Before == nil || v.Before.ID != "old" {
		t.Fatalf("started %+v", v.Watch)
	}
	r.commit(session(watcher.SessionStop, "old", "127.0.0.1"),
		watcher.Event{Login: "joao", Kind: watcher.AuthReject, Source: "proxy", NAS: "bras1", Reason: "wrong password"},
		session(watcher.SessionStart, "new", "127.0.0.1"))
	// The probe finds the CPE answering: reachable, ok.
	done := r.waitVerdict(v.ID, watch.OK)
	if done.HTTP == nil || done.HTTP.Title != "TP-Link Archer C6" || len(done.Rejects) != 1 || done.After.ID != "new" {
		t.Fatalf("ended %+v", done.Watch)
	}
	// The probe result is an event in joao's timeline.
	evs, _ := r.store.Events(context.Background(), watcher.Query{Login: "joao"})
	if last := evs[len(evs)-1]; last.Kind != watcher.HTTPUp || last.Source != "probe" {
		t.Errorf("last event %+v", last)
	}
	r.mu.Lock()
	n := len(r.views)
	r.mu.Unlock()
	if n < 3 {
		t.Errorf("only %d watch notifications", n)
	}
	if _, err := r.m.Start(context.Background(), watch.StartRequest{Login: "joao", Timeout: watch.Duration(time.Millisecond)}); err == nil {
		t.Error("a 1ms timeout was accepted")
	}
}

func TestManagerAuthFailingAndRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	r := newManagerRig(t, path, 0)
	r.commit(session(watcher.SessionStart, "old", "100.64.0.9"))
	v, err := r.m.Start(context.Background(), watch.StartRequest{Login: "joao", Timeout: watch.Duration(3 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	r.commit(session(watcher.SessionStop, "old", "100.64.0.9"))
	// Restart mid-watch: the watch is stored and comes back, and events
	// that arrive after the restart still reach it.
	r.stop()
	r2 := newManagerRig(t, path, 0)
	got, err := r2.m.Get(context.Background(), v.ID)
	if err != nil || got.Verdict != "" || got.Step != watch.Dropped {
		t.Fatalf("after restart: %+v, %v", got.Watch, err)
	}
	r2.commit(watcher.Event{Login: "joao", Kind: watcher.AuthReject, Source: "proxy", NAS: "bras1", Reason: "wrong password"},
		watcher.Event{Login: "joao", Kind: watcher.AuthReject, Source: "proxy", NAS: "bras1", Reason: "wrong password"})
	done := r2.waitVerdict(v.ID, watch.AuthFailing)
	if len(done.Rejects) != 2 || done.VerdictText[watch.PtBR] != "autenticação falhando — 2 rejeições: senha incorreta" {
		t.Fatalf("ended %+v %q", done.Watch, done.VerdictText)
	}
}
