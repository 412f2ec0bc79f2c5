package webui

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"authwatch/watcher"
)

// apiFixture stores a small known history:
//
//	alice   auth.accept, session.start (MAC …:01, 100.64.0.10)  online
//	alicia  session.start (MAC …:02, 100.64.0.11)                online
//	bob     session.start, session.stop (User-Request)           offline
func apiFixture(t *testing.T, fo fixtureOptions) (*fixture, []watcher.Event) {
	f := newFixture(t, fo)
	at := func(s int) time.Time { return testStart.Add(time.Duration(s) * time.Second) }
	evs := f.commit(
		watcher.Event{At: at(1), Login: "alice", Kind: watcher.AuthAccept, Source: "radius", NAS: "bras-centro", MAC: "AA:BB:CC:DD:EE:01"},
		watcher.Event{At: at(2), Login: "alice", Kind: watcher.SessionStart, Source: "radius", NAS: "bras-centro", SessionID: "s1", MAC: "AA:BB:CC:DD:EE:01", IP: "100.64.0.10", Detail: &watcher.Detail{NASPortID: "ether1.100"}},
		watcher.Event{At: at(3), Login: "alicia", Kind: watcher.SessionStart, Source: "radius", NAS: "bras-norte", SessionID: "s2", MAC: "AA:BB:CC:DD:EE:02", IP: "100.64.0.11"},
		watcher.Event{At: at(4), Login: "bob", Kind: watcher.SessionStart, Source: "radius", NAS: "bras-centro", SessionID: "s3", IP: "100.64.0.12"},
		watcher.Event{At: at(5), Login: "bob", Kind: watcher.SessionStop, Source: "radius", NAS: "bras-centro", SessionID: "s3", Reason: "User-Request"},
		watcher.Event{At: at(6), Login: "a b/c", Kind: watcher.Log, Source: "radius", Reason: "odd login"},
	)
	return f, evs
}

