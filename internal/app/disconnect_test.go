package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	"authwatch/internal/app"
	"authwatch/internal/config"
	"authwatch/radius/radiustest"
	"authwatch/watcher"
	"authwatch/watcher/routeros/routerostest"
	"authwatch/webui"
)

// dynAuthNAS is a NAS's dynamic-authorization port on loopback: it checks
// each Disconnect-Request's Request Authenticator (layeh.com/radius, not
// authwatch's encoder) and answers with what answer returns (nil: nothing).
type dynAuthNAS struct {
	conn   *net.UDPConn
	secret []byte
	answer func(req *radius.Packet) *radius.Packet

	mu   sync.Mutex
	reqs []*radius.Packet
	bad  int
}

func startDynAuthNAS(t *testing.T, secret string, answer func(*radius.Packet) *radius.Packet) *dynAuthNAS {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	n := &dynAuthNAS{conn: conn, secret: []byte(secret), answer: answer}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, src, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			b := bytes.Clone(buf[:k])
			p, err := radius.Parse(b, n.secret)
			n.mu.Lock()
			if err != nil || p.Code != radius.CodeDisconnectRequest || !radius.IsAuthenticRequest(b, n.secret) {
				n.bad++
				n.mu.Unlock()
				continue
			}
			n.reqs = append(n.reqs, p)
			n.mu.Unlock()
			if resp := n.answer(p); resp != nil {
				out, err := resp.Encode()
				if err == nil {
					conn.WriteToUDP(out, src)
				}
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return n
}

func (n *dynAuthNAS) port() int { return n.conn.LocalAddr().(*net.UDPAddr).Port }

func (n *dynAuthNAS) received() (reqs []*radius.Packet, bad int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*radius.Packet(nil), n.reqs...), n.bad
}

// apiClient is a browser's session: cookie, CSRF token, same-origin
// requests.
type apiClient struct {
	t    *testing.T
	base string
	http *http.Client
	csrf string
}

func loginAs(t *testing.T, base, user, password string) *apiClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &apiClient{t: t, base: base, http: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
	var me struct {
		CSRF          string `json:"csrf"`
		MayDisconnect bool   `json:"may_disconnect"`
	}
	if code, body := c.do("POST", "/api/login", map[string]string{"username": user, "password": password}, &me); code != 200 {
		t.Fatalf("login as %s: %d %s", user, code, body)
	}
	c.csrf = me.CSRF
	return c
}

// do sends a request (v decodes a 200 answer) and returns the status and body.
func (c *apiClient) do(method, path string, body, v any) (int, string) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", c.base)
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 && v != nil {
		if err := json.Unmarshal(raw, v); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode, string(raw)
}

func (c *apiClient) events(login string) []watcher.Event {
	c.t.Helper()
	var v struct{ Events []watcher.Event }
	if code, body := c.do("GET", "/api/customers/"+login+"/events?limit=100", nil, &v); code != 200 {
		c.t.Fatalf("events: %d %s", code, body)
	}
	return v.Events
}

func lastOfKind(evs []watcher.Event, kind watcher.Kind) *watcher.Event {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Kind == kind {
			return &evs[i]
		}
	}
	return nil
}

