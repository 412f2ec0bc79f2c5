package webui

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/bcrypt"

	"authwatch/watcher/sqlstore"
	"authwatch/webui/auth"
)

// testClock is the auth service's clock, moved by tests.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newAuth is the fixture's auth service: cheap bcrypt, short sessions.
func newAuth(t testing.TB, store *sqlstore.Store, log *slog.Logger, edit func(*auth.Options)) *auth.Service {
	t.Helper()
	o := auth.Options{
		Store: store, BcryptCost: bcrypt.MinCost, Logger: log,
		SessionIdle: 10 * time.Minute, SessionMax: 30 * time.Minute,
	}
	edit(&o)
	a, err := auth.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func withClock(c *testClock) func(*auth.Options) {
	return func(o *auth.Options) { o.Now = c.Now }
}

// addUser creates an account and returns its password.
func (f *fixture) addUser(name string, role auth.Role) string {
	f.t.Helper()
	pw := "pw-" + name + "-" + auth.RandomPassword()
	if _, err := f.auth.AddUser(context.Background(), name, role, pw); err != nil {
		f.t.Fatal(err)
	}
	return pw
}

// client is a browser (cookies, CSRF token, Origin) or a script (Bearer).
type client struct {
	f      *fixture
	hc     *http.Client
	csrf   string
	bearer string
	origin string // sent on every request when set
	header http.Header
}

func (f *fixture) newClient() *client {
	jar, _ := cookiejar.New(nil)
	return &client{f: f, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, header: http.Header{}}
}

// tokenClient is a script using a new API token of user: the client, which
// holds the token's secret as its bearer, and the token.
func (f *fixture) tokenClient(user, name string) (*client, auth.Token) {
	f.t.Helper()
	secret, tok, err := f.auth.CreateToken(context.Background(), user, name)
	if err != nil {
		f.t.Fatal(err)
	}
	c := f.newClient()
	c.bearer = secret
	return c, tok
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(a.body), v); err != nil {
		t.Fatalf("decode %q: %v", a.body, err)
	}
}

func (a answer) errorText() string {
	var e errorBody
	json.Unmarshal([]byte(a.body), &e)
	return e.Error
}

func (c *client) do(method, path string, body any) answer {
	c.f.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.f.url(path), rd)
	if err != nil {
		c.f.t.Fatal(err)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// login logs c in and keeps its CSRF token.
func (c *client) login(user, password string) meView {
	c.f.t.Helper()
	a := c.do("POST", "/api/login", map[string]string{"username": user, "password": password})
	if a.status != 200 {
		c.f.t.Fatalf("login %s: %d %s", user, a.status, a.body)
	}
	var me meView
	a.json(c.f.t, &me)
	c.csrf = me.CSRF
	return me
}

func (c *client) dialWS(query string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	u := "ws" + strings.TrimPrefix(c.f.ts.URL, "http") + "/ws?" + query
	if cookies := c.hc.Jar.Cookies(mustURL(c.f.ts.URL)); len(cookies) > 0 {
		for _, ck := range cookies {
			h.Add("Cookie", ck.Name+"="+ck.Value)
		}
	}
	if c.bearer != "" {
		h.Set("Authorization", "Bearer "+c.bearer)
	}
	if c.origin != "" {
		h.Set("Origin", c.origin)
	}
	conn, resp, err := websocket.DefaultDialer.Dial(u, h)
	if err == nil {
		c.f.t.Cleanup(func() { conn.Close() })
	}
	return conn, resp, err
}

// examplePath turns a route pattern into a request that matches it.
func examplePath(pattern string) (method, path string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "GET", pattern
	}
	r := strings.NewReplacer("{login}", "alice", "{id}", "w1", "{name}", "bob", "{$}", "")
	path = r.Replace(path)
	switch path {
	case "/api/":
		path = "/api/nope"
	case "/ws":
		path = "/ws?login=alice"
	case "/api/lookup":
		path = "/api/lookup?q=alice"
	}
	return method, path
}

