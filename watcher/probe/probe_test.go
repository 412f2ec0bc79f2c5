package probe_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/probe"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// serve starts a CPE stand-in on 127.0.0.1 and returns its port.
func serve(t *testing.T, h http.HandlerFunc) int {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

// closedPort returns a loopback port nobody listens on.
func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

var ip = netip.MustParseAddr("127.0.0.1")

func TestProbe(t *testing.T) {
	archer := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html><head><TITLE>TP-Link  Archer&nbsp;C6\n</TITLE></head></html>"))
	})
	login := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			http.Redirect(w, r, "/login.html", http.StatusFound)
			return
		}
		w.Write([]byte("<title>ONU F670L</title>"))
	})
	var elsewhereHits atomic.Int32
	elsewhere := serve(t, func(w http.ResponseWriter, r *http.Request) { elsewhereHits.Add(1) })
	offsite := serve(t, func(w http.ResponseWriter, r *http.Request) {
		// "localhost" is another host name than the IP probed, even if it
		// resolves to the same machine: the probe must not go there.
		http.Redirect(w, r, "http://localhost:"+strconv.Itoa(elsewhere)+"/", http.StatusFound)
	})
	forbidden := serve(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) })
	refused := closedPort(t)

	tests := []struct {
		name       string
		ports      []int
		kind       watcher.Kind
		status     int
		title      string
		reasonHas  string
		urlHasPort int
	}{
		{"title", []int{archer}, watcher.HTTPUp, 200, "TP-Link Archer C6", "200 OK — TP-Link", archer},
		{"same-host redirect followed", []int{login}, watcher.HTTPUp, 200, "ONU F670L", "200 OK", login},
		{"redirect off the IP not followed", []int{offsite}, watcher.HTTPUp, 302, "", "302 Found", offsite},
		{"any HTTP answer is up", []int{forbidden}, watcher.HTTPUp, 401, "", "401 Unauthorized", forbidden},
		{"second port when the first refuses", []int{refused, archer}, watcher.HTTPUp, 200, "TP-Link Archer C6", "200 OK", archer},
		{"refused", []int{refused}, watcher.HTTPDown, 0, "", "connection refused", refused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := probe.New(probe.Config{Ports: tt.ports, Allow: loopback, Timeout: 2 * time.Second})
			ev, err := p.Probe(context.Background(), "joao", ip)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind != tt.kind || ev.Login != "joao" || ev.Source != "probe" || ev.IP != "127.0.0.1" {
				t.Fatalf("event %+v", ev)
			}
			if !strings.Contains(ev.Reason, tt.reasonHas) {
				t.Errorf("reason %q, want it to contain %q", ev.Reason, tt.reasonHas)
			}
			if ev.Detail == nil || ev.Detail.HTTPStatus != tt.status || ev.Detail.HTTPTitle != tt.title {
				t.Errorf("detail %+v", ev.Detail)
			}
			if !strings.Contains(ev.Detail.URL, ":"+strconv.Itoa(tt.urlHasPort)+"/") {
				t.Errorf("url %q", ev.Detail.URL)
			}
			if err := ev.Validate(); err != nil {
				t.Errorf("event does not validate: %v", err)
			}
		})
	}
	if n := elsewhereHits.Load(); n != 0 {
		t.Errorf("the redirect target off the IP was fetched %d times", n)
	}
}

func TestProbeTimesOut(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	slow := serve(t, func(w http.ResponseWriter, r *http.Request) {
		select { // answers nothing until the test ends
		case <-release:
		case <-r.Context().Done():
		}
	})
	p := probe.New(probe.Config{Ports: []int{slow}, Allow: loopback, Timeout: 300 * time.Millisecond})
	ev, err := p.Probe(context.Background(), "joao", ip)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind != watcher.HTTPDown || !strings.Contains(ev.Reason, "timeout after 300ms") {
		t.Fatalf("event %+v", ev)
	}
}

func TestProbeReadsAtMostTheCap(t *testing.T) {
	const maxBody = 4096
	var written atomic.Int64
	endless := serve(t, func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("x", 1024))
		for {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	lateTitle := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat(" ", maxBody) + "<title>too far</title>"))
	})
	p := probe.New(probe.Config{Ports: []int{endless}, Allow: loopback, Timeout: 20 * time.Second, MaxBody: maxBody})
	done := make(chan watcher.Event, 1)
	go func() {
		ev, _ := p.Probe(context.Background(), "joao", ip)
		done <- ev
	}()
	select {
	case ev := <-done:
		// Reading stopped at the cap, not at the timeout: the answer is up.
		if ev.Kind != watcher.HTTPUp {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("probe still reading an endless page after 10s (%d bytes written)", written.Load())
	}
	p2 := probe.New(probe.Config{Ports: []int{lateTitle}, Allow: loopback, MaxBody: maxBody})
	if ev, _ := p2.Probe(context.Background(), "joao", ip); ev.Detail.HTTPTitle != "" {
		t.Errorf("title beyond the cap was read: %q", ev.Detail.HTTPTitle)
	}
}

