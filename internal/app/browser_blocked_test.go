package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"layeh.com/radius/rfc2866"

	"authwatch/internal/browser"
	"authwatch/internal/config"
	"authwatch/radius/radiustest"
	"authwatch/watcher/routeros/routerostest"
	"authwatch/watcher/watch"
)

// TestPageShowsBlockPlanAndIPv6: the Now panel of a customer that a
// MikroTik put in the "bloqueados" address-list, at the reduced speed, shows
// the block and the reduction as badges with what to do, and the plan; a
// reboot watch ends "authenticated, but blocked" with the next step. A
// dual-stack customer's page shows the IPv6 prefixes.
func TestPageShowsBlockPlanAndIPv6(t *testing.T) {
	chromium := radiustest.NeedCommand(t, "chromium")
	router, err := routerostest.New(routerostest.Options{User: "authwatch", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer router.Close()
	router.Add(routerostest.QueueSimple, "name=<pppoe-maria>", "target=<pppoe-maria>", "max-limit=1000000/1000000", "dynamic=true")
	router.Add(routerostest.AddressList, "list=bloqueados", "address=100.64.9.9", "dynamic=true")

	cfg := testConfig(t, filepath.Join(t.TempDir(), "authwatch.db"))
	cfg.RouterOS = []config.RouterOS{{Name: "bras-norte", Address: router.Addr(), User: "authwatch", Password: "pw", PollInterval: config.Duration(time.Second)}}
	cfg.Blocked = config.Blocked{AddressLists: []string{"bloqueados"}, ReducedRateLimits: []string{"1M/1M"}}
	cfg.Probe.Enabled = false
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d, _ := start(t, cfg)
	base := "http://" + d.HTTPAddr() + "/"
	send(t, d, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "joao", SessionID: "v6",
		IP: netip.MustParseAddr("100.64.3.7"), IPv6Prefix: netip.MustParsePrefix("2804:db8:1:2::/64"),
		DelegatedPrefix: netip.MustParsePrefix("2804:db8:100::/56")})

	bctx, cancel, err := browser.New(context.Background(), browser.Options{ExecPath: chromium, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	p := page{t, bctx}
	watchPageErrors(t, bctx)
	if err := browser.Emulate(bctx, 1366, 768, "America/Sao_Paulo", "pt_BR"); err != nil {
		t.Fatal(err)
	}

	p.do(chromedp.Navigate(base + "#/c/joao"))
	p.wait("IPv6 prefixes", has("#ipv6", "2804:db8:1:2::/64", "2804:db8:100::/56"))

	// Maria is online, blocked: the router says so when she comes up.
	router.ConnectSession(routerostest.Session{Name: "maria", CallerID: "18:FD:74:00:00:01", Address: "100.64.9.9"})
	p.do(chromedp.Navigate(base + "#/c/maria"))
	p.wait("block badge", `document.querySelector('#status[data-status="online"]') && `+
		has("#blocked", "BLOQUEADO — address-list bloqueados", "verificar situação financeira"))
	p.wait("reduced badge", has("#reduced", "REDUZIDO — max-limit 1M/1M"))
	p.wait("plan, with which way is which", has("#plan", "↓ 1M download", "↑ 1M upload"))

	// A reboot: she comes back blocked.
	resp, err := http.Post(base+"api/watches", "application/json", strings.NewReader(`{"login":"maria","timeout":"30s"}`))
	if err != nil {
		t.Fatal(err)
	}
	var v watch.View
	json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	p.wait("watch running", `document.querySelector('#watch[data-state="running"]')`)
	router.DisconnectSession("maria", "peer is not responding")
	p.wait("offline: the router's block is not claimed for a session that is gone", `document.querySelector('#status[data-status="offline"]') && !document.querySelector("#blocked")`)
	router.ConnectSession(routerostest.Session{Name: "maria", CallerID: "18:FD:74:00:00:01", Address: "100.64.9.9"})
	p.wait("verdict online_blocked", `document.querySelector('#watch[data-verdict="online_blocked"]')`)
	p.wait("verdict and next step", has("#verdict", "Autenticou, mas está bloqueado", "bloqueado (address-list bloqueados)", "verificar situação financeira"))

	p.do(chromedp.Click(chromedp.ID("lang")))
	p.wait("English", has("#blocked", "BLOCKED — address-list bloqueados", "check billing")+" && "+has("#verdict", "Authenticated, but blocked", "check billing"))
}
