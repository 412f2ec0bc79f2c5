package routeros_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/routeros"
	"authwatch/watcher/routeros/routerostest"
)

var blockPolicy = watcher.BlockPolicy{AddressLists: []string{"bloqueados"}, ReducedRateLimits: []string{"1M/1M"}}

// checked starts the source with the [blocked] lists, and the state with
// the same policy, as the daemon does.
func checked(t *testing.T, srv *routerostest.Server, mod func(*routeros.Config)) *harness {
	t.Helper()
	h := startWith(t, srv, func(c *routeros.Config) {
		c.BlockedLists = blockPolicy.AddressLists
		*c = routeros.WithRecheckAfter(*c, 300*time.Millisecond)
		if mod != nil {
			mod(c)
		}
	}, func(_ *routeros.Source, st *watcher.State) { st.SetBlockPolicy(blockPolicy) })
	return h
}

func by(b *watcher.Block) string {
	if b == nil {
		return ""
	}
	return b.By
}

// TestSessionCheckBlockedAndPlan: a customer in arrears comes back; the
// router shapes the session with a dynamic queue (as Mikrotik-Rate-Limit
// makes it, max-limit printed in bit/s) and lists its IP in "bloqueados".
// The update that brings the IP carries what the router said, and the
// customer's state is blocked, reduced, with the plan as written.
func TestSessionCheckBlockedAndPlan(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routerostest.Options{})
	srv.Add(routerostest.QueueSimple, "name=<pppoe-maria>", "target=<pppoe-maria>", "max-limit=1000000/1000000", "dynamic=true")
	srv.Add(routerostest.AddressList, "list=clientes", "address=100.64.9.9", "dynamic=true")
	srv.Add(routerostest.AddressList, "list=bloqueados", "address=100.64.9.9", "dynamic=true")
	srv.Add(routerostest.AddressList, "list=bloqueados", "address=100.64.9.99", "disabled=true")
	// Another customer: a queue by IP, no list.
	srv.Add(routerostest.QueueSimple, "name=ana", "target=100.64.9.10/32", "max-limit=150000000/300000000")
	h := checked(t, srv, nil)
	h.listening()

	srv.ConnectSession(routerostest.Session{Name: "maria", CallerID: "18:FD:74:00:00:01", Address: "100.64.9.9"})
	if ev := h.next(watcher.SessionStart, "maria"); ev.Detail.RouterCheck != nil {
		t.Errorf("a session without an address was checked: %+v", ev.Detail.RouterCheck)
	}
	ev := h.next(watcher.SessionUpdate, "maria")
	rc := ev.Detail.RouterCheck
	if rc == nil || rc.Queue != "<pppoe-maria>" || rc.MaxLimit != "1M/1M" || !rc.ListsChecked || !slices.Equal(rc.AddressLists, []string{"bloqueados"}) {
		t.Fatalf("check = %+v", rc)
	}
	c, _ := h.state.Customer("maria")
	if by(c.Blocked) != "address-list bloqueados" || c.Blocked.Source != "routeros:"+routerName || c.Plan != "1M/1M" || by(c.Reduced) != "max-limit 1M/1M" {
		t.Fatalf("maria: plan %q blocked %+v reduced %+v", c.Plan, c.Blocked, c.Reduced)
	}
	// What the check said is stored with the event.
	stored, err := h.store.Events(t.Context(), watcher.Query{Login: "maria"})
	if err != nil {
		t.Fatal(err)
	}
	if last := stored[len(stored)-1]; last.Detail == nil || last.Detail.RouterCheck == nil || last.Detail.RouterCheck.MaxLimit != "1M/1M" {
		t.Fatalf("stored %+v", last.Detail)
	}

	srv.ConnectSession(routerostest.Session{Name: "ana", Address: "100.64.9.10"})
	ev = h.next(watcher.SessionUpdate, "ana")
	if rc := ev.Detail.RouterCheck; rc == nil || rc.MaxLimit != "150M/300M" || rc.Queue != "ana" || !rc.ListsChecked || len(rc.AddressLists) != 0 {
		t.Fatalf("ana's check = %+v", rc)
	}
	if c, _ := h.state.Customer("ana"); c.Blocked != nil || c.Plan != "150M/300M" {
		t.Fatalf("ana: plan %q blocked %+v", c.Plan, c.Blocked)
	}

	// The provider blocks ana while she is online: the router adds her IP
	// a moment after the first check; the second check sees it.
	srv.Add(routerostest.AddressList, "list=bloqueados", "address=100.64.9.10")
	ev = h.next(watcher.SessionUpdate, "ana")
	if !strings.Contains(ev.Reason, "address-list bloqueados") {
		t.Fatalf("recheck = %q %+v", ev.Reason, ev.Detail.RouterCheck)
	}
	if c, _ := h.state.Customer("ana"); by(c.Blocked) != "address-list bloqueados" {
		t.Fatalf("ana after the recheck: %+v", c.Blocked)
	}

	// Maria pays and reboots: the router no longer lists her.
	srv.DisconnectSession("maria", "peer is not responding")
	h.next(watcher.SessionStop, "maria")
	if c, _ := h.state.Customer("maria"); c.Blocked != nil {
		t.Fatalf("maria offline still blocked: %+v", c.Blocked)
	}
	for _, it := range srv.Items(routerostest.AddressList) {
		if it["address"] == "100.64.9.9" && it["list"] == "bloqueados" {
			srv.Remove(routerostest.AddressList, it[".id"])
		}
	}
	srv.ConnectSession(routerostest.Session{Name: "maria", Address: "100.64.9.9"})
	ev = h.next(watcher.SessionUpdate, "maria")
	if c, _ := h.state.Customer("maria"); c.Blocked != nil || ev.Detail.RouterCheck == nil || !ev.Detail.RouterCheck.ListsChecked {
		t.Fatalf("maria paid: blocked %+v, check %+v", c.Blocked, ev.Detail.RouterCheck)
	}
}

