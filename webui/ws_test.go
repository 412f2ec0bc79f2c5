package webui

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"authwatch/watcher"
)

// Events committed through the Recorder reach the websockets of their login,
// and only those, and every one reaches the firehose.
func TestWebsocketRoutesEventsByLogin(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	alice, snap := f.mustDial("alice", -1)
	var st customerView
	if err := json.Unmarshal(snap.State, &st); err != nil {
		t.Fatal(err)
	}
	if st.Login != "alice" || st.Known || len(snap.Events) != 0 || snap.Truncated || snap.Reset {
		t.Fatalf("snapshot of an unseen login: %+v, state %s", snap, snap.State)
	}
	bob, _ := f.mustDial("bob", -1)
	all, allSnap := f.mustDial("*", -1)
	var stats watcher.Stats
	if err := json.Unmarshal(allSnap.State, &stats); err != nil || stats.Customers != 0 {
		t.Fatalf("firehose snapshot state %s: %v", allSnap.State, err)
	}

	evs := f.commit(
		event("alice", watcher.AuthAccept, 1), event("bob", watcher.AuthReject, 2),
		event("alice", watcher.SessionStart, 3), event("bob", watcher.AuthAccept, 4),
		event("alice", watcher.SessionStop, 5),
	)
	if got, want := seqs(alice.readEvents(3)), seqs([]watcher.Event{evs[0], evs[2], evs[4]}); !slices.Equal(got, want) {
		t.Errorf("alice got %v, want %v", got, want)
	}
	if got, want := seqs(bob.readEvents(2)), seqs([]watcher.Event{evs[1], evs[3]}); !slices.Equal(got, want) {
		t.Errorf("bob got %v, want %v", got, want)
	}
	if got, want := seqs(all.readEvents(5)), seqs(evs); !slices.Equal(got, want) {
		t.Errorf("firehose got %v, want %v", got, want)
	}

	// Nothing else is queued for them: the next message each gets is the
	// next event of its own login.
	more := f.commit(event("bob", watcher.Log, 6), event("alice", watcher.SessionStart, 13))
	m := alice.read()
	if m.Type != "event" || m.Event.Seq != more[1].Seq {
		t.Fatalf("alice: got %+v, want event %d", m, more[1].Seq)
	}
	// Single-login event messages carry the login's fresh state.
	if err := json.Unmarshal(m.State, &st); err != nil {
		t.Fatal(err)
	}
	if !st.Known || !st.Online || len(st.Sessions) != 1 || st.LastSeq != more[1].Seq || st.LastAuth == nil || !st.LastAuth.Accepted {
		t.Errorf("alice state after session start: %s", m.State)
	}
	if got := bob.readEvents(1)[0].Seq; got != more[0].Seq {
		t.Errorf("bob: got seq %d, want %d", got, more[0].Seq)
	}
	if got := seqs(all.readEvents(2)); !slices.Equal(got, seqs(more)) {
		t.Errorf("firehose got %v, want %v", got, seqs(more))
	}

	// The firehose's events carry fresh totals now and then.
	f.srv.statsEvery = 0
	f.commit(event("carla", watcher.SessionStart, 1))
	m = all.read()
	if err := json.Unmarshal(m.State, &stats); err != nil || m.Type != "event" || stats.Customers != 3 || stats.Online != 2 {
		t.Errorf("firehose event state %s: %v", m.State, err)
	}
}

// A client that reconnects with since gets exactly what it missed, then the
// live events, with no gap and no duplicate.
func TestWebsocketResume(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c, _ := f.mustDial("alice", -1)
	first := f.commitN("alice", 3)
	if got := seqs(c.readEvents(3)); !slices.Equal(got, seqs(first)) {
		t.Fatalf("live: got %v, want %v", got, seqs(first))
	}
	c.conn.Close()
	last := first[2].Seq

	missed := f.commit(event("alice", watcher.SessionStart, 20), event("bob", watcher.SessionStart, 21), event("alice", watcher.SessionUpdate, 22))
	c, snap := f.mustDial("alice", last)
	if got, want := seqs(snap.Events), []int64{missed[0].Seq, missed[2].Seq}; !slices.Equal(got, want) || snap.Truncated || snap.Reset {
		t.Fatalf("resume snapshot: events %v truncated %v reset %v, want %v", got, snap.Truncated, snap.Reset, want)
	}
	if snap.Seq < missed[2].Seq {
		t.Errorf("snapshot cursor %d below the last event sent %d", snap.Seq, missed[2].Seq)
	}
	live := f.commit(event("alice", watcher.SessionStop, 23))
	if got := c.readEvents(1)[0].Seq; got != live[0].Seq {
		t.Errorf("live after resume: got %d, want %d", got, live[0].Seq)
	}
}

