package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
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

	customer := func() watcher.Customer { return customerAt(t, base, "maria") }
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

// TestReloadBlocked: [blocked] is applied by a reload. Before it, a session
// in the "bloqueados" address-list is just online; after it, the router is
// asked again (its source restarted with the lists) and the next session in
// the list shows blocked, without the customer's session being reported
// stopped by the restart.
func TestReloadBlocked(t *testing.T) {
	router, err := routerostest.New(routerostest.Options{User: "authwatch", Password: "pw", Identity: "bras-norte"})
	if err != nil {
		t.Fatal(err)
	}
	defer router.Close()
	router.Add(routerostest.AddressList, "list=bloqueados", "address=100.64.9.9", "dynamic=true")
	router.ConnectSession(routerostest.Session{Name: "maria", CallerID: "18:FD:74:00:00:01", Address: "100.64.9.9"})

	dir := t.TempDir()
	path := filepath.Join(dir, "authwatch.toml")
	base := fmt.Sprintf("[http]\nlisten = \"127.0.0.1:0\"\nauth = false\n[store]\npath = %q\n[radius]\nlisten = \"127.0.0.1:0\"\n[probe]\nenabled = false\n"+
		"[[nas]]\nname = \"bras-centro\"\naddress = \"127.0.0.1\"\nsecret = %q\n"+
		"[[routeros]]\nname = \"bras-norte\"\naddress = %q\nuser = \"authwatch\"\npassword = \"pw\"\npoll_interval = \"1s\"\n",
		filepath.Join(dir, "authwatch.db"), secret, router.Addr())
	if err := os.WriteFile(path, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := start(t, cfg)
	api := "http://" + d.HTTPAddr()
	customer := func() watcher.Customer { return customerAt(t, api, "maria") }
	waitOnline(t, api, "maria")
	if c := customer(); c.Blocked != nil {
		t.Fatalf("blocked with no [blocked] lists: %+v", c.Blocked)
	}

	blocked := base + "[blocked]\naddress_lists = [\"bloqueados\"]\n"
	if err := os.WriteFile(path, []byte(blocked), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(path); err != nil {
		t.Fatal(err)
	}
	router.DisconnectSession("maria", "peer is not responding")
	router.ConnectSession(routerostest.Session{Name: "maria", CallerID: "18:FD:74:00:00:01", Address: "100.64.9.9"})
	deadline := time.Now().Add(10 * time.Second)
	c := customer()
	for (c.Blocked == nil || !c.Online) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		c = customer()
	}
	if c.Blocked == nil || c.Blocked.By != "address-list bloqueados" || c.Blocked.Source != "routeros:bras-norte" {
		t.Fatalf("after the reload: online %v blocked %+v", c.Online, c.Blocked)
	}
	// One stop (the disconnect), none from the router's restart.
	var evs struct{ Events []watcher.Event }
	getJSON(t, api+"/api/customers/maria/events", &evs)
	stops := 0
	for _, ev := range evs.Events {
		if ev.Kind == watcher.SessionStop {
			stops++
		}
	}
	if stops != 1 {
		t.Errorf("%d stops stored, want 1: %+v", stops, evs.Events)
	}
}