func TestAPI(t *testing.T) {
	f, evs := apiFixture(t, fixtureOptions{})
	customer := func(check func(t *testing.T, c customerView, raw string)) func(*testing.T, string) {
		return func(t *testing.T, body string) {
			var c customerView
			if err := json.Unmarshal([]byte(body), &c); err != nil {
				t.Fatal(err)
			}
			check(t, c, body)
		}
	}
	events := func(want []watcher.Event, next int64, more bool) func(*testing.T, string) {
		return func(t *testing.T, body string) {
			var p eventsPage
			if err := json.Unmarshal([]byte(body), &p); err != nil {
				t.Fatal(err)
			}
			if got := seqs(p.Events); !slices.Equal(got, seqs(want)) || p.Next != next || p.More != more {
				t.Errorf("events %v next %d more %v, want %v %d %v", got, p.Next, p.More, seqs(want), next, more)
			}
			if p.Events == nil {
				t.Error("events is null, want a list")
			}
		}
	}
	lookup := func(kind, value string, logins ...string) func(*testing.T, string) {
		return func(t *testing.T, body string) {
			var a lookupAnswer
			if err := json.Unmarshal([]byte(body), &a); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range a.Results {
				got = append(got, r.Login)
				if r.Match != kind || !r.Known || r.LastSeen.IsZero() {
					t.Errorf("result %+v: want match %q, known, last seen", r, kind)
				}
			}
			if a.Query.Kind != kind || a.Query.Value != value || !slices.Equal(got, logins) || a.Results == nil {
				t.Errorf("lookup answered %s; want %s %q %v", body, kind, value, logins)
			}
		}
	}
	errorSays := func(text string) func(*testing.T, string) {
		return func(t *testing.T, body string) {
			var e errorBody
			if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, text) {
				t.Errorf("error body %s, want it to say %q", body, text)
			}
		}
	}

	tests := []struct {
		method, path string
		status       int
		check        func(t *testing.T, body string)
	}{
		{"GET", "/api/customers/alice", 200, customer(func(t *testing.T, c customerView, _ string) {
			if !c.Known || !c.Online || c.Login != "alice" || len(c.Sessions) != 1 || c.Sessions[0].IP != "100.64.0.10" ||
				c.Sessions[0].NASPortID != "ether1.100" || c.LastAuth == nil || !c.LastAuth.Accepted || c.LastSeq != evs[1].Seq || !c.Since.Equal(evs[1].At) {
				t.Errorf("alice: %+v", c)
			}
		})},
		{"GET", "/api/customers/bob", 200, customer(func(t *testing.T, c customerView, _ string) {
			if !c.Known || c.Online || len(c.Sessions) != 0 || c.LastStop == nil || c.LastStop.Reason != "User-Request" || !c.Since.Equal(evs[4].At) {
				t.Errorf("bob: %+v", c)
			}
		})},
		{"GET", "/api/customers/nobody", 200, customer(func(t *testing.T, c customerView, raw string) {
			if c.Known || c.Online || c.Login != "nobody" || !strings.Contains(raw, `"sessions":[]`) || !strings.Contains(raw, `"ipv6":[]`) || !strings.Contains(raw, `"known":false`) {
				t.Errorf("unknown login: %s", raw)
			}
		})},
		{"GET", "/api/customers/a%20b%2Fc", 200, customer(func(t *testing.T, c customerView, raw string) {
			if !c.Known || c.Login != "a b/c" {
				t.Errorf("escaped login: %s", raw)
			}
		})},
		{"GET", "/api/customers/*", 400, errorSays("not a customer")},
		{"GET", "/api/customers/" + strings.Repeat("x", 254), 400, errorSays("longer than")},

		{"GET", "/api/customers/alice/events", 200, events(evs[0:2], evs[1].Seq, false)},
		{"GET", "/api/customers/alice/events?limit=1", 200, events(evs[1:2], evs[1].Seq, true)},
		{"GET", "/api/customers/alice/events?since=0&limit=1", 200, events(evs[0:1], evs[0].Seq, true)},
		{"GET", "/api/customers/alice/events?since=" + itoa(evs[0].Seq), 200, events(evs[1:2], evs[1].Seq, false)},
		{"GET", "/api/customers/alice/events?since=" + itoa(evs[5].Seq), 200, events(nil, evs[5].Seq, false)},
		{"GET", "/api/customers/alice/events?before=" + itoa(evs[1].Seq), 200, events(evs[0:1], evs[0].Seq, false)},
		{"GET", "/api/customers/nobody/events", 200, events(nil, 0, false)},
		{"GET", "/api/customers/*/events?since=0&limit=2", 200, events(evs[0:2], evs[1].Seq, true)},
		{"GET", "/api/customers/*/events?limit=1000", 200, events(evs, evs[5].Seq, false)},
		{"GET", "/api/customers/alice/events?since=abc", 400, errorSays("since: want a seq")},
		{"GET", "/api/customers/alice/events?since=-1", 400, errorSays("since: want a seq")},
		{"GET", "/api/customers/alice/events?since=1.5", 400, errorSays("since: want a seq")},
		{"GET", "/api/customers/alice/events?before=0", 400, errorSays("before")},
		{"GET", "/api/customers/alice/events?limit=0", 400, errorSays("limit: want a whole number from 1 to 1000")},
		{"GET", "/api/customers/alice/events?limit=1001", 400, errorSays("limit")},
		{"GET", "/api/customers/alice/events?limit=ten", 400, errorSays("limit")},

		{"GET", "/api/lookup?q=ali", 200, lookup("login", "ali", "alicia", "alice")}, // most recently seen first
		{"GET", "/api/lookup?q=alice", 200, lookup("login", "alice", "alice")},
		{"GET", "/api/lookup?q=ali&limit=1", 200, lookup("login", "ali", "alicia")},
		{"GET", "/api/lookup?q=+aa-bb-cc-dd-ee-01+", 200, lookup("mac", "AA:BB:CC:DD:EE:01", "alice")},
		{"GET", "/api/lookup?q=aabb.ccdd.ee02", 200, lookup("mac", "AA:BB:CC:DD:EE:02", "alicia")},
		{"GET", "/api/lookup?q=100.64.0.11", 200, lookup("ip", "100.64.0.11", "alicia")},
		{"GET", "/api/lookup?q=::ffff:100.64.0.12", 200, lookup("ip", "100.64.0.12", "bob")},
		{"GET", "/api/lookup?q=2804:14c:5bb::10", 200, lookup("ip", "2804:14c:5bb::10")}, // 12 hex digits, yet no MAC
		{"GET", "/api/lookup?q=zz", 200, lookup("login", "zz")},
		{"GET", "/api/lookup", 400, errorSays("q: required")},
		{"GET", "/api/lookup?q=+", 400, errorSays("q: required")},
		{"GET", "/api/lookup?q=ali&limit=101", 400, errorSays("limit")},
		{"GET", "/api/lookup?q=%FF", 400, errorSays("UTF-8")},

		{"GET", "/api/nope", 404, errorSays("no such API route")},
		{"GET", "/api/customers", 404, errorSays("no such API route")},
		{"POST", "/api/customers/alice", 405, errorSays("POST not allowed")},
		{"DELETE", "/api/lookup?q=x", 405, errorSays("not allowed")},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, f.url(tt.path), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("content type %q", ct)
			}
			tt.check(t, string(body))
		})
	}
}