// Reconnect again and again while events are committed as fast as the store
// takes them: what the client gets over all its connections, snapshots and
// live events together, is exactly what was stored for its login, in order.
func TestWebsocketResumeUnderLoad(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	since := f.commitN("alice", 5)[4].Seq

	stop := make(chan struct{})
	type result struct {
		last int64 // alice's last seq
		err  error
	}
	writer := make(chan result, 1)
	committed := make(chan struct{}, 1) // a batch went in
	go func() {
		var r result
		for i := 0; ; i++ {
			select {
			case <-stop:
				writer <- r
				return
			default:
			}
			evs := []watcher.Event{event("alice", watcher.SessionUpdate, 100+i), event("bob", watcher.SessionUpdate, 100+i), event("alice", watcher.SessionUpdate, 200+i)}
			out, err := f.rec.Commit(context.Background(), evs...)
			if err != nil {
				r.err = err
				writer <- r
				return
			}
			r.last = out[2].Seq
			select {
			case committed <- struct{}{}:
			default:
			}
		}
	}()

	var got []int64
	var live, snapshotted int
	cursor := since
	for range 8 {
		<-committed // connect while the writer is busy
		c, snap := f.mustDial("alice", cursor)
		got = append(got, seqs(snap.Events)...)
		snapshotted += len(snap.Events)
		cursor = max(cursor, snap.Seq)
		for _, ev := range c.readEvents(10) {
			got = append(got, ev.Seq)
			cursor = ev.Seq
			live++
		}
		c.conn.Close()
	}
	close(stop)
	r := <-writer
	if r.err != nil {
		t.Fatal(r.err)
	}
	c, snap := f.mustDial("alice", cursor)
	got = append(got, seqs(snap.Events)...)
	for len(got) == 0 || got[len(got)-1] < r.last {
		got = append(got, c.readEvents(1)[0].Seq)
	}

	stored, err := f.store.Events(context.Background(), watcher.Query{Login: "alice", After: since, Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	if want := seqs(stored); !slices.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("got %d events, stored %d; they differ at #%d: got …%v…, stored …%v…",
			len(got), len(want), i, got[max(0, i-3):min(len(got), i+3)], want[max(0, i-3):min(len(want), i+3)])
	}
	if live == 0 || snapshotted == 0 {
		t.Errorf("%d events came in snapshots and %d live; the test wants both", snapshotted, live)
	}
	t.Logf("%d events: %d in snapshots, %d live", len(got), snapshotted, live)
}

func TestWebsocketSnapshot(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.srv.catchupCap = 10
	alice := f.commitN("alice", 150)
	bob := f.commitN("bob", 3)
	last := bob[2].Seq

	tests := []struct {
		name      string
		login     string
		since     int64 // -1: absent
		want      []watcher.Event
		truncated bool
		reset     bool
	}{
		{"no since: newest 100", "alice", -1, alice[50:], false, false},
		{"since: what follows", "alice", alice[144].Seq, alice[145:], false, false},
		{"exactly the cap missed", "alice", alice[139].Seq, alice[140:], false, false},
		{"more than the cap missed: newest cap, truncated", "alice", alice[100].Seq, alice[140:], true, false},
		{"since at the end", "alice", last, nil, false, false},
		{"since beyond the store: reset", "alice", last + 1000, alice[50:], false, true},
		{"firehose", "*", alice[148].Seq, append([]watcher.Event{alice[149]}, bob...), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, snap := f.mustDial(tt.login, tt.since)
			if got := seqs(snap.Events); !slices.Equal(got, seqs(tt.want)) {
				t.Errorf("events %v, want %v", got, seqs(tt.want))
			}
			if snap.Truncated != tt.truncated || snap.Reset != tt.reset {
				t.Errorf("truncated %v reset %v, want %v %v", snap.Truncated, snap.Reset, tt.truncated, tt.reset)
			}
			if snap.Seq != last {
				t.Errorf("cursor %d, want the store's last seq %d", snap.Seq, last)
			}
			if snap.Events == nil {
				t.Errorf("events is null, want a list")
			}
		})
	}
}

