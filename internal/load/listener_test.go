package load_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2866"

	"authwatch/internal/load"
	authradius "authwatch/radius"
	"authwatch/watcher"
	"authwatch/watcher/sqlstore"
)

var testSecret = []byte("load-test-secret")

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// server is a real accounting Listener recording through a real Recorder
// into SQLite on a loopback port.
type server struct {
	addr  string
	l     *authradius.Listener
	store *flakyStore
}

// flakyStore fails every failEvery-th Append (0: never), as a disk that
// hiccups does: the whole batch is refused and nothing of it is stored.
type flakyStore struct {
	*sqlstore.Store
	failEvery int64
	calls     atomic.Int64
	failed    atomic.Int64
	stored    atomic.Int64
}

func (s *flakyStore) Append(ctx context.Context, evs []watcher.Event) error {
	if n := s.calls.Add(1); s.failEvery > 0 && n%s.failEvery == 0 {
		s.failed.Add(int64(len(evs)))
		return errors.New("injected failure")
	}
	if err := s.Store.Append(ctx, evs); err != nil {
		return err
	}
	s.stored.Add(int64(len(evs)))
	return nil
}

func startServer(t *testing.T, failEvery int64) *server {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), sqlstore.Options{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "a.db"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	fs := &flakyStore{Store: st, failEvery: failEvery}
	rec := watcher.NewRecorder(fs, watcher.NewState(), watcher.NewHub(0), watcher.RecorderOptions{Logger: quiet})
	recCtx, stopRec := context.WithCancel(context.Background())
	recDone := make(chan error, 1)
	go func() { recDone <- rec.Run(recCtx) }()

	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	clients := []authradius.Client{{Name: "load", Prefix: netip.MustParsePrefix("127.0.0.0/8"), Secret: testSecret}}
	l, err := authradius.NewListener(conn, clients, rec, authradius.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		conn.Close()
		stopRec()
		<-recDone
		st.Close()
	})
	return &server{addr: conn.LocalAddr().String(), l: l, store: fs}
}