// TestRouteTable: every route has an access level, and every route that is
// not public refuses a request without credentials, websocket included.
func TestRouteTable(t *testing.T) {
	f, _ := apiFixture(t, fixtureOptions{
		accounts: func(*auth.Options) {},
		opts: func(o *Options) {
			o.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up 1\n") })
		},
	})
	public := map[string]bool{
		"GET /{$}": true, "GET /login.html": true, "GET /static/{name}": true,
		"GET /healthz": true, "GET /metrics": true, "POST /api/login": true,
	}
	seen := map[string]bool{}
	anon := f.newClient()
	for _, rt := range f.srv.registry {
		t.Run(rt.pattern, func(t *testing.T) {
			if seen[rt.pattern] {
				t.Fatal("registered twice")
			}
			seen[rt.pattern] = true
			switch rt.access {
			case Public, Agent, Admin:
			default:
				t.Fatalf("no access level (%v): give it one in routes()", rt.access)
			}
			if public[rt.pattern] != (rt.access == Public) {
				t.Fatalf("access %v; the public routes are exactly %v", rt.access, public)
			}
			method, path := examplePath(rt.pattern)
			a := anon.do(method, path, nil)
			if rt.access == Public {
				if a.status == 401 || a.status == 403 {
					t.Fatalf("public route refused: %d %s", a.status, a.body)
				}
				return
			}
			if a.status != 401 || a.errorText() != "login required" || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
				t.Fatalf("without credentials: %d %q %s, want 401 {\"error\":\"login required\"}", a.status, a.header.Get("Content-Type"), a.body)
			}
		})
	}
	for p := range public {
		if !seen[p] {
			t.Errorf("public route %s is not registered", p)
		}
	}
	// The websocket handshake itself.
	if _, resp, err := anon.dialWS("login=alice"); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Errorf("websocket without credentials: %v %+v", err, resp)
	}
	if _, resp, err := anon.dialWS("login=*"); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Errorf("firehose without credentials: %v %+v", err, resp)
	}
}

// Routes registered on the mux directly, bypassing Server.handle, fail
// closed; and no source file does it.
func TestRoutesOnlyThroughHandle(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	called := false
	f.srv.mux.HandleFunc("GET /api/sneaky", func(http.ResponseWriter, *http.Request) { called = true })
	a := f.newClient().do("GET", "/api/sneaky", nil)
	if a.status != 500 || called {
		t.Errorf("unregistered route: %d %s, handler called %v", a.status, a.body, called)
	}

	files, _ := filepath.Glob("*.go")
	direct := regexp.MustCompile(`\bmux\.Handle(Func)?\(`)
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if direct.MatchString(line) && !strings.Contains(line, "s.mux.Handle(pattern, s.guard(rt, h))") {
				t.Errorf("%s:%d registers a route without an access level: %s", name, i+1, strings.TrimSpace(line))
			}
		}
	}
}

func TestRoles(t *testing.T) {
	f, _ := apiFixture(t, fixtureOptions{accounts: func(*auth.Options) {}})
	agentPW := f.addUser("ana", auth.RoleAgent)
	adminPW := f.addUser("root", auth.RoleAdmin)
	agent, admin := f.newClient(), f.newClient()
	agent.login("ana", agentPW)
	admin.login("ROOT", adminPW) // names are case-insensitive
	for _, rt := range f.srv.registry {
		if rt.access == Public || stateChanging(strings.Fields(rt.pattern)[0]) {
			continue
		}
		method, path := examplePath(rt.pattern)
		a := agent.do(method, path, nil)
		if rt.access == Admin {
			if a.status != 403 || a.errorText() != "this needs the admin role" {
				t.Errorf("agent on %s: %d %s", rt.pattern, a.status, a.body)
			}
		} else if a.status == 401 || a.status == 403 {
			t.Errorf("agent refused on %s: %d %s", rt.pattern, a.status, a.body)
		}
		if a := admin.do(method, path, nil); a.status == 401 || a.status == 403 {
			t.Errorf("admin refused on %s: %d %s", rt.pattern, a.status, a.body)
		}
	}
	var me meView
	agent.do("GET", "/api/me", nil).json(t, &me)
	if me.User != "ana" || me.Role != auth.RoleAgent || me.Auth != auth.MethodSession || me.CSRF == "" {
		t.Errorf("/api/me: %+v", me)
	}
}