// A client that stops reading is cut off by the hub and told why, without
// holding up anyone else; it resumes where its gapless stream stopped.
func TestWebsocketSlowClientIsCut(t *testing.T) {
	f := newFixture(t, fixtureOptions{hubQueue: 16})
	fast, _ := f.mustDial("*", -1)

	// Shrink the slow client's socket buffer, so that the server's writes to
	// it block after some kilobytes rather than megabytes.
	d := *websocket.DefaultDialer
	d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(slowReadBuffer)
		}
		return c, err
	}
	slow, _, err := f.dialWith(&d, "login=*", nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := slow.read(); m.Type != "snapshot" {
		t.Fatalf("slow client: first message %q", m.Type)
	}

	padding := strings.Repeat("x", 8<<10) // big events fill buffers sooner
	var sent []watcher.Event
	batch := func(i int) {
		t.Helper()
		evs := make([]watcher.Event, 8)
		for j := range evs {
			evs[j] = event(fmt.Sprintf("c%03d", (i*8+j)%50), watcher.Log, i*8+j)
			evs[j].Detail = &watcher.Detail{Attributes: map[string]string{"padding": padding}}
		}
		out := f.commit(evs...)
		sent = append(sent, out...)
		// The fast client gets every event, in order, while the other stalls.
		if got := seqs(fast.readEvents(len(out))); !slices.Equal(got, seqs(out)) {
			t.Fatalf("fast client got %v, want %v", got, seqs(out))
		}
	}
	for i := 0; f.hub.Stats().Cutoffs == 0; i++ {
		if i == 500 {
			t.Fatalf("slow client not cut off after %d events", len(sent))
		}
		batch(i)
	}
	t.Logf("cut off after %d events", len(sent))
	for i := range 3 {
		batch(1000 + i)
	}

	// The slow client wakes up: everything up to the cut, gapless, then a
	// close frame telling it to come back.
	var got []int64
	var code int
	var reason string
	for {
		m, err := slow.readErr(5 * time.Second)
		if err != nil {
			ce, ok := err.(*websocket.CloseError)
			if !ok {
				t.Fatalf("slow client: read ended with %v, want a close frame", err)
			}
			code, reason = ce.Code, ce.Text
			break
		}
		if m.Type == "event" {
			got = append(got, m.Event.Seq)
		}
	}
	if code != websocket.CloseTryAgainLater || !strings.Contains(reason, "too slow") {
		t.Errorf("close %d %q, want %d too slow", code, reason, websocket.CloseTryAgainLater)
	}
	all := seqs(sent)
	if len(got) == 0 || len(got) >= len(all) || !slices.Equal(got, all[:len(got)]) {
		t.Fatalf("slow client got %d events %v…, want a strict prefix of the %d sent", len(got), got[:min(len(got), 5)], len(all))
	}
	if want := fmt.Sprintf("since=%d", got[len(got)-1]); !strings.Contains(reason, want) {
		t.Errorf("close reason %q does not say %s", reason, want)
	}

	_, snap := f.mustDial("*", got[len(got)-1])
	if rest := seqs(snap.Events); !slices.Equal(rest, all[len(got):]) {
		t.Errorf("resume after the cut: %d events, want %d", len(rest), len(all)-len(got))
	}
}

// slowReadBuffer is the slow client's socket receive buffer: small, so its
// socket fills after a few hundred kilobytes, but above loopback's 64 KiB MSS:
// below it, window updates lag and the sender's zero-window probes back off
// for tens of seconds.
const slowReadBuffer = 128 << 10

// Ping/pong keeps a reading client connected and finds a silent one dead.
func TestWebsocketKeepalive(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.srv.pingPeriod, f.srv.pongWait = 50*time.Millisecond, 300*time.Millisecond

	silent, _ := f.mustDial("bob", -1) // never reads again: never answers pings
	alive, _ := f.mustDial("alice", -1)
	done := make(chan error, 1)
	go func() {
		// Reading is what makes gorilla answer pings.
		_, err := alive.readErr(time.Second)
		done <- err
	}()
	if err := <-done; err == nil {
		t.Fatal("got a message, want none")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("reading client dropped: %v", err)
	}
	// A timed-out gorilla conn cannot be read again: check through the server.
	f.srv.mu.Lock()
	n := len(f.srv.conns)
	f.srv.mu.Unlock()
	if n != 1 {
		t.Errorf("%d websockets after a second, want 1 (the reading one)", n)
	}
	_ = silent
}