func TestProbeRefusesWithoutSending(t *testing.T) {
	var hits atomic.Int32
	port := serve(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })

	p := probe.New(probe.Config{Ports: []int{port}}) // default allow: no loopback
	if _, err := p.Probe(context.Background(), "joao", ip); !errors.Is(err, probe.ErrNotAllowed) {
		t.Errorf("loopback with the default allow: err %v", err)
	}
	for _, a := range []string{"0.0.0.0", "224.0.0.1", "169.254.1.1", "fe80::1"} {
		if p.Allowed(netip.MustParseAddr(a)) {
			t.Errorf("%s allowed by default", a)
		}
	}
	if !p.Allowed(netip.MustParseAddr("100.64.3.7")) || !p.Allowed(netip.MustParseAddr("2804:db8::1")) {
		t.Error("a customer address is not allowed by default")
	}

	limited := probe.New(probe.Config{Ports: []int{port}, Allow: loopback, MinInterval: time.Hour})
	if _, err := limited.Probe(context.Background(), "joao", ip); err != nil {
		t.Fatal(err)
	}
	if _, err := limited.Probe(context.Background(), "joao", ip); !errors.Is(err, probe.ErrRateLimited) {
		t.Errorf("second probe within the interval: err %v", err)
	}
	if _, err := limited.Probe(context.Background(), "maria", ip); err != nil {
		t.Errorf("another login is limited too: %v", err)
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("CPE got %d requests, want 2", n)
	}
}

func TestTitle(t *testing.T) {
	tests := map[string]string{
		"<title>Intelbras</title>":                  "Intelbras",
		"<TITLE lang=pt>  Huawei\n HG8245 </TITLE>": "Huawei HG8245",
		"<title>a &amp; b</title>":                  "a & b",
		"no title":                                  "",
		"<title>unterminated":                       "",
		"<title>\xff\xfe</title>":                   "",
	}
	for in, want := range tests {
		if got := probe.Title([]byte(in)); got != want {
			t.Errorf("Title(%q) = %q, want %q", in, got, want)
		}
	}
}

// serve6 starts a CPE stand-in on ::1 and returns its port; the test is
// skipped where the host has no IPv6 loopback.
func serve6(t *testing.T, h http.HandlerFunc) int {
	t.Helper()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

// TestProbeDualStack: a CPE that answers only on its IPv6 address is found
// there after its IPv4 address refuses, in one probe; an address outside
// [probe] allow is skipped, not probed.
func TestProbeDualStack(t *testing.T) {
	port := serve6(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<title>Huawei EG8145V5</title>")) })
	v6 := netip.MustParseAddr("::1")
	allow := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	p := probe.New(probe.Config{Ports: []int{port}, Allow: allow, Timeout: time.Second})
	ev, err := p.ProbeAddrs(context.Background(), "joao", []netip.Addr{ip, v6})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind != watcher.HTTPUp || ev.IP != "::1" || ev.Detail.HTTPTitle != "Huawei EG8145V5" || ev.Detail.URL != "http://[::1]:"+strconv.Itoa(port)+"/" {
		t.Fatalf("dual stack = %+v %+v", ev, ev.Detail)
	}

	// Both down: the reason names each address.
	closed := closedPort(t)
	p = probe.New(probe.Config{Ports: []int{closed}, Allow: allow, Timeout: time.Second})
	ev, err = p.ProbeAddrs(context.Background(), "joao", []netip.Addr{ip, v6})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind != watcher.HTTPDown || ev.IP != "127.0.0.1" || !strings.Contains(ev.Reason, "127.0.0.1:"+strconv.Itoa(closed)+": ") || !strings.Contains(ev.Reason, "[::1]:"+strconv.Itoa(closed)+": ") {
		t.Fatalf("both down = %+v", ev)
	}

	// Only the IPv4 range allowed: the IPv6 address is not tried.
	p = probe.New(probe.Config{Ports: []int{port}, Allow: loopback, Timeout: time.Second})
	ev, err = p.ProbeAddrs(context.Background(), "joao", []netip.Addr{ip, v6})
	if err != nil || ev.Kind != watcher.HTTPDown || strings.Contains(ev.Reason, "::1") {
		t.Fatalf("v6 not allowed = %+v, %v", ev, err)
	}
	if _, err := p.ProbeAddrs(context.Background(), "maria", []netip.Addr{v6}); !errors.Is(err, probe.ErrNotAllowed) {
		t.Fatalf("only a refused address: %v", err)
	}
}