func TestLoginAndCookie(t *testing.T) {
	f, _ := apiFixture(t, fixtureOptions{accounts: func(*auth.Options) {}})
	pw := f.addUser("ana", auth.RoleAgent)
	c := f.newClient()
	a := c.do("POST", "/api/login", map[string]string{"username": "ana", "password": pw})
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	var ck *http.Cookie
	for _, k := range (&http.Response{Header: a.header}).Cookies() {
		if k.Name == auth.CookieName {
			ck = k
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Secure || ck.Path != "/" || len(ck.Value) < 40 {
		t.Fatalf("cookie %+v", ck)
	}
	var me meView
	a.json(t, &me)
	if me.User != "ana" || me.Role != auth.RoleAgent || len(me.CSRF) < 40 || me.Auth != auth.MethodSession {
		t.Errorf("login answer %+v", me)
	}
	// Over TLS the cookie is Secure.
	req := httptest.NewRequest("POST", "https://127.0.0.1/api/login", strings.NewReader(fmt.Sprintf(`{"username":"ana","password":%q}`, pw)))
	req.TLS = &tls.ConnectionState{}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	if cs := rec.Result().Cookies(); rec.Code != 200 || len(cs) != 1 || !cs[0].Secure {
		t.Errorf("login over TLS: %d %+v", rec.Code, cs)
	}

	for _, tt := range []struct {
		name   string
		body   any
		status int
		want   string
	}{
		{"wrong password", map[string]string{"username": "ana", "password": "nope-nope"}, 401, "wrong user name or password"},
		{"unknown user", map[string]string{"username": "nobody", "password": "nope-nope"}, 401, "wrong user name or password"},
		{"no password", map[string]string{"username": "ana"}, 400, "both required"},
		{"unknown field", map[string]string{"user": "ana", "password": "x"}, 400, "unknown field"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := f.newClient().do("POST", "/api/login", tt.body)
			if a.status != tt.status || !strings.Contains(a.errorText(), tt.want) || strings.Contains(a.header.Get("Set-Cookie"), auth.CookieName+"=") {
				t.Errorf("%d %s %v", a.status, a.body, a.header["Set-Cookie"])
			}
		})
	}

	// Disabled: the right password gets 403, and open sessions end.
	if err := f.auth.SetDisabled(context.Background(), "ana", true); err != nil {
		t.Fatal(err)
	}
	if a := c.do("GET", "/api/me", nil); a.status != 401 {
		t.Errorf("session of a disabled user: %d", a.status)
	}
	if a := f.newClient().do("POST", "/api/login", map[string]string{"username": "ana", "password": pw}); a.status != 403 || !strings.Contains(a.errorText(), "disabled") {
		t.Errorf("disabled login: %d %s", a.status, a.body)
	}

	// Logout ends the session for good.
	f.auth.SetDisabled(context.Background(), "ana", false)
	c.login("ana", pw)
	old := c.hc.Jar.Cookies(mustURL(f.ts.URL))
	if a := c.do("POST", "/api/logout", nil); a.status != 200 {
		t.Fatalf("logout: %d %s", a.status, a.body)
	}
	replay := f.newClient()
	replay.hc.Jar.SetCookies(mustURL(f.ts.URL), old)
	if a := replay.do("GET", "/api/customers/alice", nil); a.status != 401 {
		t.Errorf("cookie after logout: %d", a.status)
	}
}

func TestSessionExpiry(t *testing.T) {
	clock := &testClock{t: time.Now()}
	f, _ := apiFixture(t, fixtureOptions{accounts: withClock(clock)}) // idle 10m, max 30m
	pw := f.addUser("ana", auth.RoleAgent)
	tests := []struct {
		name  string
		steps []time.Duration // requests after each step, all but the last answered
	}{
		{"idle", []time.Duration{9 * time.Minute, 9 * time.Minute, 10*time.Minute + time.Second}},
		{"absolute", []time.Duration{8 * time.Minute, 8 * time.Minute, 8 * time.Minute, 5 * time.Minute, 2 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.newClient()
			c.login("ana", pw)
			for i, d := range tt.steps {
				clock.Advance(d)
				a := c.do("GET", "/api/customers/alice", nil)
				last := i == len(tt.steps)-1
				if !last && a.status != 200 {
					t.Fatalf("step %d (+%v): %d %s", i, d, a.status, a.body)
				}
				if last && (a.status != 401 || !strings.Contains(a.errorText(), "expired")) {
					t.Fatalf("expired session: %d %s", a.status, a.body)
				}
			}
		})
	}
}

func TestLoginRateLimit(t *testing.T) {
	clock := &testClock{t: time.Now()}
	f := newFixture(t, fixtureOptions{accounts: func(o *auth.Options) {
		o.Now, o.FailuresPerUser, o.FailuresPerAddress, o.FailureWindow = clock.Now, 3, 6, 10*time.Minute
	}})
	pw := f.addUser("ana", auth.RoleAgent)
	pw2 := f.addUser("bia", auth.RoleAgent)
	c := f.newClient()
	try := func(user, password string) answer {
		return c.do("POST", "/api/login", map[string]string{"username": user, "password": password})
	}
	for i := 0; i < 3; i++ {
		if a := try("ana", "wrong-password"); a.status != 401 {
			t.Fatalf("failure %d: %d", i, a.status)
		}
	}
	a := try("ana", pw) // right, but too late
	if a.status != 429 || a.errorText() != "too many failed logins for this user; try again in 10 minutes" || a.header.Get("Retry-After") == "" {
		t.Fatalf("blocked user: %d %s %v", a.status, a.body, a.header)
	}
	// Another user from the same address still may, until the address
	// itself has failed too often.
	c.login("bia", pw2)
	for i := 0; i < 3; i++ {
		try(fmt.Sprintf("guess%d", i), "wrong-password")
	}
	if a := try("bia", pw2); a.status != 429 || !strings.Contains(a.errorText(), "for this address") {
		t.Fatalf("blocked address: %d %s", a.status, a.body)
	}
	clock.Advance(10*time.Minute + time.Second)
	c.login("ana", pw)
}

func TestCSRFAndOrigin(t *testing.T) {
	f, _ := apiFixture(t, fixtureOptions{accounts: func(*auth.Options) {}, opts: func(o *Options) {
		o.AllowedOrigins = []string{"https://authwatch.example.net"}
	}})
	pw := f.addUser("root", auth.RoleAdmin)
	c := f.newClient()
	c.login("root", pw)
	token := c.csrf
	// A token that differs from the real one in its first character,
	// whatever that character is.
	wrong := "x" + token[1:]
	if token[0] == 'x' {
		wrong = "y" + token[1:]
	}
	own := f.ts.URL
	tests := []struct {
		name, csrf, origin, fetchSite string
		status                        int
	}{
		{"no token", "", own, "", 403},
		{"wrong token", wrong, own, "", 403},
		{"token", token, own, "", 201},
		{"token, no origin", token, "", "", 201},
		{"token, configured origin", token, "https://authwatch.example.net", "", 201},
		{"token, foreign origin", token, "https://evil.example", "", 403},
		{"token, null origin", token, "null", "", 403},
		{"token, cross-site fetch", token, "", "cross-site", 403},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.csrf, c.origin = tt.csrf, tt.origin
			c.header.Del("Sec-Fetch-Site")
			if tt.fetchSite != "" {
				c.header.Set("Sec-Fetch-Site", tt.fetchSite)
			}
			a := c.do("POST", "/api/users", map[string]string{"name": fmt.Sprintf("u%d", i), "role": "agent", "password": "long-enough"})
			if a.status != tt.status {
				t.Fatalf("%d %s, want %d", a.status, a.body, tt.status)
			}
		})
	}
	// Reads need no token.
	c.csrf, c.origin = "", ""
	c.header.Del("Sec-Fetch-Site")
	if a := c.do("GET", "/api/customers/alice", nil); a.status != 200 {
		t.Errorf("GET without token: %d", a.status)
	}
	// API tokens are not browser-borne: no CSRF token needed.
	script, _ := f.tokenClient("root", "ci")
	if a := script.do("POST", "/api/users", map[string]string{"name": "viatoken", "role": "agent", "password": "long-enough"}); a.status != 201 {
		t.Errorf("token POST: %d %s", a.status, a.body)
	}
	// Login from another site's page is refused too.
	evil := f.newClient()
	evil.origin = "https://evil.example"
	if a := evil.do("POST", "/api/login", map[string]string{"username": "root", "password": pw}); a.status != 403 {
		t.Errorf("cross-origin login: %d", a.status)
	}
}

