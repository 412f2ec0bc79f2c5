package watch_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/probe"
	"authwatch/watcher/watch"
)

// routerSession is what a RouterOS source records of joao's sessions on
// bras1: the session appears without an address, then gets it, with what
// the router says of it (rc).
func routerSession(kind watcher.Kind, id, ip string, rc *watcher.RouterCheck) watcher.Event {
	return watcher.Event{Login: "joao", Kind: kind, Source: "routeros:bras1", NAS: "bras1", SessionID: id, MAC: macOld, IP: ip,
		Detail: &watcher.Detail{Service: "pppoe", RouterCheck: rc}}
}

var blockedCheck = &watcher.RouterCheck{Queue: "<pppoe-joao>", MaxLimit: "1M/1M", ListsChecked: true, AddressLists: []string{"bloqueados"}}

// TestWatchBlockedByRouter: the customer reboots and comes back through a
// RouterOS router that lists its IP in "bloqueados": the watch ends
// online_blocked, probing or not, and whichever source reported the
// session first.
func TestWatchBlockedByRouter(t *testing.T) {
	silent := closedPort(t)
	for _, tc := range []struct {
		name  string
		port  int // 0: no probing
		comes []watcher.Event
	}{
		{"probing", silent, []watcher.Event{
			routerSession(watcher.SessionStart, "new", "", nil),
			routerSession(watcher.SessionUpdate, "new", "127.0.0.1", blockedCheck),
		}},
		{"not probing, the address comes later", 0, []watcher.Event{
			routerSession(watcher.SessionStart, "new", "", nil),
			routerSession(watcher.SessionUpdate, "new", "127.0.0.1", blockedCheck),
		}},
		// RADIUS accounting reports the session first, with its IP; the
		// router's report of the same session carries the check.
		{"radius first", silent, []watcher.Event{
			session(watcher.SessionStart, "new", "127.0.0.1"),
			routerSession(watcher.SessionStart, "new", "127.0.0.1", blockedCheck),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newManagerRig(t, filepath.Join(t.TempDir(), "m.db"), tc.port)
			r.state.SetBlockPolicy(watcher.BlockPolicy{AddressLists: []string{"bloqueados"}})
			r.commit(routerSession(watcher.SessionStart, "old", "127.0.0.1", &watcher.RouterCheck{MaxLimit: "150M/300M", ListsChecked: true}))
			v, err := r.m.Start(context.Background(), watch.StartRequest{Login: "joao", Timeout: watch.Duration(30 * time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			r.commit(routerSession(watcher.SessionStop, "old", "127.0.0.1", nil))
			r.commit(tc.comes...)
			done := r.waitVerdict(v.ID, watch.OnlineBlocked)
			if done.Blocked == nil || done.Blocked.By != "address-list bloqueados" || done.After == nil || done.After.IP != "127.0.0.1" {
				t.Fatalf("ended %+v blocked %+v", done.Watch, done.Blocked)
			}
			if !strings.Contains(done.VerdictText[watch.PtBR], "bloqueado (address-list bloqueados) — verificar situação financeira") {
				t.Errorf("verdict text %q", done.VerdictText[watch.PtBR])
			}
		})
	}
}

// TestWatchNotBlockedAfterPaying: the previous session was in the block; the
// new one is not. What the router said of the old session is not the new
// session's verdict.
func TestWatchNotBlockedAfterPaying(t *testing.T) {
	r := newManagerRig(t, filepath.Join(t.TempDir(), "m.db"), 0)
	r.state.SetBlockPolicy(watcher.BlockPolicy{AddressLists: []string{"bloqueados"}})
	r.commit(routerSession(watcher.SessionStart, "old", "127.0.0.1", blockedCheck))
	if c, _ := r.state.Customer("joao"); c.Blocked == nil {
		t.Fatal("not blocked to begin with")
	}
	v, err := r.m.Start(context.Background(), watch.StartRequest{Login: "joao", Timeout: watch.Duration(30 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	r.commit(routerSession(watcher.SessionStop, "old", "127.0.0.1", nil),
		routerSession(watcher.SessionStart, "new", "", nil),
		routerSession(watcher.SessionUpdate, "new", "127.0.0.1", &watcher.RouterCheck{MaxLimit: "150M/300M", ListsChecked: true}))
	done := r.waitVerdict(v.ID, watch.OK)
	if done.Blocked != nil || done.After.IP != "127.0.0.1" {
		t.Fatalf("ended %+v", done.Watch)
	}
}

// TestWatchProbesIPv6: the CPE answers only on the IPv6 address the NAS
// reported (Framed-IPv6-Address); the watch's probe finds it there after the
// IPv4 address does not answer.
func TestWatchProbesIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<title>ONU F670L</title>"))
	}))
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	prober := probe.New(probe.Config{Ports: []int{port}, Timeout: time.Second, MinInterval: time.Millisecond,
		Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	r := newManagerRigProber(t, filepath.Join(t.TempDir(), "m.db"), prober)

	r.commit(session(watcher.SessionStart, "old", "127.0.0.1"))
	v, err := r.m.Start(context.Background(), watch.StartRequest{Login: "joao", Timeout: watch.Duration(30 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	back := session(watcher.SessionStart, "new", "127.0.0.1")
	// The delegated prefix is the customer's LAN: never probed.
	back.Detail = &watcher.Detail{IPv6Address: "::1", DelegatedPrefix: "2804:db8:100::/56"}
	r.commit(session(watcher.SessionStop, "old", "127.0.0.1"), back)
	done := r.waitVerdict(v.ID, watch.OK)
	if done.HTTP == nil || done.HTTP.Title != "ONU F670L" || done.HTTP.URL != "http://[::1]:"+strconv.Itoa(port)+"/" || done.After.IPv6 != "::1" {
		t.Fatalf("ended %+v http %+v", done.Watch, done.HTTP)
	}

	// The "test HTTP access" button tries the IPv6 address too.
	ev, err := r.m.ProbeNow(context.Background(), "joao")
	if err != nil || ev.Kind != watcher.HTTPUp || ev.IP != "::1" {
		t.Fatalf("probe now = %+v, %v", ev, err)
	}
}

// closedPort returns a loopback port nobody listens on: a CPE that never
// answers.
func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}
