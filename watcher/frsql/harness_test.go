package frsql_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/frsql"
	"authwatch/watcher/sqlstore"
)

// testPoll is the poll interval of the tests' sources.
const testPoll = 100 * time.Millisecond

// syncBuffer collects the source's log output, to check what it says (and
// never says).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness runs a Source over a fixture's database, recording through a real
// Recorder into a SQLite store whose position table keeps its place, like
// the daemon does; a firehose subscription of the Hub sees what a websocket
// client would.
type harness struct {
	t     *testing.T
	db    string // the SQLite file, kept across restarts
	logs  *syncBuffer
	store *sqlstore.Store
	state *watcher.State
	sub   *watcher.Subscription
	src   *frsql.Source
	steps atomic.Int64
	stop  func()
	final []watcher.Event // what the store held when stopped
}

type opts struct {
	cfg   func(*frsql.Config)
	known func(nas, sessionID string) bool
	batch int
}

func (f *fixture) config() frsql.Config {
	return frsql.Config{
		Name: "radius-db", Driver: f.driver, DSN: f.dsn, PollInterval: testPoll, TimeZone: zone,
		NAS: map[string]string{"10.0.0.1": "bras-centro"},
	}
}

// run starts a source on f's database recording into the SQLite file db
// ("" for a new one), and waits for its first poll.
func run(t *testing.T, f *fixture, db string, o opts) *harness {
	t.Helper()
	if db == "" {
		db = filepath.Join(t.TempDir(), "authwatch.db")
	}
	logs := &syncBuffer{}
	var out io.Writer = logs
	if testing.Verbose() {
		out = io.MultiWriter(logs, os.Stderr)
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store, err := sqlstore.Open(context.Background(), sqlstore.Options{Path: db, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	state, hub := watcher.NewState(), watcher.NewHub(4096)
	if _, err := watcher.Rebuild(context.Background(), store, state); err != nil {
		t.Fatal(err)
	}
	rec := watcher.NewRecorder(store, state, hub, watcher.RecorderOptions{Logger: logger})
	cfg := f.config()
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	src := frsql.New(cfg, rec, store, logger)
	if o.known != nil {
		src.SetKnown(o.known)
	}
	frsql.Tune(src, o.batch, 300*time.Millisecond, 300*time.Millisecond)
	h := &harness{t: t, db: db, logs: logs, store: store, state: state, sub: hub.Subscribe(watcher.Firehose), src: src}
	steps := frsql.Steps(src)

	ctx, cancel := context.WithCancel(context.Background())
	recCtx, recCancel := context.WithCancel(context.Background())
	recDone, srcDone, stepsDone := make(chan struct{}), make(chan error, 1), make(chan struct{})
	go func() { rec.Run(recCtx); close(recDone) }()
	go func() { srcDone <- src.Run(ctx) }()
	go func() {
		defer close(stepsDone)
		for {
			select {
			case <-steps:
				h.steps.Add(1)
			case <-ctx.Done():
				return
			}
		}
	}()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-srcDone:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after cancel")
			}
			<-stepsDone
			recCancel()
			<-recDone
			h.sub.Close()
			var err error
			if h.final, err = store.Events(context.Background(), watcher.Query{Limit: 10000}); err != nil {
				t.Error(err)
			}
			store.Close()
		})
	}
	t.Cleanup(h.stop)
	h.waitSteps(1)
	return h
}

// waitSteps waits until n more polls have finished.
func (h *harness) waitSteps(n int64) {
	h.t.Helper()
	want := h.steps.Load() + n
	deadline := time.Now().Add(20 * time.Second)
	for h.steps.Load() < want {
		if time.Now().After(deadline) {
			h.t.Fatalf("no poll within 20s (status %+v)", h.src.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// next returns the next n events published on the hub, failing after
// within.
func (h *harness) next(n int, within time.Duration) []watcher.Event {
	h.t.Helper()
	var out []watcher.Event
	timeout := time.After(within)
	for len(out) < n {
		select {
		case m, ok := <-h.sub.C():
			if !ok {
				h.t.Fatal("subscription cut")
			}
			if m.Event != nil {
				out = append(out, *m.Event)
			}
		case <-timeout:
			h.t.Fatalf("got %d events within %v, want %d: %s\nstatus: %+v", len(out), within, n, dump(out), h.src.Status())
		}
	}
	return out
}

// quiet checks that no event is published during two more polls.
func (h *harness) quiet() {
	h.t.Helper()
	h.waitSteps(2)
	select {
	case m := <-h.sub.C():
		if m.Event != nil {
			h.t.Fatalf("unexpected event %s", dump([]watcher.Event{*m.Event}))
		}
	default:
	}
}

// stored returns every event in the store (after stop, what it held then).
func (h *harness) stored() []watcher.Event {
	h.t.Helper()
	if h.final != nil {
		return h.final
	}
	evs, err := h.store.Events(context.Background(), watcher.Query{Limit: 10000})
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

// eventually waits for cond, failing with what after 20s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dump(evs []watcher.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		j, _ := json.Marshal(ev)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// summary is an event reduced to what tests compare.
func summary(ev watcher.Event) string {
	s := string(ev.Kind) + " " + ev.Login
	if ev.SessionID != "" {
		s += " " + ev.SessionID
	}
	return s
}

func summaries(evs []watcher.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = summary(ev)
	}
	return out
}