func TestWebsocketAuth(t *testing.T) {
	f, _ := apiFixture(t, fixtureOptions{accounts: func(*auth.Options) {}})
	f.srv.pingPeriod, f.srv.pongWait = 50*time.Millisecond, 2*time.Second
	pw := f.addUser("ana", auth.RoleAgent)
	c := f.newClient()
	c.login("ana", pw)

	t.Run("cookie", func(t *testing.T) {
		conn, _, err := c.dialWS("login=alice")
		if err != nil {
			t.Fatal(err)
		}
		var m wsMsg
		if err := conn.ReadJSON(&m); err != nil || m.Type != "snapshot" {
			t.Fatalf("%+v %v", m, err)
		}
	})
	t.Run("wrong origin", func(t *testing.T) {
		c.origin = "https://evil.example"
		defer func() { c.origin = "" }()
		if _, resp, err := c.dialWS("login=alice"); err == nil || resp == nil || resp.StatusCode != 403 {
			t.Fatalf("%v %+v", err, resp)
		}
	})
	t.Run("revoked token closes the stream", func(t *testing.T) {
		s, tok := f.tokenClient("ana", "tail")
		conn, _, err := s.dialWS("login=alice")
		if err != nil {
			t.Fatal(err)
		}
		ws := &wsClient{t: t, conn: conn}
		ws.read() // snapshot
		if err := f.auth.RevokeToken(context.Background(), tok.ID); err != nil {
			t.Fatal(err)
		}
		if code, _ := ws.closeCode(); code != closeLoginRequired {
			t.Errorf("close code %d, want %d", code, closeLoginRequired)
		}
		if _, resp, err := s.dialWS("login=alice"); err == nil || resp.StatusCode != 401 {
			t.Errorf("revoked token dialled: %v", err)
		}
		if a := s.do("GET", "/api/customers/alice", nil); a.status != 401 {
			t.Errorf("revoked token on the API: %d", a.status)
		}
	})
	t.Run("logout closes the stream", func(t *testing.T) {
		conn, _, err := c.dialWS("login=alice")
		if err != nil {
			t.Fatal(err)
		}
		ws := &wsClient{t: t, conn: conn}
		ws.read()
		c.do("POST", "/api/logout", nil)
		if code, _ := ws.closeCode(); code != closeLoginRequired {
			t.Errorf("close code %d, want %d", code, closeLoginRequired)
		}
	})
}

