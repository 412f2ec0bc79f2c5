package routeros_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/routeros"
	"authwatch/watcher/routeros/routerostest"
)

func sessionIDs(srv *routerostest.Server) []string {
	var ids []string
	for _, ss := range srv.Sessions() {
		ids = append(ids, ss.ID+"="+ss.Name)
	}
	return ids
}

// The agent's "End session" on a RouterOS concentrator: the right item goes,
// the others stay, and the stop says who ended it.
func TestRemoveSession(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routerostest.Options{})
	stale := srv.AddSession(routerostest.Session{Name: "joao", CallerID: "52:54:00:aa:00:03", Address: "10.99.0.2", SessionID: "0x81A00002"})
	other := srv.AddSession(routerostest.Session{Name: "joao", CallerID: "52:54:00:aa:00:03", Address: "10.99.0.3", SessionID: "0x81A00003"})
	ana := srv.AddSession(routerostest.Session{Name: "ana", Address: "10.99.0.7"})
	h := start(t, srv, nil)
	h.listening()
	ctx := context.Background()

	// By the session id authwatch records (the normalised session-id).
	done, detail, err := h.src.RemoveSession(ctx, "81a00002", "joao")
	if err != nil || !done || !strings.Contains(detail, stale) || !strings.Contains(detail, "10.99.0.2") {
		t.Fatalf("remove: %v %q %v", done, detail, err)
	}
	if got := strings.Join(sessionIDs(srv), " "); got != other+"=joao "+ana+"=ana" {
		t.Fatalf("after remove: %s", got)
	}
	ev := h.next(watcher.SessionStop, "joao")
	if ev.SessionID != "81a00002" || ev.Reason != "removed from /ppp/active by authwatch" || ev.Detail.TerminateCause != "Admin-Reset" {
		t.Errorf("stop %+v %+v", ev, ev.Detail)
	}

	// Gone already: refused, "no such item", nothing removed.
	done, detail, err = h.src.RemoveSession(ctx, "81a00002", "joao")
	if err != nil || done || !strings.HasPrefix(detail, "no such item") {
		t.Fatalf("remove again: %v %q %v", done, detail, err)
	}
	// Another login's session is never matched by id alone.
	if done, detail, _ = h.src.RemoveSession(ctx, ana, "joao"); done || !strings.HasPrefix(detail, "no such item") {
		t.Fatalf("other login's .id: %v %q", done, detail)
	}

	// The router refuses (an API user without the write policy): refused
	// with its message, and the connection goes on.
	srv.FailCommand("/ppp/active/remove", "not enough permissions (9)")
	done, detail, err = h.src.RemoveSession(ctx, "", "joao")
	if err != nil || done || detail != "not enough permissions (9)" {
		t.Fatalf("refused: %v %q %v", done, detail, err)
	}
	srv.FailCommand("/ppp/active/remove", "")

	// By .id, and then every session of a login.
	if done, _, err = h.src.RemoveSession(ctx, ana, "ana"); err != nil || !done {
		t.Fatalf("by .id: %v %v", done, err)
	}
	if done, _, err = h.src.RemoveSession(ctx, "", "joao"); err != nil || !done || len(srv.Sessions()) != 0 {
		t.Fatalf("all of joao: %v %v %v", done, err, sessionIDs(srv))
	}
	if st := h.src.Status(); !st.Connected || st.Reconnects != 0 {
		t.Errorf("status %+v: the refusals cost the connection", st)
	}

	// Not connected: RemoveSession says so at once; Disconnect dials.
	h.stop()
	if _, _, err := h.src.RemoveSession(ctx, "", "joao"); !errors.Is(err, routeros.ErrNotConnected) {
		t.Fatalf("stopped source: %v", err)
	}
}

func TestDisconnectOneShot(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routerostest.Options{})
	id := srv.AddSession(routerostest.Session{Name: "joao", Address: "10.99.0.2", SessionID: "0x81A00002"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := baseConfig(srv)
	done, detail, err := routeros.Disconnect(ctx, cfg, "81a00002", "joao")
	if err != nil || !done || !strings.Contains(detail, id) || len(srv.Sessions()) != 0 {
		t.Fatalf("disconnect: %v %q %v", done, detail, err)
	}
	done, detail, err = routeros.Disconnect(ctx, cfg, "81a00002", "joao")
	if err != nil || done || !strings.HasPrefix(detail, "no such item") {
		t.Fatalf("missing: %v %q %v", done, detail, err)
	}
	cfg.Password = "wrong"
	if _, _, err = routeros.Disconnect(ctx, cfg, "", "joao"); !errors.Is(err, routeros.ErrLoginRefused) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, _, err = routeros.Disconnect(ctx, baseConfig(srv), "", ""); err == nil {
		t.Fatal("no login: removed something")
	}
	if n := srv.Conns(); n != 0 {
		time.Sleep(100 * time.Millisecond)
		if n = srv.Conns(); n != 0 {
			t.Errorf("%d connections left open", n)
		}
	}
}