// TestSessionCheckBulk: at the first connection many sessions are already
// up; they are checked with one read of each table, not two per session.
func TestSessionCheckBulk(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routerostest.Options{})
	for i := range 20 {
		login, ip := fmt.Sprintf("c%02d", i), fmt.Sprintf("100.64.1.%d", i+1)
		srv.AddSession(routerostest.Session{Name: login, Address: ip})
		srv.Add(routerostest.QueueSimple, "name=<pppoe-"+login+">", "target=<pppoe-"+login+">", "max-limit=300000000/150000000")
		if i%5 == 0 {
			srv.Add(routerostest.AddressList, "list=bloqueados", "address="+ip)
		}
	}
	h := checked(t, srv, nil)
	for range 20 {
		h.next(watcher.SessionUpdate, "")
	}
	for i := range 20 {
		c, _ := h.state.Customer(fmt.Sprintf("c%02d", i))
		if c.Plan != "300M/150M" || (c.Blocked != nil) != (i%5 == 0) {
			t.Errorf("c%02d: plan %q blocked %+v", i, c.Plan, c.Blocked)
		}
	}
}

// TestSessionCheckRefused: a user whose group cannot read the queues still
// gets the sessions and the address-list check; the refusal shows in the
// status and is not asked again on this connection.
func TestSessionCheckRefused(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routerostest.Options{})
	srv.FailCommand("/queue/simple/print", "not enough permissions (9)")
	srv.Add(routerostest.AddressList, "list=bloqueados", "address=100.64.9.9")
	h := checked(t, srv, nil)
	h.listening()
	srv.ConnectSession(routerostest.Session{Name: "maria", Address: "100.64.9.9"})
	ev := h.next(watcher.SessionUpdate, "maria")
	if rc := ev.Detail.RouterCheck; rc == nil || rc.MaxLimit != "" || !slices.Equal(rc.AddressLists, []string{"bloqueados"}) {
		t.Fatalf("check = %+v", rc)
	}
	if st := h.src.Status(); !st.Connected || !strings.Contains(st.LastError, "/queue/simple/print refused by the router: not enough permissions") {
		t.Fatalf("status %+v", st)
	}
	if c, _ := h.state.Customer("maria"); by(c.Blocked) != "address-list bloqueados" {
		t.Fatalf("maria: %+v", c.Blocked)
	}
}