func TestTrustedProxyHeader(t *testing.T) {
	tests := []struct {
		name    string
		trusted string
		user    string
		status  int
	}{
		{"from a trusted proxy", "127.0.0.0/8", "ana", 200},
		{"case-insensitive", "127.0.0.1", "ANA", 200},
		{"from anyone else", "10.0.0.0/8", "ana", 401},
		{"unknown account", "127.0.0.0/8", "nobody", 401},
		{"disabled account", "127.0.0.0/8", "off", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := apiFixture(t, fixtureOptions{accounts: func(o *auth.Options) {
				o.ProxyHeader, o.TrustedProxies = "X-Remote-User", []netip.Prefix{mustPrefix(tt.trusted)}
			}})
			f.addUser("ana", auth.RoleAgent)
			f.addUser("root", auth.RoleAdmin)
			f.addUser("off", auth.RoleAgent)
			f.auth.SetDisabled(context.Background(), "off", true)
			c := f.newClient()
			c.header.Set("X-Remote-User", tt.user)
			c.header.Set("X-Forwarded-For", "203.0.113.9, 198.51.100.7")
			a := c.do("GET", "/api/me", nil)
			if a.status != tt.status {
				t.Fatalf("%d %s", a.status, a.body)
			}
			if tt.status != 200 {
				return
			}
			var me meView
			a.json(t, &me)
			if me.User != "ana" || me.Auth != auth.MethodProxy {
				t.Errorf("%+v", me)
			}
			// The audit log has the client's address, the nearest one the
			// proxy vouches for.
			c.do("GET", "/api/customers/alice", nil)
			entries, _ := f.auth.Audit(context.Background(), auth.AuditQuery{User: "ana"})
			if len(entries) != 1 || entries[0].Remote != "198.51.100.7" || entries[0].Method != auth.MethodProxy {
				t.Errorf("audit %+v", entries)
			}
			// No CSRF token for the proxy's users, but no other site either.
			c.origin = "https://evil.example"
			if a := c.do("POST", "/api/logout", nil); a.status != 403 {
				t.Errorf("cross-origin POST through the proxy: %d", a.status)
			}
		})
	}
}

