package frlog_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/frlog"
	"authwatch/watcher/sqlstore"
)

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

// harness runs a Source over a log file in a temporary directory, recording
// through a real Recorder into a SQLite store whose position table keeps
// its place, like the daemon does.
type harness struct {
	t      *testing.T
	path   string // the log file
	db     string // the SQLite file, kept across restarts
	logs   *syncBuffer
	store  *sqlstore.Store
	src    *frlog.Source
	step   func() // with manual steps: one step, waited for
	stopFn func()
}

type options struct {
	cfg     func(*frlog.Config)
	manual  bool          // steps only when told (no fsnotify, no poll)
	poll    time.Duration // > 0: no fsnotify, poll this often
	rec     func(frlog.Recorder) frlog.Recorder
	noStore bool // no position store
}

func newDir(t *testing.T) (dir, path, db string) {
	dir = t.TempDir()
	return dir, filepath.Join(dir, "radius.log"), filepath.Join(t.TempDir(), "authwatch.db")
}

// start runs a source on path until stop (or the end of the test).
func start(t *testing.T, path, db string, o options) *harness {
	t.Helper()
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
	rec := watcher.NewRecorder(store, watcher.NewState(), watcher.NewHub(1024), watcher.RecorderOptions{Logger: logger})
	cfg := frlog.Config{Name: "radius-1", Path: path, TimeZone: "UTC", Clients: map[string]string{"bras1": "bras-centro"}}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var r frlog.Recorder = rec
	if o.rec != nil {
		r = o.rec(rec)
	}
	var positions watcher.PositionStore = store
	if o.noStore {
		positions = nil
	}
	src := frlog.New(cfg, r, positions, logger)
	h := &harness{t: t, path: path, db: db, logs: logs, store: store, src: src}
	var started func()
	switch {
	case o.manual:
		h.step, started = frlog.ManualSteps(src)
	case o.poll > 0:
		frlog.PollOnly(src, o.poll)
	}
	if started == nil {
		ready := frlog.Ready(src)
		started = func() {
			select {
			case <-ready:
			case <-time.After(5 * time.Second):
				t.Fatal("no first step")
			}
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	recCtx, recCancel := context.WithCancel(context.Background())
	recDone, srcDone := make(chan struct{}), make(chan error, 1)
	go func() { rec.Run(recCtx); close(recDone) }()
	go func() { srcDone <- src.Run(ctx) }()
	var once sync.Once
	h.stopFn = func() {
		once.Do(func() {
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
		})
	}
	t.Cleanup(h.stopFn)
	if started != nil {
		started()
	}
	return h
}

func (h *harness) stop() { h.stopFn() }

// logins returns the logins of the recorded events, in seq order.
func (h *harness) logins() []string {
	h.t.Helper()
	evs := h.events()
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Login
	}
	return out
}

func (h *harness) events() []watcher.Event {
	h.t.Helper()
	evs, err := h.store.Events(context.Background(), watcher.Query{Limit: 100000})
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

// waitLogins waits until n events are recorded, and a little longer to
// catch extra ones, then returns their logins.
func (h *harness) waitLogins(n int) []string {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if got := h.logins(); len(got) >= n {
			time.Sleep(50 * time.Millisecond)
			return h.logins()
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := h.logins()
	h.t.Fatalf("waited for %d events, got %d: %v\nstatus %+v\nlog:\n%s", n, len(got), got, h.src.Status(), h.logs)
	return nil
}

// base is the time of line 0 of the generated logs.
var base = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// line is the i-th generated log line: a Login OK for user-<i>, one second
// after the previous one (so that every file's first line differs).
func line(i int) string {
	return fmt.Sprintf("%s : Auth: (%d) Login OK: [user-%03d/pw-%03d] (from client bras1 port %d cli AA-BB-CC-DD-EE-FF)\n",
		base.Add(time.Duration(i)*time.Second).Format("Mon Jan _2 15:04:05 2006"), i, i, i, i)
}

// lines returns lines from to to (inclusive), joined.
func lines(from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		b.WriteString(line(i))
	}
	return b.String()
}

// users returns the logins of lines from to to.
func users(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("user-%03d", i))
	}
	return out
}

// appendTo appends text to a file, creating it.
func appendTo(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// copyTruncate does what logrotate's copytruncate does.
func copyTruncate(t *testing.T, path, to string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
}

// sameLogins fails unless got holds exactly want, each once, in order.
func sameLogins(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, " ") == strings.Join(want, " ") {
		return
	}
	seen := map[string]int{}
	for _, g := range got {
		seen[g]++
	}
	var dup, missing []string
	for k, n := range seen {
		if n > 1 {
			dup = append(dup, k)
		}
	}
	for _, w := range want {
		if seen[w] == 0 {
			missing = append(missing, w)
		}
	}
	sort.Strings(dup)
	t.Fatalf("got %d events, want %d\nmissing %v\nduplicated %v\ngot %v", len(got), len(want), missing, dup, got)
}
