package radius_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authradius "authwatch/radius"
	"authwatch/radius/radiustest"
	"authwatch/watcher"
	"authwatch/watcher/sqlstore"
)

// harness runs a Listener on a loopback port, recording through a real
// watcher.Recorder into store.
type harness struct {
	t     testing.TB
	addr  *net.UDPAddr
	conn  *net.UDPConn
	l     *authradius.Listener
	rec   *watcher.Recorder
	store *faultyStore
	logs  *syncBuffer

	stopListener context.CancelFunc
	listenerDone chan error
	stopOnce     sync.Once
}

var localNAS = []authradius.Client{{Name: "bras-centro", Prefix: netip.MustParsePrefix("127.0.0.1/32"), Secret: testSecret}}

// openStore opens a real SQLite store in a temporary directory.
func openStore(t testing.TB) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), sqlstore.Options{
		Driver: "sqlite", Path: filepath.Join(t.TempDir(), "authwatch.db"),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return st
}

func startListener(t testing.TB, clients []authradius.Client, opts authradius.Options) *harness {
	t.Helper()
	h := &harness{t: t, store: &faultyStore{Store: openStore(t)}, logs: &syncBuffer{}}
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opts.Logger == nil {
		opts.Logger = logger
	}
	h.rec = watcher.NewRecorder(h.store, watcher.NewState(), watcher.NewHub(0), watcher.RecorderOptions{Logger: logger})
	recCtx, stopRecorder := context.WithCancel(context.Background())
	recDone := make(chan error, 1)
	go func() { recDone <- h.rec.Run(recCtx) }()

	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	h.addr, h.conn = conn.LocalAddr().(*net.UDPAddr), conn
	h.l, err = authradius.NewListener(conn, clients, h.rec, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.stopListener, h.listenerDone = cancel, make(chan error, 1)
	go func() { h.listenerDone <- h.l.Run(ctx) }()

	// The app's order: sources first, then the recorder, then the store.
	t.Cleanup(func() {
		h.store.release()
		if err := h.stop(); err != nil {
			t.Errorf("listener Run: %v", err)
		}
		conn.Close()
		stopRecorder()
		<-recDone
		h.store.Close()
	})
	return h
}

// stop stops the listener and returns Run's result.
func (h *harness) stop() error {
	var err error
	h.stopOnce.Do(func() {
		h.stopListener()
		select {
		case err = <-h.listenerDone:
		case <-time.After(10 * time.Second):
			err = errors.New("Run did not return")
		}
	})
	return err
}

func (h *harness) client(o radiustest.ClientOptions) *radiustest.Client {
	h.t.Helper()
	c, err := radiustest.NewClient(h.addr.String(), testSecret, o)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

// events returns what the store holds for login.
func (h *harness) events(login string) []watcher.Event {
	h.t.Helper()
	evs, err := h.store.Events(context.Background(), watcher.Query{Login: login})
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

// waitStats polls the listener's counters until cond holds.
func (h *harness) waitStats(what string, cond func(authradius.Stats) bool) authradius.Stats {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := h.l.Stats()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; stats %+v", what, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// faultyStore is a real store with two faults that can be switched on: every
// Append fails, or Append waits for a gate. It is how tests see what the
// listener does when the store is broken or slow.
type faultyStore struct {
	*sqlstore.Store
	fail    atomic.Bool
	appends atomic.Int64

	mu   sync.Mutex
	gate chan struct{} // while non-nil, Append waits for it to close
}

var errStoreDown = errors.New("disk on fire")

func (s *faultyStore) Append(ctx context.Context, evs []watcher.Event) error {
	s.appends.Add(1)
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if s.fail.Load() {
		return errStoreDown
	}
	return s.Store.Append(ctx, evs)
}

// hold makes Append wait until release.
func (s *faultyStore) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate == nil {
		s.gate = make(chan struct{})
	}
}

func (s *faultyStore) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

// udpPeer is a bare socket for sending exact bytes and checking that nothing
// comes back.
type udpPeer struct {
	t    testing.TB
	conn *net.UDPConn
}

func dialPeer(t testing.TB, from string, to *net.UDPAddr) *udpPeer {
	t.Helper()
	laddr := &net.UDPAddr{IP: net.ParseIP(from)}
	conn, err := net.DialUDP("udp", laddr, to)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &udpPeer{t: t, conn: conn}
}

func (p *udpPeer) send(b []byte) {
	p.t.Helper()
	if _, err := p.conn.Write(b); err != nil {
		p.t.Fatal(err)
	}
}

// recv returns the next datagram, or nil when none comes within wait.
func (p *udpPeer) recv(wait time.Duration) []byte {
	p.t.Helper()
	buf := make([]byte, 4096)
	p.conn.SetReadDeadline(time.Now().Add(wait))
	n, err := p.conn.Read(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		p.t.Fatal(err)
	}
	return buf[:n]
}

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

func encode(t testing.TB, a radiustest.Acct, secret []byte) []byte {
	t.Helper()
	b, err := a.Encode(secret)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
