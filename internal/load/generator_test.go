package load_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"

	"authwatch/internal/load"
)

// responder is a bare accounting server: it answers every request it
// decides to, records what it got, and stores nothing.
type responder struct {
	conn   *net.UDPConn
	ignore func(copyNo int) bool // drop the copyNo-th copy (1-based) of a request

	mu      sync.Mutex
	sources map[netip.Addr]int
	copies  map[[16]byte][][]byte // by Request Authenticator: every copy's bytes
}

func startResponder(t *testing.T, ignore func(int) bool) *responder {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &responder{conn: conn, ignore: ignore, sources: map[netip.Addr]int{}, copies: map[[16]byte][][]byte{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, src, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			p, err := radius.Parse(buf[:n], testSecret)
			if err != nil || !radius.IsAuthenticRequest(buf[:n], testSecret) {
				t.Errorf("responder: bad request from %v: %v", src, err)
				continue
			}
			var auth [16]byte
			copy(auth[:], buf[4:20])
			r.mu.Lock()
			r.sources[src.Addr()]++
			r.copies[auth] = append(r.copies[auth], append([]byte(nil), buf[:n]...))
			copyNo := len(r.copies[auth])
			r.mu.Unlock()
			if r.ignore != nil && r.ignore(copyNo) {
				continue
			}
			b, err := p.Response(radius.CodeAccountingResponse).Encode()
			if err != nil {
				t.Error(err)
				continue
			}
			conn.WriteToUDPAddrPort(b, src)
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return r
}

func (r *responder) addr() string { return r.conn.LocalAddr().String() }

func TestOpenLoopKeepsItsSchedule(t *testing.T) {
	r := startResponder(t, nil)
	rep, err := load.Run(t.Context(), load.Config{
		Server: r.addr(), Secret: testSecret, Rate: 400, Duration: 500 * time.Millisecond, Seed: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Requests are due at i/rate for every i with i/rate < duration.
	if rep.Sent != 200 || rep.Acked != 200 || rep.Lost != 0 || rep.Retransmitted != 0 {
		t.Errorf("sent %d acked %d lost %d retransmitted %d, want 200 sent and acked", rep.Sent, rep.Acked, rep.Lost, rep.Retransmitted)
	}
	if rep.ScheduleLag == nil || rep.ScheduleLag.Count != 200 {
		t.Errorf("schedule lag %+v, want 200 samples", rep.ScheduleLag)
	}
	if rep.SentPerSec < 250 || rep.SentPerSec > 500 {
		t.Errorf("sent %.0f/s, want about 400", rep.SentPerSec)
	}
}

func TestRetransmissionsRepeatTheSameDatagram(t *testing.T) {
	r := startResponder(t, func(copyNo int) bool { return copyNo < 3 }) // answer from the third copy on
	rep, err := load.Run(t.Context(), load.Config{
		Server: r.addr(), Secret: testSecret, NAS: 2, Customers: 10, Concurrency: 10, Requests: 40,
		Retry: 50 * time.Millisecond, Tries: 6, Seed: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 40 || rep.Acked != 40 || rep.Lost != 0 {
		t.Errorf("sent %d acked %d lost %d, want 40 acked", rep.Sent, rep.Acked, rep.Lost)
	}
	if rep.AckLatency.MinMS < 100 {
		t.Errorf("fastest ack %.3f ms: the third try leaves after two 50 ms retries", rep.AckLatency.MinMS)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.copies) != 40 {
		t.Errorf("%d distinct requests reached the server, want 40", len(r.copies))
	}
	// Two retransmissions each at least; more when an answer took longer
	// than a retry to come back. Every copy the server saw was counted.
	var copies int64
	for _, cs := range r.copies {
		copies += int64(len(cs))
		if len(cs) < 3 {
			t.Errorf("a request was answered after %d copies", len(cs))
		}
		for _, c := range cs[1:] {
			if !bytes.Equal(c, cs[0]) {
				t.Fatalf("a retransmission differs from the first copy (same Identifier and authenticator expected)")
			}
		}
	}
	if rep.Retransmitted != copies-40 {
		t.Errorf("retransmitted %d, the server saw %d copies of 40 requests", rep.Retransmitted, copies)
	}
}

func TestLostAfterTries(t *testing.T) {
	r := startResponder(t, func(int) bool { return true })
	rep, err := load.Run(t.Context(), load.Config{
		Server: r.addr(), Secret: testSecret, NAS: 1, Customers: 5, Concurrency: 5, Requests: 10,
		Retry: 20 * time.Millisecond, Tries: 2, Seed: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 10 || rep.Lost != 10 || rep.Acked != 0 || rep.Retransmitted != 10 || rep.AckLatency.Count != 0 {
		t.Errorf("sent %d lost %d acked %d retransmitted %d, want 10 lost after one retransmission each", rep.Sent, rep.Lost, rep.Acked, rep.Retransmitted)
	}
}

func TestInterruptedRunCountsAborted(t *testing.T) {
	r := startResponder(t, func(int) bool { return true })
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	rep, err := load.Run(ctx, load.Config{
		Server: r.addr(), Secret: testSecret, Customers: 50, Concurrency: 8, Duration: time.Minute,
		Retry: time.Second, Tries: 3, Seed: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v to stop", took)
	}
	// Each of the 8 workers sent one request and waits for an answer that
	// never comes: all in flight when the run is interrupted.
	if rep.Sent == 0 || rep.Sent > 8 || rep.Aborted != rep.Sent || rep.Lost != 0 || rep.Acked != 0 {
		t.Errorf("sent %d aborted %d lost %d acked %d: want every request sent aborted, none lost", rep.Sent, rep.Aborted, rep.Lost, rep.Acked)
	}
}

func TestNASBindTheirSourceAddresses(t *testing.T) {
	r := startResponder(t, nil)
	srcs, err := load.ParseSources("127.0.0.2,127.0.0.3,127.0.0.4")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := load.Run(t.Context(), load.Config{
		Server: r.addr(), Secret: testSecret, NAS: 6, Sources: srcs, Customers: 60, Concurrency: 12, Requests: 300, Seed: 6,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Acked != 300 {
		t.Errorf("acked %d of 300", rep.Acked)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sources) != 3 {
		t.Errorf("requests came from %v, want 127.0.0.2-4", r.sources)
	}
	for _, a := range srcs {
		if r.sources[a] == 0 {
			t.Errorf("nothing from %v", a)
		}
	}
}

func TestMixFallsBackToWhatTheSessionsAllow(t *testing.T) {
	r := startResponder(t, nil)
	// Only Starts asked for: each customer logs in once, and then the NAS
	// can only report on the open sessions.
	rep, err := load.Run(t.Context(), load.Config{
		Server: r.addr(), Secret: testSecret, Customers: 50, Concurrency: 4, Requests: 120,
		Mix: load.Mix{Start: 1}, Seed: 8,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.SentByKind; got["start"] != 50 || got["interim"] != 70 || got["stop"] != 0 {
		t.Errorf("sent by kind %v, want 50 starts then 70 interims", got)
	}
	if rep.OpenSessions != 50 {
		t.Errorf("%d sessions open, want 50", rep.OpenSessions)
	}
}

func TestDefaultMixAtSteadyState(t *testing.T) {
	r := startResponder(t, nil)
	rep, err := load.Run(t.Context(), load.Config{
		Server: r.addr(), Secret: testSecret, Customers: 200, Concurrency: 16, Requests: 3000, Seed: 9,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Nine in ten customers start online, as the 1:8:1 mix keeps them, so
	// no kind has to fall back to another and the mix holds.
	if rep.OpenAtStart < 160 || rep.OpenAtStart > 200 {
		t.Errorf("%d of 200 online at the start, want about 180", rep.OpenAtStart)
	}
	for kind, want := range map[string]int64{"start": 300, "interim": 2400, "stop": 300} {
		if got := rep.SentByKind[kind]; got < want*8/10 || got > want*12/10 {
			t.Errorf("%d %s sent, want about %d (%v)", got, kind, want, rep.SentByKind)
		}
	}
}
