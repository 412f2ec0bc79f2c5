package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"authwatch/watcher"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TailOptions tune `authwatch tail`.
type TailOptions struct {
	Server string // http(s)://host:port of authwatch
	Token  string // API token, sent as Authorization: Bearer
	Login  string // or "*" for every login
	Since  int64  // start after this seq; 0 shows the recent events
	JSON   bool   // one JSON event per line, for scripts
	Color  bool
}

// Tail follows a login's events over the websocket API and prints one line
// per event until ctx ends. A connection that drops is reopened from the
// last seq seen, so nothing is missed or printed twice; a server that cannot
// be reached at all is an error.
func Tail(ctx context.Context, o TailOptions, out io.Writer) error {
	u, err := url.Parse(strings.TrimRight(o.Server, "/"))
	if err != nil || u.Host == "" {
		return fmt.Errorf("-server %q: not a URL like http://127.0.0.1:8080", o.Server)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return fmt.Errorf("-server %q: scheme must be http or https", o.Server)
	}
	u.Path += "/ws"
	since, connected := o.Since, false
	backoff := time.Second
	for {
		q := url.Values{"login": {o.Login}}
		if since > 0 {
			q.Set("since", strconv.FormatInt(since, 10))
		}
		u.RawQuery = q.Encode()
		err := tailOnce(ctx, u.String(), o, out, &since, &connected)
		if ctx.Err() != nil {
			return nil
		}
		if !connected {
			return fmt.Errorf("cannot follow %q at %s: %w", o.Login, o.Server, err)
		}
		fmt.Fprintf(os.Stderr, "authwatch tail: connection lost (%v); reconnecting from seq %d\n", err, since)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 15*time.Second)
	}
}

type tailMsg struct {
	Type   string          `json:"type"`
	Events []watcher.Event `json:"events"`
	Event  *watcher.Event  `json:"event"`
	Seq    int64           `json:"seq"`
	Reset  bool            `json:"reset"`
	Watch  json.RawMessage `json:"watch"`
	Outage json.RawMessage `json:"outage"`
}

func tailOnce(ctx context.Context, wsURL string, o TailOptions, out io.Writer, since *int64, connected *bool) error {
	h := http.Header{}
	if o.Token != "" {
		h.Set("Authorization", "Bearer "+o.Token)
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, resp, err := d.DialContext(ctx, wsURL, h)
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			var e struct{ Error string }
			if json.Unmarshal(body, &e) == nil && e.Error != "" {
				err = fmt.Errorf("%s: %s", resp.Status, e.Error)
			} else {
				err = errors.New(resp.Status)
			}
			if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
				*connected = false // credentials will not fix themselves
			}
		}
		return err
	}
	defer conn.Close()
	*connected = true
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	for {
		var m tailMsg
		if err := conn.ReadJSON(&m); err != nil {
			return err
		}
		switch m.Type {
		case "snapshot":
			if m.Reset {
				*since = 0
			}
			for i := range m.Events {
				printEvent(out, &m.Events[i], o)
				*since = max(*since, m.Events[i].Seq)
			}
			*since = max(*since, m.Seq)
		case "event":
			if m.Event != nil && m.Event.Seq > *since {
				printEvent(out, m.Event, o)
				*since = m.Event.Seq
			}
		case "watch", "outage":
			if o.JSON {
				body := m.Watch
				if m.Type == "outage" {
					body = m.Outage
				}
				fmt.Fprintf(out, "{\"type\":%q,%q:%s}\n", m.Type, m.Type, body)
			} else {
				printNotice(out, m, o)
			}
		}
	}
}

var kindColor = map[watcher.Kind]string{
	watcher.AuthAccept: "32", watcher.AuthReject: "31", watcher.SessionStart: "32", watcher.SessionStop: "33",
	watcher.SessionUpdate: "2", watcher.NASUp: "36", watcher.NASDown: "35", watcher.HTTPUp: "32", watcher.HTTPDown: "31",
	watcher.Action: "34", watcher.Log: "2",
}

func printEvent(out io.Writer, ev *watcher.Event, o TailOptions) {
	if o.JSON {
		b, _ := json.Marshal(ev)
		fmt.Fprintf(out, "%s\n", b)
		return
	}
	kind := fmt.Sprintf("%-14s", ev.Kind)
	if o.Color {
		kind = "\x1b[" + kindColor[ev.Kind] + "m" + kind + "\x1b[0m"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", ev.At.Local().Format("2006-01-02 15:04:05"), kind)
	for _, f := range []struct{ k, v string }{{"", ev.Login}, {"nas=", ev.NAS}, {"ip=", ev.IP}, {"mac=", ev.MAC}, {"session=", ev.SessionID}} {
		if f.v != "" {
			b.WriteString(" " + f.k + f.v)
		}
	}
	if ev.Reason != "" {
		b.WriteString(" — " + ev.Reason)
	}
	fmt.Fprintf(out, "%s  [%s #%d]\n", b.String(), ev.Source, ev.Seq)
}

func printNotice(out io.Writer, m tailMsg, o TailOptions) {
	var n struct {
		Login       string            `json:"login"`
		Step        string            `json:"step"`
		Verdict     string            `json:"verdict"`
		VerdictText map[string]string `json:"verdict_text"`
		NAS         string            `json:"nas"`
		Cause       string            `json:"cause"`
	}
	body := m.Watch
	if m.Type == "outage" {
		body = m.Outage
	}
	if json.Unmarshal(body, &n) != nil {
		return
	}
	label := fmt.Sprintf("%-14s", m.Type)
	if o.Color {
		label = "\x1b[1;34m" + label + "\x1b[0m"
	}
	now := time.Now().Format("2006-01-02 15:04:05")
	if m.Type == "outage" {
		fmt.Fprintf(out, "%s %s nas=%s — %s\n", now, label, n.NAS, n.Cause)
		return
	}
	fmt.Fprintf(out, "%s %s %s step=%s — %s\n", now, label, n.Login, n.Step, n.VerdictText["en"])
}