func itoa(n int64) string { return strings.TrimSpace(string(must(json.Marshal(n)))) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestHealth(t *testing.T) {
	t.Run("healthy", func(t *testing.T) {
		f, _ := apiFixture(t, fixtureOptions{opts: func(o *Options) {
			o.Checks = append(o.Checks, InfoCheck("radius", func() any { return map[string]int{"dropped": 3} }))
		}})
		var rep healthReport
		resp := f.getJSON("/healthz", &rep)
		if resp.StatusCode != 200 || rep.Status != "ok" || !rep.Checks["store"].OK || !rep.Checks["recorder"].OK || !rep.Checks["radius"].OK {
			t.Fatalf("%d %+v", resp.StatusCode, rep)
		}
		if rep.State.Customers != 4 || rep.State.Online != 2 {
			t.Errorf("state %+v", rep.State)
		}
		if d, _ := json.Marshal(rep.Checks["radius"].Detail); string(d) != `{"dropped":3}` {
			t.Errorf("radius detail %s", d)
		}
	})
	t.Run("failing checks", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{opts: func(o *Options) {
			o.Checks = append(o.Checks,
				Check{Name: "radius", Run: func(context.Context) Status { return Status{Error: "listen udp :1813: address in use"} }},
				Check{Name: "broken", Run: func(context.Context) Status { panic("oops") }},
				Check{Name: "slow", Run: func(ctx context.Context) Status { <-ctx.Done(); return Status{Error: ctx.Err().Error()} }},
			)
		}})
		var rep healthReport
		start := time.Now()
		resp := f.getJSON("/healthz", &rep)
		if resp.StatusCode != 503 || rep.Status != "failing" || !rep.Checks["store"].OK || rep.Checks["radius"].OK ||
			!strings.Contains(rep.Checks["broken"].Error, "panicked") || rep.Checks["slow"].OK {
			t.Fatalf("%d %+v", resp.StatusCode, rep)
		}
		if took := time.Since(start); took > checkTimeout+time.Second {
			t.Errorf("took %v: checks should run concurrently, each within %v", took, checkTimeout)
		}
	})
	t.Run("store down", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{})
		f.store.Close()
		var rep healthReport
		if resp := f.getJSON("/healthz", &rep); resp.StatusCode != 503 || rep.Checks["store"].OK || rep.Checks["store"].Error == "" {
			t.Fatalf("%d %+v", resp.StatusCode, rep)
		}
		// The API says the store is unavailable, without details.
		var e errorBody
		if resp := f.getJSON("/api/customers/alice/events", &e); resp.StatusCode != 503 || e.Error != "store unavailable" {
			t.Errorf("events with the store down: %d %+v", resp.StatusCode, e)
		}
		// The websocket closes with 1011 rather than hanging.
		c, _, err := f.dial("login=alice", nil)
		if err != nil {
			t.Fatal(err)
		}
		if code, _ := c.closeCode(); code != 1011 {
			t.Errorf("websocket with the store down: close %d, want 1011", code)
		}
	})
	t.Run("recorder failing", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{})
		f.store.Close()
		_, err := f.rec.Commit(context.Background(), event("alice", watcher.Log, 1))
		if err == nil {
			t.Fatal("commit to a closed store succeeded")
		}
		var rep healthReport
		if resp := f.getJSON("/healthz", &rep); resp.StatusCode != 503 || rep.Checks["recorder"].OK || rep.Checks["recorder"].Error == "" {
			t.Fatalf("%d %+v", resp.StatusCode, rep)
		}
	})
}

func TestPage(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	tests := []struct {
		method, path string
		status       int
		ctype        string
		contains     string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", `src="static/app.js"`},
		{"HEAD", "/", 200, "text/html; charset=utf-8", ""},
		{"GET", "/static/live.js", 200, "text/javascript; charset=utf-8", "new WebSocket"},
		{"GET", "/static/style.css", 200, "text/css; charset=utf-8", ".stepper"},
		{"GET", "/static/icon.svg", 200, "image/svg+xml", "<svg"},
		{"GET", "/static/index.html", 200, "text/html; charset=utf-8", "<title>authwatch</title>"},
		{"GET", "/static/nope.js", 404, "application/json; charset=utf-8", "no such file"},
		{"GET", "/static/", 404, "", ""}, // no directory listing
		{"GET", "/static/%92", 404, "", ""},
		{"GET", "/nope", 404, "", ""},
		{"POST", "/", 405, "", ""},
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, f.url(tt.path), nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.ctype != "" && resp.Header.Get("Content-Type") != tt.ctype {
				t.Errorf("content type %q, want %q", resp.Header.Get("Content-Type"), tt.ctype)
			}
			if !strings.Contains(string(body), tt.contains) {
				t.Errorf("body does not contain %q", tt.contains)
			}
		})
	}
}