func TestAudit(t *testing.T) {
	clock := &testClock{t: time.Now()}
	f, _ := apiFixture(t, fixtureOptions{accounts: withClock(clock)})
	pw := f.addUser("ana", auth.RoleAgent)
	adminPW := f.addUser("root", auth.RoleAdmin)
	c := f.newClient()
	c.login("ana", pw)
	c.do("GET", "/api/lookup?q=AA:BB:CC:DD:EE:01", nil)
	c.do("GET", "/api/customers/alice", nil)
	c.do("GET", "/api/customers/alice", nil) // a reload: coalesced
	c.do("GET", "/api/customers/alice/events", nil)
	conn, _, err := c.dialWS("login=alice")
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	c.do("GET", "/api/customers/bob", nil)
	// Requests that name no customer are refused and leave no entry.
	for _, bad := range []struct{ method, path string }{
		{"GET", "/api/customers/" + strings.Repeat("x", 300)},
		{"GET", "/api/customers/*"},
		{"POST", "/api/customers/*/probe"},
		{"GET", "/ws"},
	} {
		if a := c.do(bad.method, bad.path, nil); a.status != 400 {
			t.Errorf("%s %s: %d %s, want 400", bad.method, bad.path, a.status, a.body)
		}
	}
	clock.Advance(time.Minute + time.Second)
	c.do("GET", "/api/customers/alice", nil) // a minute later: recorded again

	admin := f.newClient()
	admin.login("root", adminPW)
	var got struct{ Entries []auth.AuditEntry }
	a := admin.do("GET", "/api/audit?login=alice", nil)
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	a.json(t, &got)
	var actions []string
	for _, e := range got.Entries {
		actions = append(actions, e.Action)
		if e.User != "ana" || e.Login != "alice" || e.Remote != "127.0.0.1" || e.Method != auth.MethodSession || e.At.IsZero() {
			t.Errorf("entry %+v", e)
		}
	}
	if strings.Join(actions, " ") != "customer watch events customer" {
		t.Errorf("alice's audit, newest first: %v", actions)
	}
	a = admin.do("GET", "/api/audit?user=ana&limit=10", nil)
	a.json(t, &got)
	if len(got.Entries) != 6 || got.Entries[len(got.Entries)-1].Action != "lookup" || got.Entries[len(got.Entries)-1].Query != "AA:BB:CC:DD:EE:01" {
		t.Errorf("ana's audit: %+v", got.Entries)
	}
	if a := c.do("GET", "/api/audit", nil); a.status != 403 {
		t.Errorf("agent reads the audit log: %d", a.status)
	}
	if a := admin.do("GET", "/api/audit?limit=0", nil); a.status != 400 {
		t.Errorf("limit=0: %d", a.status)
	}

	// Nothing is shown unrecorded: with the store gone, access is refused.
	f.store.Close()
	if a := c.do("GET", "/api/customers/carla", nil); a.status != 503 {
		t.Errorf("unrecordable access: %d %s", a.status, a.body)
	}
}

