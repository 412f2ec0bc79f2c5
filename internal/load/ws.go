package load

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sync/errgroup"
)

// wsKey identifies the request an event came from: session ids are unique
// per run and Acct-Session-Time is unique within a session (see
// interimInterval), so no attribute beyond the usual ones is needed.
type wsKey struct {
	session uint64
	stime   uint32
}

type wsEntry struct {
	sent time.Time
	want int32 // subscribers still to receive it
}

// wsWatch holds the subscribers and matches the events they receive to the
// requests sent.
type wsWatch struct {
	cfg     WSConfig
	watched int // customers [0, watched) have a subscriber each

	mu      sync.Mutex
	pending map[wsKey]*wsEntry
	drained chan struct{} // signalled when pending empties

	hist         Histogram
	expected     atomic.Int64
	received     atomic.Int64
	unexpected   atomic.Int64
	disconnected atomic.Int64

	conns   []*websocket.Conn
	closing atomic.Bool
	wg      sync.WaitGroup
}

// wsMessage is the part of a websocket message the load tool reads.
type wsMessage struct {
	Type  string `json:"type"`
	Event *struct {
		SessionID string `json:"session_id"`
		Source    string `json:"source"`
		Detail    *struct {
			SessionTime uint32 `json:"session_time"`
		} `json:"detail"`
	} `json:"event"`
}

// dialWS opens every subscriber and waits for each one's snapshot, so that
// all are subscribed before the first request goes out.
func dialWS(ctx context.Context, cfg WSConfig, logins []string) (*wsWatch, error) {
	base, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("load: websocket URL %q: %w", cfg.URL, err)
	}
	switch base.Scheme {
	case "http", "ws":
		base.Scheme = "ws"
	case "https", "wss":
		base.Scheme = "wss"
	default:
		return nil, fmt.Errorf("load: websocket URL %q: want http://host:port", cfg.URL)
	}
	base.Path = strings.TrimSuffix(base.Path, "/") + "/ws"
	w := &wsWatch{cfg: cfg, watched: len(logins), pending: make(map[wsKey]*wsEntry), drained: make(chan struct{}, 1)}
	targets := append(append([]string(nil), logins...), slices.Repeat([]string{"*"}, cfg.Firehose)...)
	w.conns = make([]*websocket.Conn, len(targets))
	dialer := &websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 1024}
	// No Origin, as a non-browser client (authwatch tail) sends none.
	header := http.Header{}
	if cfg.Token != "" {
		header.Set("Authorization", "Bearer "+cfg.Token)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16) // each snapshot is a store query on the server
	for i, login := range targets {
		g.Go(func() error {
			u := *base
			u.RawQuery = url.Values{"login": {login}}.Encode()
			c, resp, err := dialer.DialContext(gctx, u.String(), header)
			if err != nil {
				if resp != nil {
					err = fmt.Errorf("%w (HTTP %s)", err, resp.Status)
				}
				return fmt.Errorf("load: websocket %s: %w", u.String(), err)
			}
			w.conns[i] = c
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			var m wsMessage
			if _, b, err := c.ReadMessage(); err != nil {
				return fmt.Errorf("load: websocket login=%s: snapshot: %w", login, err)
			} else if json.Unmarshal(b, &m) != nil || m.Type != "snapshot" {
				return fmt.Errorf("load: websocket login=%s: first message is not a snapshot: %.100s", login, b)
			}
			c.SetReadDeadline(time.Time{})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		for _, c := range w.conns {
			if c != nil {
				c.Close()
			}
		}
		return nil, err
	}
	for _, c := range w.conns {
		w.wg.Go(func() { w.read(c) })
	}
	return w, nil
}

// expect registers a request sent at sent, before it leaves, with the number
// of subscribers that should see its event.
func (w *wsWatch) expect(r request, sent time.Time) {
	want := int32(w.cfg.Firehose)
	if r.cust < w.watched {
		want++
	}
	if want == 0 {
		return
	}
	w.expected.Add(int64(want))
	w.mu.Lock()
	w.pending[wsKey{r.session, r.stime}] = &wsEntry{sent: sent, want: want}
	w.mu.Unlock()
}

func (w *wsWatch) arrive(k wsKey, at time.Time) {
	w.mu.Lock()
	e := w.pending[k]
	if e == nil {
		w.mu.Unlock()
		w.unexpected.Add(1)
		return
	}
	e.want--
	if e.want == 0 {
		delete(w.pending, k)
	}
	empty := len(w.pending) == 0
	w.mu.Unlock()
	w.received.Add(1)
	w.hist.Record(at.Sub(e.sent))
	if empty {
		select {
		case w.drained <- struct{}{}:
		default:
		}
	}
}

// read receives one subscriber's messages until its connection closes.
func (w *wsWatch) read(c *websocket.Conn) {
	for {
		_, b, err := c.ReadMessage()
		at := time.Now()
		if err != nil {
			if !w.closing.Load() {
				// The server cut us off (too slow) or went away.
				w.disconnected.Add(1)
			}
			return
		}
		var m wsMessage
		if json.Unmarshal(b, &m) != nil || m.Type != "event" || m.Event == nil {
			continue
		}
		k, ok := m.key()
		if !ok {
			w.unexpected.Add(1)
			continue
		}
		w.arrive(k, at)
	}
}

func (m *wsMessage) key() (wsKey, bool) {
	s, err := strconv.ParseUint(m.Event.SessionID, 16, 64)
	if err != nil {
		return wsKey{}, false
	}
	k := wsKey{session: s}
	if m.Event.Detail != nil {
		k.stime = m.Event.Detail.SessionTime
	}
	return k, true
}

// wait waits up to grace for the events still expected.
func (w *wsWatch) wait(grace time.Duration) {
	t := time.NewTimer(grace)
	defer t.Stop()
	for {
		w.mu.Lock()
		n := len(w.pending)
		w.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-w.drained:
		case <-t.C:
			return
		}
	}
}

// close closes every subscriber, politely, and waits for the readers.
func (w *wsWatch) close() {
	w.closing.Store(true)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "load done")
	for _, c := range w.conns {
		_ = c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		c.Close()
	}
	w.wg.Wait()
}

// WSReport is what the subscribers saw.
type WSReport struct {
	Logins   int `json:"logins"`   // subscribers following one customer each
	Firehose int `json:"firehose"` // subscribers following login=*
	// Expected counts (request, subscriber) pairs that should have
	// produced an event; Received those that did; Missing those that did
	// not within the grace period (requests never stored, or a subscriber
	// cut off); Unexpected counts events matching no request of this run.
	Expected     int64 `json:"expected"`
	Received     int64 `json:"received"`
	Missing      int64 `json:"missing"`
	Unexpected   int64 `json:"unexpected"`
	Disconnected int64 `json:"disconnected"` // subscribers the server closed during the run
	// Latency runs from the first transmission of the request to the
	// moment its event was read off the websocket.
	Latency Latency `json:"latency"`
}

func (w *wsWatch) report() *WSReport {
	r := &WSReport{
		Logins: w.watched, Firehose: w.cfg.Firehose,
		Expected: w.expected.Load(), Received: w.received.Load(),
		Unexpected: w.unexpected.Load(), Disconnected: w.disconnected.Load(),
		Latency: w.hist.Summary(),
	}
	w.mu.Lock()
	for _, e := range w.pending {
		r.Missing += int64(e.want)
	}
	w.mu.Unlock()
	return r
}