func TestWebsocketOrigin(t *testing.T) {
	f := newFixture(t, fixtureOptions{opts: func(o *Options) {
		o.AllowedOrigins = []string{"https://NOC.example.net/"}
	}})
	host := strings.TrimPrefix(f.ts.URL, "http://")
	tests := []struct {
		origin string
		ok     bool
	}{
		{"", true}, // not a browser: authwatch tail, curl
		{"http://" + host, true},
		{"http://" + strings.ToUpper(host), true},
		{"https://noc.example.net", true},
		{"https://evil.example", false},
		{"http://" + host + ".evil.example", false},
		{"https://noc.example.net:8443", false},
		{"null", false},
		{"::bad::", false},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			c, resp, err := f.dial("login=alice", h)
			if tt.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if m := c.read(); m.Type != "snapshot" {
					t.Errorf("first message %q", m.Type)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("refusal: %v %+v", err, resp)
			}
		})
	}
}

func TestWebsocketBadRequests(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	tests := []struct {
		query, want string
	}{
		{"", "login: required"},
		{"login=alice&since=abc", "since: want a seq"},
		{"login=alice&since=-1", "since: want a seq"},
		{"login=alice&since=99999999999999999999", "since: want a seq"},
		{"login=" + strings.Repeat("a", 254), "login: longer"},
		{"login=%FF", "login: not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			_, resp, err := f.dial(tt.query, nil)
			if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("got %v %+v, want 400", err, resp)
			}
		})
	}
	// Without the upgrade headers it is an ordinary 400 with a JSON body.
	var e errorBody
	if resp := f.getJSON("/ws?login=alice", &e); resp.StatusCode != http.StatusBadRequest || e.Error == "" {
		t.Errorf("plain GET /ws: %d %+v", resp.StatusCode, e)
	}
	var e2 errorBody
	if resp := f.getJSON("/ws?login=alice&since=x", &e2); resp.StatusCode != http.StatusBadRequest || !strings.Contains(e2.Error, "since") {
		t.Errorf("plain GET /ws?since=x: %d %+v", resp.StatusCode, e2)
	}
}

// Whatever a client sends is ignored but for {"type":"ping"}; too much of it
// closes that one connection and nothing else.
func TestWebsocketClientMessages(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c, _ := f.mustDial("alice", -1)
	other, _ := f.mustDial("alice", -1)
	for _, m := range []struct {
		kind int
		data string
	}{
		{websocket.TextMessage, "not json"},
		{websocket.TextMessage, `{"type":`},
		{websocket.TextMessage, `{"type":42}`},
		{websocket.TextMessage, `[1,2,3]`},
		{websocket.TextMessage, `{"type":"subscribe","login":"bob"}`},
		{websocket.BinaryMessage, "\x00\xff\xfe"},
		{websocket.TextMessage, `{"type":"ping"}`},
	} {
		if err := c.conn.WriteMessage(m.kind, []byte(m.data)); err != nil {
			t.Fatalf("write %q: %v", m.data, err)
		}
	}
	if m := c.read(); m.Type != "pong" {
		t.Fatalf("got %q, want pong", m.Type)
	}
	evs := f.commitN("alice", 1)
	if got := c.readEvents(1)[0].Seq; got != evs[0].Seq {
		t.Fatalf("after junk: got %d, want %d", got, evs[0].Seq)
	}

	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", maxMessageSize+1))); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.closeCode(); code != websocket.CloseMessageTooBig {
		t.Errorf("oversized message: close code %d, want %d", code, websocket.CloseMessageTooBig)
	}
	other.readEvents(1)
	evs = f.commitN("alice", 1)
	if got := other.readEvents(1)[0].Seq; got != evs[0].Seq {
		t.Errorf("other client: got %d, want %d", got, evs[0].Seq)
	}
}

// Close ends every websocket with 1001 and refuses new ones.
func TestServerClose(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	a, _ := f.mustDial("alice", -1)
	b, _ := f.mustDial("*", -1)
	start := time.Now()
	if err := f.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Close took %v", took)
	}
	for _, c := range []*wsClient{a, b} {
		if code, text := c.closeCode(); code != websocket.CloseGoingAway {
			t.Errorf("close %d %q, want %d", code, text, websocket.CloseGoingAway)
		}
	}
	_, resp, err := f.dial("login=alice", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial after Close: %v %+v, want 503", err, resp)
	}
	f.srv.mu.Lock()
	defer f.srv.mu.Unlock()
	if len(f.srv.conns) != 0 {
		t.Errorf("%d websockets left", len(f.srv.conns))
	}
}