// Passwords and tokens never reach the logs or the API's answers.
func TestSecretsStayOut(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f, _ := apiFixture(t, fixtureOptions{accounts: func(o *auth.Options) { o.Logger = log }, opts: func(o *Options) { o.Logger = log }})
	adminPW := "admin-secret-7f3a9"
	if _, err := f.auth.AddUser(context.Background(), "root", auth.RoleAdmin, adminPW); err != nil {
		t.Fatal(err)
	}
	var bodies []string
	keep := func(a answer) answer { bodies = append(bodies, a.body, fmt.Sprint(a.header)); return a }
	c := f.newClient()
	keep(c.do("POST", "/api/login", map[string]string{"username": "root", "password": "wrong-guess-1b2c"}))
	keep(c.do("POST", "/api/login", map[string]string{"username": "typed-pass-in-user-9d8e", "password": "x"}))
	me := c.login("root", adminPW)
	agentPW := "agent-secret-4e5d6"
	newPW := "changed-secret-0a1b2"
	keep(c.do("POST", "/api/users", map[string]string{"name": "ana", "role": "agent", "password": agentPW}))
	keep(c.do("PATCH", "/api/users/ana", map[string]string{"password": newPW}))
	keep(c.do("GET", "/api/users", nil))
	keep(c.do("GET", "/api/me", nil))
	keep(c.do("GET", "/healthz", nil))
	s, _ := f.tokenClient("ana", "tail")
	secret := s.bearer
	keep(s.do("GET", "/api/me", nil))
	keep(s.do("GET", "/api/customers/alice", nil))
	keep(c.do("GET", "/api/audit", nil))
	cookie := c.hc.Jar.Cookies(mustURL(f.ts.URL))[0].Value

	all := strings.Join(bodies, "\n")
	for _, secret := range []string{adminPW, "wrong-guess-1b2c", "typed-pass-in-user-9d8e", agentPW, newPW, secret, cookie, me.CSRF} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log has a secret %q:\n%s", secret, logs.String())
		}
		if secret != me.CSRF && strings.Contains(all, secret) {
			t.Errorf("API answer has a secret %q", secret)
		}
	}
	if strings.Contains(all, "$2a$") || strings.Contains(all, "password_hash") {
		t.Errorf("API shows password hashes: %s", all)
	}
	if !strings.Contains(logs.String(), "logged in") {
		t.Errorf("the log should still say who logged in:\n%s", logs.String())
	}
}

// Desk mode: a local admin, but only for requests that name a loopback
// host and do not come from another site.
func TestDeskMode(t *testing.T) {
	f, _ := apiFixture(t, fixtureOptions{})
	c := f.newClient()
	var me meView
	c.do("GET", "/api/me", nil).json(t, &me)
	if me.User != auth.DeskUser || me.Role != auth.RoleAdmin || me.Auth != auth.MethodDesk {
		t.Errorf("/api/me: %+v", me)
	}
	if a := c.do("GET", "/api/routers", nil); a.status != 200 {
		t.Errorf("admin route: %d", a.status)
	}
	if a := c.do("POST", "/api/login", map[string]string{"username": "x", "password": "y"}); a.status != 400 || !strings.Contains(a.errorText(), "desk mode") {
		t.Errorf("login in desk mode: %d %s", a.status, a.body)
	}
	c.origin = "https://evil.example"
	if a := c.do("POST", "/api/logout", nil); a.status != 403 {
		t.Errorf("cross-origin POST in desk mode: %d", a.status)
	}
	// DNS rebinding: evil.example now resolves to 127.0.0.1.
	req := httptest.NewRequest("GET", "http://evil.example:8080/api/customers/alice", nil)
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	if rec.Code != 403 {
		t.Errorf("request for another host name: %d", rec.Code)
	}
	for _, host := range []string{"localhost:8080", "[::1]:8080", "127.0.0.2"} {
		req := httptest.NewRequest("GET", "http://"+host+"/api/customers/alice", nil)
		rec := httptest.NewRecorder()
		f.srv.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Errorf("%s: %d", host, rec.Code)
		}
	}
}

// /healthz tells anyone whether authwatch is well, and admins why not.
func TestHealthDetailForAdmins(t *testing.T) {
	f, _ := apiFixture(t, fixtureOptions{accounts: func(*auth.Options) {}, opts: func(o *Options) {
		o.Checks = append(o.Checks, InfoCheck("routeros", func() any { return map[string]string{"router": "10.0.0.1:8728"} }))
	}})
	pw := f.addUser("root", auth.RoleAdmin)
	anon := f.newClient().do("GET", "/healthz", nil)
	if anon.status != 200 || strings.Contains(anon.body, "10.0.0.1") || strings.Contains(anon.body, "detail") || !strings.Contains(anon.body, `"routeros":{"ok":true}`) {
		t.Errorf("anonymous /healthz: %d %s", anon.status, anon.body)
	}
	c := f.newClient()
	c.login("root", pw)
	if a := c.do("GET", "/healthz", nil); !strings.Contains(a.body, "10.0.0.1") {
		t.Errorf("admin /healthz: %s", a.body)
	}
}