// TestDisconnectRADIUS: "End session" on a NAS that is not a RouterOS
// router is an RFC 5176 Disconnect-Request to its coa_port. Who may: admins;
// agents only once [actions] allows it (a reload applies); a refused agent
// sends nothing. The action event and the audit entry are there.
func TestDisconnectRADIUS(t *testing.T) {
	const coaSecret = "coa-secret-for-tests"
	var mu sync.Mutex
	answer := func(req *radius.Packet) *radius.Packet { return req.Response(radius.CodeDisconnectACK) }
	hold := make(chan struct{})
	nas := startDynAuthNAS(t, coaSecret, func(req *radius.Packet) *radius.Packet {
		mu.Lock()
		a := answer
		mu.Unlock()
		return a(req)
	})

	// Another concentrator, a MikroTik, answers its API on the same
	// (loopback) address: a session of bras-sul must not be sent to it.
	other, err := routerostest.New(routerostest.Options{User: "authwatch", Password: "pw", Identity: "bras-norte"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	dir := t.TempDir()
	path := filepath.Join(dir, "authwatch.toml")
	writeConfig := func(agentsMay bool) {
		text := fmt.Sprintf(`[http]
listen = "127.0.0.1:0"
[store]
path = %q
[radius]
listen = "127.0.0.1:0"
[[nas]]
name = "bras-sul"
address = "127.0.0.1"
secret = %q
coa_port = %d
coa_secret = %q
[[routeros]]
name = "bras-norte"
address = %q
user = "authwatch"
password = "pw"
[actions]
agents_may_disconnect = %t
`, filepath.Join(dir, "authwatch.db"), secret, nas.port(), coaSecret, other.Addr(), agentsMay)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig(false)
	for _, u := range []struct{ role, name, pw string }{{"admin", "root", "root-password-1"}, {"agent", "ana", "ana-password-1"}} {
		if out, err := runUser(t, "add", app.UserOptions{Config: path, Role: u.role, Name: u.name}, u.pw+"\n"); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d, logs := startLogged(t, cfg)
	base := "http://" + d.HTTPAddr()
	send(t, d, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "joao", SessionID: "8100000a",
		MAC: "aa:bb:cc:00:00:01", IP: netip.MustParseAddr("100.64.0.9"), NASIP: netip.MustParseAddr("127.0.0.1")})

	agent, admin := loginAs(t, base, "ana", "ana-password-1"), loginAs(t, base, "root", "root-password-1")
	var me struct {
		MayDisconnect bool   `json:"may_disconnect"`
		NoDisconnect  string `json:"no_disconnect"`
	}
	agent.do("GET", "/api/me", nil, &me)
	if me.MayDisconnect || !strings.Contains(me.NoDisconnect, "admin role") {
		t.Errorf("agent's /api/me: %+v", me)
	}

	// The agent without the right: 403, nothing sent.
	if code, body := agent.do("POST", "/api/customers/joao/disconnect", map[string]string{}, nil); code != 403 || !strings.Contains(body, "agents_may_disconnect") {
		t.Fatalf("agent: %d %s", code, body)
	}
	if reqs, _ := nas.received(); len(reqs) != 0 {
		t.Fatalf("the refused agent's disconnect reached the NAS")
	}
	// Same-origin and CSRF rules, as for every change.
	csrf := admin.csrf
	admin.csrf = ""
	if code, _ := admin.do("POST", "/api/customers/joao/disconnect", nil, nil); code != 403 {
		t.Errorf("without X-CSRF-Token: %d", code)
	}
	admin.csrf = csrf

	// The admin: Disconnect-ACK.
	var res webui.DisconnectResult
	if code, body := admin.do("POST", "/api/customers/joao/disconnect", map[string]string{"session_id": "8100000a"}, &res); code != 200 {
		t.Fatalf("admin: %d %s", code, body)
	}
	if res.Result != "done" || res.Via != "radius" || !strings.Contains(res.Detail, "Disconnect-ACK") {
		t.Fatalf("result %+v", res)
	}
	reqs, bad := nas.received()
	if len(reqs) != 1 || bad != 0 {
		t.Fatalf("NAS got %d requests, %d bad", len(reqs), bad)
	}
	r := reqs[0]
	if rfc2865.UserName_GetString(r) != "joao" || rfc2866.AcctSessionID_GetString(r) != "8100000a" ||
		rfc2865.FramedIPAddress_Get(r).String() != "100.64.0.9" || rfc2865.NASIPAddress_Get(r).String() != "127.0.0.1" {
		t.Errorf("request attributes %v", r.Attributes)
	}
	ev := lastOfKind(admin.events("joao"), watcher.Action)
	if ev == nil || ev.Source != "agent:root" || ev.Reason != "session ended by root via radius: done" || ev.NAS != "bras-sul" ||
		ev.SessionID != "8100000a" || !strings.Contains(ev.Detail.Attributes["sent"], `Disconnect-Request to 127.0.0.1:`) {
		t.Fatalf("action event %+v", ev)
	}
	var audit struct {
		Entries []struct{ User, Action, Login, Query string }
	}
	admin.do("GET", "/api/audit?login=joao", nil, &audit)
	found := false
	for _, e := range audit.Entries {
		if e.Action == "disconnect" && e.User == "root" && e.Login == "joao" && strings.Contains(e.Query, "session 8100000a on bras-sul via radius") {
			found = true
		}
	}
	if !found {
		t.Errorf("no audit entry of the disconnect: %+v", audit.Entries)
	}

	// Agents allowed by a reload; the NAS refuses (the session is gone).
	writeConfig(true)
	if err := d.Reload(path); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	answer = func(req *radius.Packet) *radius.Packet {
		resp := req.Response(radius.CodeDisconnectNAK)
		resp.Add(101, radius.NewInteger(503))
		return resp
	}
	mu.Unlock()
	if code, body := agent.do("POST", "/api/customers/joao/disconnect", nil, &res); code != 200 {
		t.Fatalf("allowed agent: %d %s", code, body)
	}
	if res.Result != "refused" || !strings.Contains(res.Detail, "503 Session-Context-Not-Found") {
		t.Errorf("NAK: %+v", res)
	}
	if ev := lastOfKind(agent.events("joao"), watcher.Action); ev == nil || ev.Source != "agent:ana" ||
		!strings.HasPrefix(ev.Reason, "ana asked to end the session via radius: refused — 503 Session-Context-Not-Found") {
		t.Errorf("refused action event %+v", ev)
	}

	// One at a time: while the NAS thinks, a second press gets 409.
	mu.Lock()
	answer = func(req *radius.Packet) *radius.Packet { <-hold; return req.Response(radius.CodeDisconnectACK) }
	mu.Unlock()
	first := make(chan int, 1)
	go func() {
		code, _ := admin.do("POST", "/api/customers/joao/disconnect", nil, &webui.DisconnectResult{})
		first <- code
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if reqs, _ := nas.received(); len(reqs) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first disconnect never reached the NAS")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, body := agent.do("POST", "/api/customers/joao/disconnect", nil, nil); code != 409 {
		t.Errorf("second while in flight: %d %s", code, body)
	}
	close(hold)
	if code := <-first; code != 200 {
		t.Errorf("first: %d", code)
	}
	if code, _ := admin.do("POST", "/api/customers/nobody/disconnect", nil, nil); code != 404 {
		t.Errorf("login without sessions: %d", code)
	}
	if strings.Contains(logs.String(), coaSecret) {
		t.Error("the CoA secret is in the log")
	}
}

// TestDisconnectRouterOS: on a NAS that is a [[routeros]] router the
// session is removed from /ppp/active over the API (desk mode: the local
// admin), and `authwatch disconnect` prints the result.
func TestDisconnectRouterOS(t *testing.T) {
	router, err := routerostest.New(routerostest.Options{User: "authwatch", Password: "pw", Identity: "bras-norte"})
	if err != nil {
		t.Fatal(err)
	}
	defer router.Close()
	stale := router.AddSession(routerostest.Session{Name: "maria", CallerID: "18:FD:74:00:00:01", Address: "100.64.9.9", SessionID: "0x81A00009"})
	router.AddSession(routerostest.Session{Name: "pedro", Address: "100.64.9.10"})

	d, _ := start(t, routerConfig(t, router))
	base := "http://" + d.HTTPAddr()
	waitOnline(t, base, "maria")

	var out bytes.Buffer
	if err := app.Disconnect(context.Background(), app.DisconnectOptions{Server: base, Login: "maria"}, &out); err != nil {
		t.Fatalf("authwatch disconnect: %v (%s)", err, out.String())
	}
	if got := out.String(); !strings.HasPrefix(got, "maria: done via routeros:bras-norte: removed /ppp/active "+stale) {
		t.Errorf("printed %q", got)
	}
	for _, ss := range router.Sessions() {
		if ss.Name == "maria" {
			t.Errorf("maria's session is still in /ppp/active")
		}
	}
	if len(router.Sessions()) != 1 {
		t.Errorf("other sessions removed: %+v", router.Sessions())
	}
	// The stop arrives through the router's listen, with who ended it; the
	// action event says what was done.
	deadline := time.Now().Add(10 * time.Second)
	var evs []watcher.Event
	for {
		var v struct{ Events []watcher.Event }
		getJSON(t, base+"/api/customers/maria/events?limit=50", &v)
		evs = v.Events
		if lastOfKind(evs, watcher.SessionStop) != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop, action := lastOfKind(evs, watcher.SessionStop), lastOfKind(evs, watcher.Action)
	if stop == nil || stop.Reason != "removed from /ppp/active by authwatch" {
		t.Errorf("stop %+v", stop)
	}
	if action == nil || action.Source != "agent:desk" || action.Reason != "session ended by desk via routeros:bras-norte: done" ||
		!strings.Contains(action.Detail.Attributes["sent"], `/ppp/active/remove on router bras-norte`) {
		t.Errorf("action %+v", action)
	}

	// Nothing left to end: 404, and the command says so.
	err = app.Disconnect(context.Background(), app.DisconnectOptions{Server: base, Login: "maria"}, &out)
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "no open session") {
		t.Errorf("second disconnect: %v", err)
	}
	// The session goes from the router between authwatch's look and its
	// remove: the router's "no such item" is a refusal.
	router.AddSession(routerostest.Session{Name: "lucas", Address: "100.64.9.11"})
	waitOnline(t, base, "lucas")
	router.FailCommand("/ppp/active/remove", "no such item")
	out.Reset()
	err = app.Disconnect(context.Background(), app.DisconnectOptions{Server: base, Login: "lucas"}, &out)
	if !errors.Is(err, app.ErrNotEnded) || !strings.HasPrefix(out.String(), "lucas: refused via routeros:bras-norte: no such item") {
		t.Errorf("refused: %v %q", err, out.String())
	}
	resp, err := http.Post(base+"/api/customers/lucas/disconnect", "application/json", strings.NewReader(`{"session_id":"not-lucas-session"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unknown session id: %s", resp.Status)
	}
}
