package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"layeh.com/radius/rfc2866"

	"authwatch/internal/app"
	"authwatch/internal/config"
	"authwatch/radius/radiustest"
	"authwatch/watcher"
	"authwatch/watcher/sqlstore"
	"authwatch/watcher/sqlstore/pgtest"
)

// The tests of several instances on one PostgreSQL database run against a
// real server (see pgtest): skipped without one, failed on CI.

func TestMain(m *testing.M) { pgtest.Main(m) }

func pgConfig(t *testing.T, dsn string) *config.Config {
	t.Helper()
	c, err := config.Parse(fmt.Sprintf(`
[http]
listen = "127.0.0.1:0"
auth = false
[store]
driver = "postgres"
dsn = %q
checkpoint_interval = "1h"
[radius]
listen = "127.0.0.1:0"
[[nas]]
name = "bras-centro"
address = "127.0.0.0/8"
secret = %q
`, dsn, secret))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sendAcct sends one Accounting-Request to d and waits for its ack.
func sendAcct(t *testing.T, c *radiustest.Client, user, id string) {
	t.Helper()
	p, err := radiustest.Acct{Status: rfc2866.AcctStatusType_Value_InterimUpdate, User: user, SessionID: id}.Packet([]byte(secret))
	if err != nil {
		t.Error(err)
		return
	}
	if _, err := c.Exchange(context.Background(), p); err != nil {
		t.Errorf("%s of %s not acked: %v", id, user, err)
	}
}

// sendMany sends n requests to each daemon, concurrently, with session ids
// prefix-<daemon>-<i>, alternating two logins.
func sendMany(t *testing.T, prefix string, n int, ds ...*app.Daemon) {
	t.Helper()
	var wg sync.WaitGroup
	for di, d := range ds {
		c, err := radiustest.NewClient(d.RADIUSAddr(), []byte(secret), radiustest.ClientOptions{Retry: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Go(func() {
			for i := range n {
				sendAcct(t, c, []string{"joao", "maria"}[i%2], fmt.Sprintf("%s-%d-%03d", prefix, di, i))
			}
		})
	}
	wg.Wait()
}

// wsStream is a websocket's messages, read in the background.
type wsStream struct {
	mu     sync.Mutex
	events []watcher.Event
	err    error
}

func openStream(t *testing.T, d *app.Daemon, login string) *wsStream {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+d.HTTPAddr()+"/ws?login="+login, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	var snap wsMessage
	if err := ws.ReadJSON(&snap); err != nil || snap.Type != "snapshot" {
		t.Fatalf("first message %+v, %v", snap, err)
	}
	s := &wsStream{events: snap.Events}
	go func() {
		for {
			var m wsMessage
			err := ws.ReadJSON(&m)
			s.mu.Lock()
			if err != nil {
				s.err = err
				s.mu.Unlock()
				return
			}
			if m.Type == "event" && m.Event != nil {
				s.events = append(s.events, *m.Event)
			}
			s.mu.Unlock()
		}
	}()
	return s
}

// waitEvents waits until the stream has at least n events and returns them.
func (s *wsStream) waitEvents(t *testing.T, n int) []watcher.Event {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s.mu.Lock()
		evs, err := append([]watcher.Event(nil), s.events...), s.err
		s.mu.Unlock()
		if len(evs) >= n {
			return evs
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("websocket got %d events, want %d (err %v)", len(evs), n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// storedEvents reads every event of the database, in seq order.
func storedEvents(t *testing.T, dsn, login string) []watcher.Event {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), sqlstore.Options{Driver: "postgres", DSN: dsn, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.Events(context.Background(), watcher.Query{Login: login, Limit: 1000000})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// sameStream checks that a websocket delivered exactly the stored events:
// in seq order, none missing, none twice.
func sameStream(t *testing.T, what string, got, want []watcher.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events on the websocket, %d stored", what, len(got), len(want))
	}
	for i := range got {
		if got[i].Seq != want[i].Seq || got[i].SessionID != want[i].SessionID {
			t.Fatalf("%s: event %d is seq %d (%s), want seq %d (%s)", what, i, got[i].Seq, got[i].SessionID, want[i].Seq, want[i].SessionID)
		}
	}
}

// TestTwoInstancesShareOneLiveStream: accounting sent to instance A (and to
// B at the same time) reaches websockets connected to B, in seq order, once
// each; and still does after B's LISTEN connection is killed.
func TestTwoInstancesShareOneLiveStream(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, _ := start(t, pgConfig(t, dsn))
	b, _ := start(t, pgConfig(t, dsn))

	fire := openStream(t, b, "*")
	joao := openStream(t, b, "joao")

	sendMany(t, "a-only", 30, a)
	sendMany(t, "both", 40, a, b)
	sameStream(t, "firehose on B", fire.waitEvents(t, 110), storedEvents(t, dsn, ""))
	sameStream(t, "joao on B", joao.waitEvents(t, 55), storedEvents(t, dsn, "joao"))

	// B's state follows A's events too.
	var cust watcher.Customer
	getJSON(t, "http://"+b.HTTPAddr()+"/api/customers/maria", &cust)
	if want := storedEvents(t, dsn, "maria"); cust.LastSeq != want[len(want)-1].Seq {
		t.Fatalf("B's state of maria is at seq %d, the store at %d", cust.LastSeq, want[len(want)-1].Seq)
	}

	// Kill the LISTEN connections (both instances'): nothing is lost.
	if n := pgtest.ExecDB(t, dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'authwatch-follower' AND datname = current_database()"); n != 2 {
		t.Fatalf("terminated %d LISTEN connections, want 2", n)
	}
	sendMany(t, "after-kill", 30, a)
	sendMany(t, "after-kill-both", 10, a, b)
	sameStream(t, "firehose on B after the kill", fire.waitEvents(t, 160), storedEvents(t, dsn, ""))
	sameStream(t, "joao on B after the kill", joao.waitEvents(t, 80), storedEvents(t, dsn, "joao"))
	// And no event arrives twice later.
	time.Sleep(300 * time.Millisecond)
	all := storedEvents(t, dsn, "")
	sameStream(t, "firehose on B, later", fire.waitEvents(t, 0), all)

	// B's follower says so on /metrics: listening again, reconnected once,
	// at the last seq.
	m := scrape(t, "http://"+b.HTTPAddr())
	for deadline := time.Now().Add(5 * time.Second); m["authwatch_follower_listening"] != 1 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		m = scrape(t, "http://"+b.HTTPAddr())
	}
	if m["authwatch_follower_listening"] != 1 || m["authwatch_follower_reconnects_total"] < 1 || m["authwatch_follower_last_seq"] != float64(all[len(all)-1].Seq) {
		t.Errorf("follower metrics: listening %v, reconnects %v, last seq %v (store at %d)",
			m["authwatch_follower_listening"], m["authwatch_follower_reconnects_total"], m["authwatch_follower_last_seq"], all[len(all)-1].Seq)
	}
}

// TestPostgresOutageLosesNoAckedEvent stops PostgreSQL under load: requests
// go unanswered meanwhile (the NAS retransmits), /healthz shows the store
// error, ingestion resumes by itself when the server is back, and every
// request that was acked is stored exactly once.
func TestPostgresOutageLosesNoAckedEvent(t *testing.T) {
	dsn := pgtest.DSN(t)
	cfg := pgConfig(t, dsn)
	d, stopDaemon := start(t, cfg)
	c, err := radiustest.NewClient(d.RADIUSAddr(), []byte(secret), radiustest.ClientOptions{Retry: 200 * time.Millisecond, Tries: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var (
		mu    sync.Mutex
		acked []string
		next  atomic.Int64
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for range 16 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("o%06d", next.Add(1))
				p, _ := radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "load" + id[len(id)-2:], SessionID: id}.Packet([]byte(secret))
				if _, err := c.Exchange(context.Background(), p); err == nil {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		})
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	waitAcks := func(what string, more int) {
		t.Helper()
		target := count() + more
		deadline := time.Now().Add(20 * time.Second)
		for count() < target {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d acks, want %d", what, count(), target)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitAcks("before the outage", 200)

	pgtest.Stop(t)
	restarted := false
	defer func() {
		if !restarted {
			pgtest.Start(t)
		}
	}()
	time.Sleep(500 * time.Millisecond)
	during := count()
	time.Sleep(time.Second)
	if n := count() - during; n > 0 {
		t.Errorf("%d requests acked while PostgreSQL was down", n)
	}
	var health struct {
		Status string `json:"status"`
		Checks map[string]struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		} `json:"checks"`
	}
	resp, err := http.Get("http://" + d.HTTPAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || health.Checks["store"].OK || health.Checks["recorder"].OK || health.Checks["recorder"].Error == "" {
		t.Errorf("/healthz during the outage: %d %+v", resp.StatusCode, health)
	}

	pgtest.Start(t)
	restarted = true
	waitAcks("after PostgreSQL came back", 200)
	close(stop)
	wg.Wait()
	stopDaemon()

	stored := map[string]int{}
	for _, ev := range storedEvents(t, dsn, "") {
		stored[ev.SessionID]++
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range acked {
		if stored[id] != 1 {
			t.Errorf("acked %s stored %d times", id, stored[id])
		}
	}
	t.Logf("%d acked, %d stored", len(acked), len(stored))
}