func TestUserManagement(t *testing.T) {
	f := newFixture(t, fixtureOptions{accounts: func(*auth.Options) {}})
	pw := f.addUser("root", auth.RoleAdmin)
	c := f.newClient()
	c.login("root", pw)
	tests := []struct {
		method, path string
		body         any
		status       int
		want         string
	}{
		{"POST", "/api/users", map[string]string{"name": "Ana", "role": "agent", "password": "long-enough"}, 201, `"name":"ana"`},
		{"POST", "/api/users", map[string]string{"name": "ana", "role": "agent", "password": "long-enough"}, 409, "already exists"},
		{"POST", "/api/users", map[string]string{"name": "bia", "role": "boss", "password": "long-enough"}, 400, "agent or admin"},
		{"POST", "/api/users", map[string]string{"name": "bia", "role": "agent", "password": "short"}, 400, "at least 8"},
		{"POST", "/api/users", map[string]string{"name": "-x", "role": "agent", "password": "long-enough"}, 400, "user name"},
		{"POST", "/api/users", map[string]string{"name": "desk", "role": "agent", "password": "long-enough"}, 400, "reserved"},
		{"PATCH", "/api/users/ana", map[string]any{"role": "admin"}, 200, `"role":"admin"`},
		{"PATCH", "/api/users/ana", map[string]any{"disabled": true}, 200, `"disabled":true`},
		{"PATCH", "/api/users/root", map[string]any{"disabled": true}, 400, "last enabled admin"},
		{"PATCH", "/api/users/root", map[string]any{"role": "agent"}, 400, "last enabled admin"},
		{"PATCH", "/api/users/zed", map[string]any{"disabled": true}, 404, "no user"},
		// All or nothing: the bad role refuses the password with it.
		{"PATCH", "/api/users/ana", map[string]any{"disabled": false, "password": "a-new-password", "role": "boss"}, 400, "agent or admin"},
		{"GET", "/api/users", nil, 200, `"ana"`},
	}
	for _, tt := range tests {
		a := c.do(tt.method, tt.path, tt.body)
		if a.status != tt.status || !strings.Contains(a.body, tt.want) {
			t.Errorf("%s %s %v: %d %s", tt.method, tt.path, tt.body, a.status, a.body)
		}
	}
	u, err := f.auth.User(context.Background(), "ana")
	if err != nil || !u.Disabled {
		t.Fatalf("ana after a refused change: %+v %v", u, err)
	}
	if a := c.do("PATCH", "/api/users/ana", map[string]any{"disabled": false}); a.status != 200 {
		t.Fatalf("enable ana: %d %s", a.status, a.body)
	}
	if a := f.newClient().do("POST", "/api/login", map[string]string{"username": "ana", "password": "a-new-password"}); a.status != 401 {
		t.Errorf("the refused change's password works: %d %s", a.status, a.body)
	}
	if a := f.newClient().do("POST", "/api/login", map[string]string{"username": "ana", "password": "long-enough"}); a.status != 200 {
		t.Errorf("ana's password after a refused change: %d %s", a.status, a.body)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func mustPrefix(s string) netip.Prefix {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p
	}
	a := netip.MustParseAddr(s)
	return netip.PrefixFrom(a, a.BitLen())
}

// syncBuffer collects log lines written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// With MetricsLogin, /metrics answers accounts only: Prometheus sends an API
// token as its bearer.
func TestMetricsLogin(t *testing.T) {
	f, _ := apiFixture(t, fixtureOptions{
		accounts: func(*auth.Options) {},
		opts: func(o *Options) {
			o.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up 1\n") })
			o.MetricsLogin = true
		},
	})
	if a := f.newClient().do("GET", "/metrics", nil); a.status != 401 {
		t.Fatalf("anonymous /metrics: %d %s", a.status, a.body)
	}
	f.addUser("prometheus", auth.RoleAgent)
	c, _ := f.tokenClient("prometheus", "scrape")
	if a := c.do("GET", "/metrics", nil); a.status != 200 || a.body != "up 1\n" {
		t.Fatalf("/metrics with a token: %d %q", a.status, a.body)
	}
}
