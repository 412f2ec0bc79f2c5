package webui

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// The route's own checks, with a stand-in for Options.Disconnect: what it
// is asked, and how its errors become statuses. (End to end, with a NAS,
// accounts and the audit log: internal/app's TestDisconnectRADIUS.)
func TestDisconnectRoute(t *testing.T) {
	var calls atomic.Int64
	var last DisconnectRequest
	var fail error
	f := newFixture(t, fixtureOptions{opts: func(o *Options) {
		o.Disconnect = func(_ context.Context, rq DisconnectRequest) (DisconnectResult, error) {
			calls.Add(1)
			last = rq
			return DisconnectResult{Result: "done", Via: "radius", Detail: "Disconnect-ACK"}, fail
		}
	}})
	post := func(path, body string) (int, string) {
		t.Helper()
		resp, err := http.Post(f.url(path), "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 1024)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, b.String()
	}
	// Desk mode: the local admin.
	if code, body := post("/api/customers/joao/disconnect", `{"session_id":"81a00003"}`); code != 200 || !strings.Contains(body, `"result":"done"`) {
		t.Fatalf("%d %s", code, body)
	}
	if last.Login != "joao" || last.SessionID != "81a00003" || !last.Who.IsAdmin() {
		t.Errorf("asked %+v", last)
	}
	if code, _ := post("/api/customers/joao/disconnect", ""); code != 200 || last.SessionID != "" {
		t.Errorf("empty body: %d, session %q", code, last.SessionID)
	}
	for _, bad := range []string{`{"session":"x"}`, `[1]`, `{"session_id": 3}`, `{"session_id":"` + strings.Repeat("x", 300) + `"}`} {
		if code, _ := post("/api/customers/joao/disconnect", bad); code != 400 {
			t.Errorf("body %.40s: %d, want 400", bad, code)
		}
	}
	if code, _ := post("/api/customers/*/disconnect", ""); code != 400 {
		t.Errorf("the firehose login: %d", code)
	}
	n := calls.Load()
	for err, want := range map[error]int{
		ErrDisconnectInFlight:           409,
		ErrNoSession:                    404,
		errors.New("NAS not in config"): 503,
	} {
		fail = err
		if code, _ := post("/api/customers/joao/disconnect", ""); code != want {
			t.Errorf("%v: %d, want %d", err, code, want)
		}
	}
	if calls.Load() != n+3 {
		t.Errorf("calls %d", calls.Load()-n)
	}
}

func TestDisconnectUnavailable(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	resp, err := http.Post(f.url("/api/customers/joao/disconnect"), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 501 {
		t.Errorf("without Options.Disconnect: %s", resp.Status)
	}
	var me meView
	f.getJSON("/api/me", &me)
	if me.MayDisconnect || me.NoDisconnect == "" {
		t.Errorf("/api/me %+v", me)
	}
}
