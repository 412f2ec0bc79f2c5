package webui

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/watch"
)

// The page is ES modules with no build step: a module that imports a file
// not embedded would only fail in a browser. Every import and every file
// index.html names must be served, with a type browsers accept for it.
func TestPageFilesResolve(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	get := func(path string) (string, *http.Response) {
		t.Helper()
		resp, err := http.Get(f.url(path))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body), resp
	}
	index, resp := get("/")
	if resp.StatusCode != 200 {
		t.Fatalf("/: %s", resp.Status)
	}
	seen := map[string]bool{}
	var queue []string
	for _, m := range regexp.MustCompile(`(?:src|href)="static/([^"]+)"`).FindAllStringSubmatch(index, -1) {
		queue = append(queue, m[1])
	}
	importRE := regexp.MustCompile(`(?m)^\s*import\s[^;]*?from\s+"\./([^"]+)"|^\s*import\s+"\./([^"]+)"`)
	wantType := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		body, resp := get("/static/" + name)
		if resp.StatusCode != 200 {
			t.Errorf("static/%s: %s", name, resp.Status)
			continue
		}
		ext := name[strings.LastIndex(name, "."):]
		if want := wantType[ext]; want != "" && resp.Header.Get("Content-Type") != want {
			t.Errorf("static/%s: Content-Type %q, want %q", name, resp.Header.Get("Content-Type"), want)
		}
		if ext != ".js" {
			continue
		}
		for _, m := range importRE.FindAllStringSubmatch(body, -1) {
			queue = append(queue, m[1]+m[2])
		}
		// Network data goes into the page as text only.
		if strings.Contains(body, "innerHTML") || strings.Contains(body, "insertAdjacentHTML") || strings.Contains(body, "document.write") {
			t.Errorf("static/%s writes HTML from strings; build elements and use textContent", name)
		}
	}
	for _, want := range []string{"app.js", "live.js", "customer.js", "supervisor.js", "watchcard.js", "timeline.js", "i18n.js", "style.css", "theme.js", "icon.svg"} {
		if !seen[want] {
			t.Errorf("static/%s is not reached from index.html", want)
		}
	}
}

// The page works under a strict Content-Security-Policy: no inline script,
// no inline style, nothing from another origin.
func TestPageCSP(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	resp, err := http.Get(f.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") || strings.Contains(csp, "http") {
		t.Errorf("CSP %q", csp)
	}
	html := string(body)
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(m, `src="static/`) {
			t.Errorf("inline or foreign script %s", m)
		}
	}
	for _, bad := range []string{"<style", " style=", " onclick=", " onload=", "http://", "https://"} {
		if strings.Contains(html, bad) {
			t.Errorf("index.html contains %q, which the CSP refuses or which needs the network", bad)
		}
	}
}

// GET /api/outages lists the notices in force, so that a page opened after
// one was raised shows it; GET /api/watches lists the running watches.
func TestOutagesAndRunningWatches(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	var out struct {
		Outages []watch.Outage `json:"outages"`
		Watches []watch.View   `json:"watches"`
	}
	if resp := f.getJSON("/api/outages", &out); resp.StatusCode != 200 || out.Outages == nil || len(out.Outages) != 0 {
		t.Fatalf("without watches: %d %+v", resp.StatusCode, out)
	}
	if resp := f.getJSON("/api/watches", &out); resp.StatusCode != 200 || out.Watches == nil || len(out.Watches) != 0 {
		t.Fatalf("without watches: %d %+v", resp.StatusCode, out)
	}

	var m *watch.Manager
	g := newFixture(t, fixtureOptions{opts: func(o *Options) {
		m = watch.NewManager(watch.Options{Store: o.Store.(watcher.WatchStore), State: o.State, Recorder: noRecorder{}, Logger: o.Logger})
		o.Watches = m
	}})
	g.commit(watcher.Event{At: time.Now().UTC(), Login: "joao", Kind: watcher.SessionStart, Source: "radius", NAS: "bras-centro", SessionID: "1", IP: "100.64.0.1"})
	v, err := m.Start(context.Background(), watch.StartRequest{Login: "joao", Agent: "Ana"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	m.Observe(watcher.Event{Seq: 1 << 40, At: now, Kind: watcher.NASDown, Source: "radius", NAS: "bras-centro", Reason: "Accounting-Off"}, []string{"joao"})
	if g.getJSON("/api/outages", &out); len(out.Outages) != 1 || out.Outages[0].NAS != "bras-centro" || out.Outages[0].Cause != "Accounting-Off" {
		t.Errorf("outages %+v", out.Outages)
	}
	if g.getJSON("/api/watches", &out); len(out.Watches) != 1 || out.Watches[0].ID != v.ID || out.Watches[0].Agent != "Ana" {
		t.Errorf("watches %+v", out.Watches)
	}
}

type noRecorder struct{}

func (noRecorder) Commit(_ context.Context, evs ...watcher.Event) ([]watcher.Event, error) {
	return evs, nil
}
