package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"authwatch/internal/config"
	"authwatch/watcher"
	"authwatch/watcher/routeros/routerostest"
	"authwatch/watcher/watch"
)

// TestRebootWatchBlockedByRouterOS: a customer in arrears reboots. The
// MikroTik (the fake speaks the real API) brings the new session up with a
// dynamic queue at the reduced speed and the session's IP in the
// "bloqueados" address-list, as RouterOS does for a RADIUS accept with
// Mikrotik-Rate-Limit and Mikrotik-Address-List. The watch ends
// online_blocked, and the customer's state shows the block and the plan.
func TestRebootWatchBlockedByRouterOS(t *testing.T) {
	router, err := routerostest.New(routerostest.Options{User: "authwatch", Password: "pw", Identity: "bras-norte"})
	if err != nil {
		t.Fatal(err)
	}
	defer router.Close()
	router.ConnectSession(routerostest.Session{Name: "maria", CallerID: "18:FD:74:00:00:01", Address: "100.64.9.9"})

	cfg := routerConfig(t, router)
	cfg.Blocked = config.Blocked{AddressLists: []string{"bloqueados"}, ReducedRateLimits: []string{"1M/1M"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d, _ := start(t, cfg)
	base := "http://" + d.HTTPAddr()

	customer := func() watcher.Customer {
		var c watcher.Customer
		getJSON(t, base+"/api/customers/maria", &c)
		return c
	}
	waitOnline(t, base, "maria")
	if c := customer(); c.Blocked != nil {
		t.Fatalf("blocked before the block: %+v", c.Blocked)
	}
	resp, err := http.Post(base+"/api/watches", "application/json", strings.NewReader(`{"login":"maria","timeout":"20s"}`))
	if err != nil {
		t.Fatal(err)
	}
	var v watch.View
	json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()

	router.DisconnectSession("maria", "peer is not responding")
	// The provider's system blocked maria meanwhile: her next session
	// comes up shaped to 1M/1M and listed in "bloqueados".
	router.Add(routerostest.QueueSimple, "name=<pppoe-maria>", "target=<pppoe-maria>", "max-limit=1000000/1000000", "dynamic=true")
	router.Add(routerostest.AddressList, "list=bloqueados", "address=100.64.9.9", "dynamic=true")
	router.ConnectSession(routerostest.Session{Name: "maria", CallerID: "18:FD:74:00:00:01", Address: "100.64.9.9"})

	deadline := time.Now().Add(15 * time.Second)
	for v.Verdict == "" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		getJSON(t, base+"/api/watches/"+v.ID, &v)
	}
	if v.Verdict != watch.OnlineBlocked || v.After == nil || v.After.IP != "100.64.9.9" ||
		!strings.Contains(v.VerdictText[watch.En], "authenticated but blocked (address-list bloqueados) — check billing") {
		t.Fatalf("watch %+v %q", v.Watch, v.VerdictText)
	}
	c := customer()
	if c.Blocked == nil || c.Blocked.By != "address-list bloqueados" || c.Blocked.Source != "routeros:bras-norte" ||
		c.Plan != "1M/1M" || c.Reduced == nil || c.Reduced.By != "max-limit 1M/1M" {
		t.Fatalf("state: plan %q blocked %+v reduced %+v", c.Plan, c.Blocked, c.Reduced)
	}
}
