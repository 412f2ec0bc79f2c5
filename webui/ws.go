package webui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"authwatch/watcher"
	"authwatch/watcher/watch"
	"authwatch/webui/auth"
)

// Websocket timing and sizes.
const (
	// writeWait bounds every write. A client whose socket stays full that
	// long is gone or hopeless.
	writeWait = 10 * time.Second
	// pongWait is how long the client may stay silent; its pongs to our
	// pings are what keep it alive, and what spot a dead NAT mapping.
	pongWait = 60 * time.Second
	// pingPeriod must be under pongWait so a live client always answers in time.
	pingPeriod = pongWait * 9 / 10
	// maxMessageSize caps what a client may send: it has nothing to say
	// beyond {"type":"ping"}.
	maxMessageSize = 4096
	// closeGrace is how long we wait for the client to answer our close
	// frame, so it reads the reason before the socket goes.
	closeGrace = time.Second
	// recentEvents is how many events a snapshot carries when the client
	// gives no since.
	recentEvents = 100
	// statsEvery spaces the firehose's state (watcher.Stats) on event
	// messages: counting costs a pass over every customer.
	statsEvery = 5 * time.Second
	// catchupCap caps the events replayed on resume. More than that were
	// missed (a laptop asleep over a busy night): the client gets the newest
	// catchupCap and "truncated": true, and the page points at the history.
	catchupCap = 1000
)

// snapshotMsg is the first message on every websocket.
type snapshotMsg struct {
	Type      string          `json:"type"` // "snapshot"
	State     any             `json:"state"`
	Events    []watcher.Event `json:"events"`
	Seq       int64           `json:"seq"` // resume cursor
	Truncated bool            `json:"truncated"`
	Reset     bool            `json:"reset"`
	// Watches are the login's running reboot watches (single-login streams).
	Watches []watch.View `json:"watches,omitempty"`
}

// eventMsg carries one live event. On single-login streams State is the
// login's state after it, so the page needs no refetch; on the firehose it is
// watcher.Stats, at most every statsEvery.
type eventMsg struct {
	Type  string        `json:"type"` // "event"
	Event watcher.Event `json:"event"`
	State any           `json:"state,omitempty"`
}

// stateMsg carries a newer state with no new event.
type stateMsg struct {
	Type  string        `json:"type"` // "state"
	State *customerView `json:"state"`
}

var pongMsg = []byte(`{"type":"pong"}`)

// closeLoginRequired closes a websocket whose session ended, expired or
// was revoked (or whose account was disabled) while it was open: the page
// goes to its login screen instead of reconnecting.
const closeLoginRequired = 4401

// handleWS serves GET /ws?login=LOGIN&since=SEQ.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	// Refuse bad parameters before upgrading, with a status the client sees.
	login, err := checkLogin(r.URL.Query().Get("login"), true)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	since, hasSince, err := seqParam(r, "since")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has answered the client already.
		s.log.Debug("websocket: upgrade refused", "login", login, "remote", r.RemoteAddr, "err", err)
		return
	}
	s.mu.Lock()
	s.conns[conn] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
	}()

	c := &wsConn{
		s: s, conn: conn, login: login, who: identity(r),
		log:      s.log.With("login", login, "remote", r.RemoteAddr),
		pongs:    make(chan struct{}, 1),
		readDone: make(chan struct{}),
		stateSeq: -1,
	}
	c.serve(since, hasSince)
}

// wsConn is one websocket: the handler's goroutine writes (writePump), one
// more reads (readPump); nothing else touches the connection, except Close's
// last-resort close of the socket.
type wsConn struct {
	s     *Server
	conn  *websocket.Conn
	login string
	who   auth.Identity // rechecked at every ping
	log   *slog.Logger

	pongs    chan struct{} // readPump asks writePump to answer a {"type":"ping"}
	readDone chan struct{} // closed when readPump returns

	// Owned by the writer.
	lastSent int64     // highest seq the client has (the resume cursor)
	stateSeq int64     // LastSeq of the customer state last sent
	statsAt  time.Time // when the firehose's stats were last sent
}