func TestMetricsRoute(t *testing.T) {
	f := newFixture(t, fixtureOptions{opts: func(o *Options) {
		o.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "authwatch_up 1\n") })
	}})
	resp, err := http.Get(f.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "authwatch_up 1\n" {
		t.Errorf("/metrics: %d %q", resp.StatusCode, body)
	}
	g := newFixture(t, fixtureOptions{})
	if resp, err := http.Get(g.url("/metrics")); err != nil || resp.StatusCode != 404 {
		t.Errorf("/metrics without Options.Metrics: %v %v", resp, err)
	}
}

// The page's files carry an ETag, so browsers revalidate them cheaply.
func TestPageRevalidation(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, path := range []string{"/", "/static/app.js"} {
		resp, err := http.Get(f.url(path))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		etag := resp.Header.Get("ETag")
		if etag == "" || resp.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("%s: ETag %q Cache-Control %q", path, etag, resp.Header.Get("Cache-Control"))
		}
		req, _ := http.NewRequest("GET", f.url(path), nil)
		req.Header.Set("If-None-Match", etag)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("%s with If-None-Match: %d, want 304", path, resp.StatusCode)
		}
	}
}

func TestNew(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ok := Options{State: f.state, Store: f.store, Hub: f.hub, Desk: true}
	run := func(context.Context) Status { return Status{OK: true} }
	tests := []struct {
		name string
		edit func(*Options)
		want string // "" for success
	}{
		{"minimal", func(*Options) {}, ""},
		{"no state", func(o *Options) { o.State = nil }, "no State"},
		{"no store", func(o *Options) { o.Store = nil }, "no Store"},
		{"no hub", func(o *Options) { o.Hub = nil }, "no Hub"},
		{"neither auth nor desk", func(o *Options) { o.Desk = false }, "no Auth"},
		{"check without run", func(o *Options) { o.Checks = []Check{{Name: "x"}} }, `check "x"`},
		{"duplicate check", func(o *Options) { o.Checks = []Check{{Name: "x", Run: run}, {Name: "x", Run: run}} }, "used twice"},
		{"check named store", func(o *Options) { o.Checks = []Check{{Name: "store", Run: run}} }, "reserved"},
		{"origins", func(o *Options) { o.AllowedOrigins = []string{"https://noc.example.net", "http://10.0.0.5:8080/"} }, ""},
		{"origin with a path", func(o *Options) { o.AllowedOrigins = []string{"https://noc.example.net/app"} }, "scheme://host"},
		{"origin wildcard", func(o *Options) { o.AllowedOrigins = []string{"*"} }, "scheme://host"},
		{"origin without scheme", func(o *Options) { o.AllowedOrigins = []string{"noc.example.net"} }, "scheme://host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.edit(&o)
			s, err := New(o)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// FuzzRequest throws arbitrary paths and queries at every route: the answer
// is never a 5xx or a panic, and API answers are JSON.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		"/api/customers/alice", "/api/customers/alice/events?since=1&limit=5", "/api/customers/*/events?before=3",
		"/api/lookup?q=aa:bb:cc:dd:ee:ff", "/api/lookup?q=::1", "/api/lookup?q=%00", "/healthz", "/ws?login=alice&since=x",
		"/api/customers/%FF%FE/events?since=99999999999999999999", "/api/lookup?q=" + strings.Repeat("a", 300), "/static/../go.mod",
	} {
		f.Add(s)
	}
	fx := newFixture(f, fixtureOptions{})
	fx.commitN("alice", 5)
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(u.Path, "/") {
			t.Skip()
		}
		req := httptest.NewRequest("GET", "http://127.0.0.1/", nil) // desk mode answers loopback names only
		req.URL, req.RequestURI = u, target
		rec := httptest.NewRecorder()
		fx.srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s: %d %s", target, rec.Code, rec.Body)
		}
		redirect := rec.Code >= 300 && rec.Code < 400 // the mux cleaning a path like /api//x
		if strings.HasPrefix(u.Path, "/api/") && !redirect && !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			t.Fatalf("%s: %d with content type %q", target, rec.Code, rec.Header().Get("Content-Type"))
		}
	})
}

// A path served for other methods answers 405 naming them in Allow.
func TestMethodNotAllowed(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, tt := range []struct{ method, path, allow string }{
		{"GET", "/api/customers/alice/probe", "POST"},
		{"PUT", "/api/watches", "GET, HEAD, POST"},
		{"POST", "/api/customers/alice", "GET, HEAD"},
	} {
		req, _ := http.NewRequest(tt.method, f.url(tt.path), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d Allow %q, want 405 %q", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Allow"), tt.allow)
		}
	}
}
