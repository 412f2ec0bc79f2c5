package webui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"authwatch/watcher"
	"authwatch/watcher/sqlstore"
	"authwatch/webui/auth"
)

// fixture is authwatch's pipeline for real: a SQLite store, a running
// Recorder, the State and Hub it feeds, and the webui Server on httptest.
type fixture struct {
	t     testing.TB
	store *sqlstore.Store
	state *watcher.State
	hub   *watcher.Hub
	rec   *watcher.Recorder
	srv   *Server
	ts    *httptest.Server
	auth  *auth.Service // nil in desk mode
}

type fixtureOptions struct {
	hubQueue int
	opts     func(*Options)
	// accounts runs the server with accounts (auth_test.go) instead of in
	// desk mode, with these changes to the auth options.
	accounts func(*auth.Options)
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func newFixture(t testing.TB, fo fixtureOptions) *fixture {
	t.Helper()
	log := testLogger(t)
	ctx, cancel := context.WithCancel(context.Background())
	store, err := sqlstore.Open(ctx, sqlstore.Options{
		Driver: "sqlite", Path: filepath.Join(t.TempDir(), "a.db"),
		Synchronous: "normal", // tests need no power-cut durability
		Logger:      log,
	})
	if err != nil {
		cancel()
		t.Fatalf("open store: %v", err)
	}
	f := &fixture{t: t, store: store, state: watcher.NewState(), hub: watcher.NewHub(fo.hubQueue)}
	f.rec = watcher.NewRecorder(store, f.state, f.hub, watcher.RecorderOptions{Logger: log})
	recDone := make(chan struct{})
	go func() {
		defer close(recDone)
		f.rec.Run(ctx)
	}()
	o := Options{
		State: f.state, Store: store, Hub: f.hub, Logger: log,
		Checks: []Check{RecorderCheck(f.rec)},
		Desk:   fo.accounts == nil,
	}
	if fo.accounts != nil {
		f.auth = newAuth(t, store, log, fo.accounts)
		o.Auth = f.auth
	}
	if fo.opts != nil {
		fo.opts(&o)
	}
	f.srv, err = New(o)
	if err != nil {
		t.Fatalf("webui.New: %v", err)
	}
	f.ts = httptest.NewServer(f.srv)
	t.Cleanup(func() {
		f.srv.Close()
		f.ts.Close()
		cancel()
		<-recDone
		store.Close()
	})
	return f
}

var testStart = time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)

// event builds an event for login; n makes its fields distinct.
func event(login string, kind watcher.Kind, n int) watcher.Event {
	return watcher.Event{
		At: testStart.Add(time.Duration(n) * time.Second), Login: login, Kind: kind, Source: "radius",
		NAS: "bras-centro", SessionID: fmt.Sprintf("%s-%d", login, n/10),
		MAC: fmt.Sprintf("AA:BB:CC:00:%02X:%02X", len(login), n%256), IP: fmt.Sprintf("100.64.%d.%d", len(login), n%250+1),
	}
}

// commit stores evs through the Recorder and returns them with their seq.
func (f *fixture) commit(evs ...watcher.Event) []watcher.Event {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := f.rec.Commit(ctx, evs...)
	if err != nil {
		f.t.Fatalf("commit: %v", err)
	}
	// Commit returns once the events are stored; the Recorder folds them into
	// the State just after. Tests that read the state right away wait for it.
	last := out[len(out)-1].Seq
	for f.state.Seq() < last {
		if ctx.Err() != nil {
			f.t.Fatalf("state stuck at seq %d, want %d", f.state.Seq(), last)
		}
		time.Sleep(time.Millisecond)
	}
	return out
}

// commitN stores n events for login, kinds cycling through a session's life.
func (f *fixture) commitN(login string, n int) []watcher.Event {
	kinds := []watcher.Kind{watcher.AuthAccept, watcher.SessionStart, watcher.SessionUpdate, watcher.SessionStop}
	evs := make([]watcher.Event, n)
	for i := range evs {
		evs[i] = event(login, kinds[i%len(kinds)], i)
	}
	return f.commit(evs...)
}

func (f *fixture) url(path string) string { return f.ts.URL + path }

// getJSON does GET path and decodes the JSON answer into v (when not nil).
func (f *fixture) getJSON(path string, v any) *http.Response {
	f.t.Helper()
	resp, err := http.Get(f.url(path))
	if err != nil {
		f.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("GET %s: read: %v", path, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		f.t.Fatalf("GET %s: content type %q, body %s", path, ct, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			f.t.Fatalf("GET %s: decode %s: %v", path, body, err)
		}
	}
	return resp
}

// wsMsg is any server message, decoded loosely.
type wsMsg struct {
	Type      string          `json:"type"`
	State     json.RawMessage `json:"state"`
	Events    []watcher.Event `json:"events"`
	Event     *watcher.Event  `json:"event"`
	Seq       int64           `json:"seq"`
	Truncated bool            `json:"truncated"`
	Reset     bool            `json:"reset"`
}

type wsClient struct {
	t    testing.TB
	conn *websocket.Conn
}

// dial opens /ws with the query; header may carry an Origin.
func (f *fixture) dial(query string, header http.Header) (*wsClient, *http.Response, error) {
	return f.dialWith(websocket.DefaultDialer, query, header)
}

func (f *fixture) dialWith(d *websocket.Dialer, query string, header http.Header) (*wsClient, *http.Response, error) {
	u := "ws" + strings.TrimPrefix(f.ts.URL, "http") + "/ws?" + query
	conn, resp, err := d.Dial(u, header)
	if err != nil {
		return nil, resp, err
	}
	f.t.Cleanup(func() { conn.Close() })
	return &wsClient{t: f.t, conn: conn}, resp, nil
}

// mustDial opens /ws for login (and since, when >= 0) and reads the snapshot.
func (f *fixture) mustDial(login string, since int64) (*wsClient, wsMsg) {
	f.t.Helper()
	q := url.Values{"login": {login}}
	if since >= 0 {
		q.Set("since", fmt.Sprint(since))
	}
	c, _, err := f.dial(q.Encode(), nil)
	if err != nil {
		f.t.Fatalf("dial %s: %v", q.Encode(), err)
	}
	snap := c.read()
	if snap.Type != "snapshot" {
		f.t.Fatalf("first message is %q, want snapshot", snap.Type)
	}
	return c, snap
}

func (c *wsClient) readErr(timeout time.Duration) (wsMsg, error) {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	var m wsMsg
	_, data, err := c.conn.ReadMessage()
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		c.t.Fatalf("bad message %s: %v", data, err)
	}
	return m, nil
}

func (c *wsClient) read() wsMsg {
	c.t.Helper()
	m, err := c.readErr(5 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

// readEvents reads n event messages, skipping state messages.
func (c *wsClient) readEvents(n int) []watcher.Event {
	c.t.Helper()
	var out []watcher.Event
	for len(out) < n {
		m := c.read()
		switch m.Type {
		case "event":
			out = append(out, *m.Event)
		case "state":
		default:
			c.t.Fatalf("got a %q message, want event", m.Type)
		}
	}
	return out
}

// closeCode reads until the connection ends and returns the close code, or
// -1 when it ended without a close frame.
func (c *wsClient) closeCode() (int, string) {
	c.t.Helper()
	for {
		_, err := c.readErr(10 * time.Second)
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Text
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("connection not closed: %v", err)
		}
		return -1, err.Error()
	}
}

func seqs(evs []watcher.Event) []int64 {
	out := make([]int64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}