func (c *wsConn) serve(since int64, hasSince bool) {
	c.log.Debug("websocket: connected", "since", since)
	go c.readPump()
	// Subscribe before reading the store: an event committed meanwhile is
	// then in the store read, or on the subscription, or both (and the
	// duplicate is dropped by seq); never in neither.
	sub := c.s.hub.Subscribe(c.login)
	c.stream(sub, since, hasSince)
	sub.Close()
	c.conn.Close()
	<-c.readDone
	c.log.Debug("websocket: disconnected", "last_seq", c.lastSent)
}

// stream sends the snapshot, then live events until the client leaves, is
// cut off, or the server closes.
func (c *wsConn) stream(sub *watcher.Subscription, since int64, hasSince bool) {
	snap, err := c.snapshot(since, hasSince)
	if err != nil {
		if c.s.ctx.Err() != nil {
			c.closeWith(websocket.CloseGoingAway, "server shutting down")
			return
		}
		c.log.Error("websocket: snapshot failed", "since", since, "err", err)
		c.closeWith(websocket.CloseInternalServerErr, "store unavailable, reconnect later")
		return
	}
	if err := c.write(snap); err != nil {
		return
	}
	c.lastSent = snap.Seq
	c.writePump(sub)
}

// snapshot builds the first message from the store and the state.
func (c *wsConn) snapshot(since int64, hasSince bool) (snapshotMsg, error) {
	ctx, cancel := context.WithTimeout(c.s.ctx, storeTimeout)
	defer cancel()
	// Read before the events: every event at or below it is then visible
	// to the events query, so it is a safe cursor even when this login had
	// no event for a long time.
	last, err := c.s.store.LastSeq(ctx)
	if err != nil {
		return snapshotMsg{}, fmt.Errorf("snapshot of %q: %w", c.login, err)
	}
	msg := snapshotMsg{Type: "snapshot", Seq: last}
	if hasSince && since > last {
		// A seq this store never gave: the database was replaced (a new
		// demo run, a restore). Start the client over.
		msg.Reset, hasSince = true, false
	}
	q := watcher.Query{Login: c.login, Newest: true, Limit: recentEvents}
	if hasSince {
		q.After, q.Limit = since, c.s.catchupCap+1
	}
	evs, err := c.s.store.Events(ctx, q)
	if err != nil {
		return snapshotMsg{}, fmt.Errorf("snapshot of %q after %d: %w", c.login, since, err)
	}
	if hasSince && len(evs) > c.s.catchupCap {
		evs, msg.Truncated = evs[len(evs)-c.s.catchupCap:], true
	}
	if n := len(evs); n > 0 && evs[n-1].Seq > msg.Seq {
		msg.Seq = evs[n-1].Seq
	}
	if evs == nil {
		evs = []watcher.Event{}
	}
	msg.Events = evs
	if c.login == watcher.Firehose {
		msg.State = c.s.state.Stats()
		c.statsAt = time.Now()
	} else {
		v := c.s.customer(c.login)
		c.stateSeq = v.LastSeq
		msg.State = v
		if c.s.watches != nil {
			msg.Watches = c.s.watches.ForLogin(c.login)
		}
	}
	return msg, nil
}