// settle returns the Listener's counters once ok holds of them, or after a
// second: the server counts an answer after sending it, so the tool may have
// read it a moment before the counter moves.
func settle(l *authradius.Listener, ok func(authradius.Stats) bool) authradius.Stats {
	deadline := time.Now().Add(time.Second)
	for {
		st := l.Stats()
		if ok(st) || time.Now().After(deadline) {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dropClass decides what the relay does to a request, from its identity
// (session, status, session time) so that every copy of one request gets
// the same treatment whatever order the tool sends them in.
type dropClass int

const (
	pass             dropClass = iota
	dropFirstRequest           // one retransmission, then acked
	dropEveryRequest           // every copy dropped: lost
	dropFirstAnswer            // stored and answered, the answer lost; the retransmission is answered from the duplicate cache
	dropTwoRequests            // two retransmissions, then acked
)

func classOf(key string) dropClass {
	h := fnv.New32a()
	h.Write([]byte(key))
	switch h.Sum32() % 20 {
	case 0, 1:
		return dropFirstRequest
	case 2:
		return dropEveryRequest
	case 3, 4:
		return dropFirstAnswer
	case 5:
		return dropTwoRequests
	}
	return pass
}

// relay sits between the load tool and the server and drops datagrams by
// dropClass. What it saw is the ground truth the tool's counts are checked
// against.
type relay struct {
	t      *testing.T
	conn   *net.UDPConn // the tool sends here
	server *net.UDPAddr

	mu      sync.Mutex
	ups     map[netip.AddrPort]*net.UDPConn // one socket per NAS, as NAS each have their own
	reqs    map[string]*seen
	current map[idKey]*seen // the latest request per NAS and Identifier
	stray   int
	wg      sync.WaitGroup
}

type idKey struct {
	nas netip.AddrPort
	id  byte
}

type seen struct {
	class     dropClass
	req       []byte // the latest copy
	copies    int    // datagrams from the tool
	forwarded int    // of which passed to the server
	answers   int    // answers from the server
	delivered int    // of which passed to the tool
}

func startRelay(t *testing.T, server string) *relay {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{t: t, conn: conn, server: srv, ups: map[netip.AddrPort]*net.UDPConn{}, reqs: map[string]*seen{}, current: map[idKey]*seen{}}
	r.wg.Go(r.fromTool)
	t.Cleanup(func() {
		conn.Close()
		r.mu.Lock()
		for _, u := range r.ups {
			u.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *relay) addr() string { return r.conn.LocalAddr().String() }

func requestKey(b []byte) (string, error) {
	p, err := radius.Parse(b, testSecret)
	if err != nil {
		return "", err
	}
	status := rfc2866.AcctStatusType_Get(p)
	return fmt.Sprintf("%s/%s/%d", rfc2866.AcctSessionID_GetString(p), status, rfc2866.AcctSessionTime_Get(p)), nil
}

func (r *relay) fromTool() {
	buf := make([]byte, 4096)
	for {
		n, nas, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		b := append([]byte(nil), buf[:n]...)
		key, err := requestKey(b)
		if err != nil {
			r.t.Errorf("relay: the tool sent something unparsable: %v", err)
			continue
		}
		r.mu.Lock()
		s := r.reqs[key]
		if s == nil {
			s = &seen{class: classOf(key)}
			r.reqs[key] = s
		}
		s.req = b
		s.copies++
		r.current[idKey{nas, b[1]}] = s
		drop := s.class == dropEveryRequest ||
			s.class == dropFirstRequest && s.copies == 1 ||
			s.class == dropTwoRequests && s.copies <= 2
		var up *net.UDPConn
		if !drop {
			s.forwarded++
			up = r.upstream(nas)
		}
		r.mu.Unlock()
		if up != nil {
			up.Write(b)
		}
	}
}

// upstream returns the socket that carries nas's requests. r.mu is held.
func (r *relay) upstream(nas netip.AddrPort) *net.UDPConn {
	if u := r.ups[nas]; u != nil {
		return u
	}
	u, err := net.DialUDP("udp", nil, r.server)
	if err != nil {
		r.t.Errorf("relay: %v", err)
		return nil
	}
	r.ups[nas] = u
	r.wg.Go(func() { r.fromServer(nas, u) })
	return u
}

func (r *relay) fromServer(nas netip.AddrPort, u *net.UDPConn) {
	buf := make([]byte, 4096)
	for {
		n, err := u.Read(buf)
		if err != nil {
			return
		}
		b := buf[:n]
		r.mu.Lock()
		s := r.current[idKey{nas, b[1]}]
		if s == nil || !radius.IsAuthenticResponse(b, s.req, testSecret) {
			r.stray++
			r.mu.Unlock()
			continue
		}
		s.answers++
		deliver := !(s.class == dropFirstAnswer && s.answers == 1)
		if deliver {
			s.delivered++
		}
		r.mu.Unlock()
		if deliver {
			r.conn.WriteToUDPAddrPort(b, nas)
		}
	}
}

// truth is what the tool should report, by the relay's account.
type truth struct {
	sent, acked, retransmitted, lost int64
	forwarded                        int64 // datagrams that reached the server
	reachedServer                    int64 // requests of which at least one copy did
	byClass                          map[dropClass]int64
}

func (r *relay) truth() truth {
	r.mu.Lock()
	defer r.mu.Unlock()
	tr := truth{byClass: map[dropClass]int64{}}
	for _, s := range r.reqs {
		tr.sent++
		tr.retransmitted += int64(s.copies - 1)
		tr.forwarded += int64(s.forwarded)
		if s.forwarded > 0 {
			tr.reachedServer++
		}
		if s.delivered > 0 {
			tr.acked++
		} else {
			tr.lost++
		}
		tr.byClass[s.class]++
	}
	return tr
}

// TestCountsThroughLossyRelay runs the tool through a relay that drops
// requests and answers on purpose, in front of a real Listener with a real
// Recorder and SQLite store, and checks that every count the tool reports is
// exactly what happened on the wire and in the store.
func TestCountsThroughLossyRelay(t *testing.T) {
	srv := startServer(t, 0)
	rl := startRelay(t, srv.addr)

	// Patience (tries × retry) well above a commit on a busy machine, so
	// that only the requests whose every copy is dropped are lost.
	const tries = 4
	rep, err := load.Run(t.Context(), load.Config{
		Server: rl.addr(), Secret: testSecret, NAS: 3, Customers: 200,
		Concurrency: 64, Requests: 1000,
		Retry: 200 * time.Millisecond, Tries: tries, Seed: 42,
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := rl.truth()
	t.Logf("tool: sent %d acked %d retransmitted %d lost %d; relay classes %v", rep.Sent, rep.Acked, rep.Retransmitted, rep.Lost, tr.byClass)

	check := func(name string, got, want int64) {
		t.Helper()
		if got != want {
			t.Errorf("%s: tool says %d, the wire says %d", name, got, want)
		}
	}
	check("sent", rep.Sent, tr.sent)
	check("sent", rep.Sent, 1000)
	check("acked", rep.Acked, tr.acked)
	check("retransmitted", rep.Retransmitted, tr.retransmitted)
	check("lost", rep.Lost, tr.lost)
	check("sent = acked + lost", rep.Sent, rep.Acked+rep.Lost)
	check("aborted", rep.Aborted, 0)
	check("ack latencies recorded", rep.AckLatency.Count, rep.Acked)
	var byKind int64
	for _, n := range rep.SentByKind {
		byKind += n
	}
	check("sent by kind", byKind, rep.Sent)

	// What the drop classes imply, independently of timing: a request
	// whose every copy is dropped is lost after exactly `tries` datagrams;
	// no other class loses anything unless a commit took longer than the
	// tool's patience.
	if tr.byClass[dropEveryRequest] == 0 || tr.byClass[dropFirstAnswer] == 0 || tr.byClass[dropFirstRequest] == 0 {
		t.Fatalf("the seed exercised too few drop classes: %v", tr.byClass)
	}
	check("lost = requests whose every copy was dropped", rep.Lost, tr.byClass[dropEveryRequest])
	minRetrans := tr.byClass[dropFirstRequest] + tr.byClass[dropFirstAnswer] + 2*tr.byClass[dropTwoRequests] + (tries-1)*tr.byClass[dropEveryRequest]
	if rep.Retransmitted < minRetrans {
		t.Errorf("retransmitted %d, the drops alone force %d", rep.Retransmitted, minRetrans)
	}

	// The server's side of the same story: every datagram that got
	// through was read, every request that got through was stored once
	// (answers dropped on the way back were retransmitted and answered
	// from the duplicate cache, not stored again).
	// The server counts a datagram as it reads it and an answer after it
	// sent it: the last ones may trail the tool's end by a moment.
	st := settle(srv.l, func(st authradius.Stats) bool { return st.Received >= tr.forwarded })
	check("datagrams the server read", st.Received, tr.forwarded)
	check("events stored", srv.store.stored.Load(), tr.reachedServer)
	if st.DuplicatesAnswered < tr.byClass[dropFirstAnswer] {
		t.Errorf("duplicates answered from cache %d, want at least %d", st.DuplicatesAnswered, tr.byClass[dropFirstAnswer])
	}
}

// TestCountsWithFailingStore runs the tool against a Listener whose store
// fails every third commit: those requests go unanswered, the tool
// retransmits them until one copy lands in a commit that works. The tool is
// patient enough (10 tries) that every request ends stored and acked, and
// its counts must match what the server read, stored and answered.
func TestCountsWithFailingStore(t *testing.T) {
	srv := startServer(t, 3)
	rep, err := load.Run(t.Context(), load.Config{
		Server: srv.addr, Secret: testSecret, NAS: 2, Customers: 100,
		Concurrency: 64, Requests: 800,
		Retry: 200 * time.Millisecond, Tries: 10, Seed: 7,
	})
	if err != nil {
		t.Fatal(err)
	}
	st := settle(srv.l, func(st authradius.Stats) bool {
		return st.Received >= rep.Sent+rep.Retransmitted && st.Acked+st.DuplicatesAnswered >= rep.Acked+rep.DuplicateAnswers+rep.StrayAnswers
	})
	t.Logf("tool: sent %d acked %d retransmitted %d lost %d; store failed %d events in %d of %d commits",
		rep.Sent, rep.Acked, rep.Retransmitted, rep.Lost, srv.store.failed.Load(), srv.store.calls.Load()/3, srv.store.calls.Load())
	if rep.Sent != 800 || rep.Acked != 800 || rep.Lost != 0 {
		t.Errorf("sent %d, acked %d, lost %d: want 800 sent and acked", rep.Sent, rep.Acked, rep.Lost)
	}
	if srv.store.failed.Load() == 0 || rep.Retransmitted == 0 {
		t.Fatalf("no failure was injected (failed %d, retransmitted %d)", srv.store.failed.Load(), rep.Retransmitted)
	}
	// Loopback loses nothing: every datagram sent was read, every request
	// was stored once, and every answer the server sent was read: the
	// first for each request as its ack, any other (a retransmission
	// answered from the duplicate cache) as a duplicate or a stray. Only
	// an answer to a retransmission of one of the last requests may still
	// be on its way when the tool closes its sockets.
	if got, want := st.Received, rep.Sent+rep.Retransmitted; got != want {
		t.Errorf("server read %d datagrams, tool says it sent %d + %d retransmissions", got, rep.Sent, rep.Retransmitted)
	}
	if got := srv.store.stored.Load(); got != rep.Acked {
		t.Errorf("store holds %d events, tool says %d acked", got, rep.Acked)
	}
	if got, want := st.Acked+st.DuplicatesAnswered, rep.Acked+rep.DuplicateAnswers+rep.StrayAnswers; got < want || got > want+64 {
		t.Errorf("server sent %d answers, tool read %d (%d acks, %d duplicates, %d strays)", got, want, rep.Acked, rep.DuplicateAnswers, rep.StrayAnswers)
	}
}