func (c *wsConn) writePump(sub *watcher.Subscription) {
	ping := time.NewTicker(c.s.pingPeriod)
	defer ping.Stop()
	for {
		select {
		case m, ok := <-sub.C():
			if !ok {
				if sub.Cut() {
					// The hub dropped us rather than wait: everything up to
					// lastSent was delivered, so the client resumes from there.
					c.log.Info("websocket: client too slow, cut off", "last_seq", c.lastSent)
					c.closeWith(websocket.CloseTryAgainLater, fmt.Sprintf("too slow, reconnect with since=%d", c.lastSent))
				} else {
					c.closeWith(websocket.CloseGoingAway, "subscription ended")
				}
				return
			}
			var err error
			if m.Notice != nil {
				// {"type":"watch","watch":{…}}, {"type":"outage","outage":{…}}
				err = c.write(map[string]any{"type": m.Notice.Type, m.Notice.Type: m.Notice.Body})
			} else {
				err = c.forward(*m.Event)
			}
			if err != nil {
				c.log.Debug("websocket: write failed", "err", err)
				return
			}
		case <-ping.C:
			if !c.stillAllowed() {
				c.closeWith(closeLoginRequired, "login required")
				return
			}
			c.conn.SetWriteDeadline(time.Now().Add(c.s.writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				c.log.Debug("websocket: ping failed", "err", err)
				return
			}
		case <-c.pongs:
			c.conn.SetWriteDeadline(time.Now().Add(c.s.writeWait))
			if err := c.conn.WriteMessage(websocket.TextMessage, pongMsg); err != nil {
				return
			}
		case <-c.readDone:
			// The client closed, went silent past pongWait, or broke the
			// protocol (gorilla has answered that with a close frame).
			return
		case <-c.s.ctx.Done():
			c.closeWith(websocket.CloseGoingAway, "server shutting down")
			return
		}
	}
}

// stillAllowed rechecks the credentials the websocket was opened with: a
// stream must not outlive a logout, an expiry, a revoked token or a
// disabled account. A store that cannot answer right now cuts nobody off.
func (c *wsConn) stillAllowed() bool {
	if c.s.auth == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(c.s.ctx, storeTimeout)
	defer cancel()
	err := c.s.auth.Recheck(ctx, c.who)
	if errors.Is(err, auth.ErrInvalid) || errors.Is(err, auth.ErrExpired) {
		c.log.Info("websocket: credentials ended; closing", "user", c.who.User, "err", err)
		return false
	}
	return true
}

// forward sends one live event, unless the snapshot already had it.
func (c *wsConn) forward(ev watcher.Event) error {
	if ev.Seq <= c.lastSent {
		// Committed before the snapshot read the store: already sent. The
		// state may still have lagged behind it (state is applied after the
		// commit), so send the state if it moved.
		if c.login == watcher.Firehose {
			return nil
		}
		v := c.s.customer(c.login)
		if v.LastSeq == c.stateSeq {
			return nil
		}
		c.stateSeq = v.LastSeq
		return c.write(stateMsg{Type: "state", State: &v})
	}
	msg := eventMsg{Type: "event", Event: ev}
	if c.login != watcher.Firehose {
		v := c.s.customer(c.login)
		c.stateSeq = v.LastSeq
		msg.State = &v
	} else if now := time.Now(); now.Sub(c.statsAt) >= c.s.statsEvery {
		c.statsAt = now
		msg.State = c.s.state.Stats()
	}
	if err := c.write(msg); err != nil {
		return err
	}
	c.lastSent = ev.Seq
	return nil
}

func (c *wsConn) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %T: %w", v, err)
	}
	c.conn.SetWriteDeadline(time.Now().Add(c.s.writeWait))
	return c.conn.WriteMessage(websocket.TextMessage, b)
}

// closeWith sends a close frame and gives the client closeGrace to answer
// it, so the client reads the reason before the socket goes away (closing a
// socket with unread input resets it, and the frame can be lost).
func (c *wsConn) closeWith(code int, reason string) {
	msg := websocket.FormatCloseMessage(code, reason)
	if err := c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.s.writeWait)); err != nil {
		return
	}
	t := time.NewTimer(c.s.closeGrace)
	defer t.Stop()
	select {
	case <-c.readDone:
	case <-t.C:
	}
}

// readPump reads only to process control frames (pongs, close) and to notice
// the client is gone. Client messages are ignored but for {"type":"ping"}.
func (c *wsConn) readPump() {
	defer close(c.readDone)
	c.conn.SetReadLimit(maxMessageSize)
	c.conn.SetReadDeadline(time.Now().Add(c.s.pongWait))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(c.s.pongWait))
	})
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			if websocket.IsUnexpectedCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
				c.log.Debug("websocket: read ended", "err", err)
			}
			return
		}
		c.conn.SetReadDeadline(time.Now().Add(c.s.pongWait))
		var m struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(data, &m) == nil && m.Type == "ping" {
			select {
			case c.pongs <- struct{}{}: // one pending pong answers any number of pings
			default:
			}
		}
	}
}
