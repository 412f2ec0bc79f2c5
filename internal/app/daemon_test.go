package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"layeh.com/radius/rfc2866"

	"authwatch/internal/app"
	"authwatch/internal/config"
	"authwatch/radius/radiustest"
	"authwatch/watcher"
)

const secret = "s3cret-for-tests"

func testConfig(t *testing.T, dbPath string) *config.Config {
	t.Helper()
	c, err := config.Parse(fmt.Sprintf(`
[http]
listen = "127.0.0.1:0"
auth = false
[store]
path = %q
checkpoint_interval = "1h"
[radius]
listen = "127.0.0.1:0"
[[nas]]
name = "bras-centro"
address = "127.0.0.0/8"
secret = %q
`, dbPath, secret))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// start runs a daemon and returns it with a function that stops it and waits.
func start(t *testing.T, cfg *config.Config) (*app.Daemon, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := app.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("daemon did not stop")
		}
	}
	t.Cleanup(stop)
	return d, stop
}

func send(t *testing.T, d *app.Daemon, a radiustest.Acct) {
	t.Helper()
	c, err := radiustest.NewClient(d.RADIUSAddr(), []byte(secret), radiustest.ClientOptions{Retry: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := a.Packet([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exchange(context.Background(), p); err != nil {
		t.Fatalf("%s for %s not acked: %v", a.Status, a.User, err)
	}
}

type wsMessage struct {
	Type   string           `json:"type"`
	Event  *watcher.Event   `json:"event"`
	Events []watcher.Event  `json:"events"`
	State  *json.RawMessage `json:"state"`
}

func TestAccountingReachesTheWebsocketAndSurvivesRestart(t *testing.T) {
	cfg := testConfig(t, filepath.Join(t.TempDir(), "authwatch.db"))
	d, stop := start(t, cfg)

	ws, _, err := websocket.DefaultDialer.Dial("ws://"+d.HTTPAddr()+"/ws?login=joao", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var snap wsMessage
	if err := ws.ReadJSON(&snap); err != nil || snap.Type != "snapshot" {
		t.Fatalf("first message %+v, %v", snap, err)
	}

	acct := radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "joao", SessionID: "81a0000f",
		MAC: "18-fd-74-22-23-b7", IP: netip.MustParseAddr("100.64.3.7"), NASPortID: "vlan100"}
	send(t, d, acct)
	send(t, d, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "maria", SessionID: "1"})

	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var msg wsMessage
	if err := ws.ReadJSON(&msg); err != nil {
		t.Fatal(err)
	}
	if msg.Type != "event" || msg.Event.Kind != watcher.SessionStart || msg.Event.Login != "joao" ||
		msg.Event.MAC != "18:FD:74:22:23:B7" || msg.Event.IP != "100.64.3.7" || msg.Event.NAS != "bras-centro" {
		t.Fatalf("event %+v", msg.Event)
	}
	ws.Close()

	// The API and the lookup see it too.
	var cust watcher.Customer
	getJSON(t, "http://"+d.HTTPAddr()+"/api/customers/joao", &cust)
	if !cust.Online || len(cust.Sessions) != 1 || cust.Sessions[0].IP != "100.64.3.7" {
		t.Fatalf("state %+v", cust)
	}
	stop()

	// A restart on the same file knows joao is online, and new events follow
	// the old ones.
	d2, _ := start(t, cfg)
	getJSON(t, "http://"+d2.HTTPAddr()+"/api/customers/joao", &cust)
	if !cust.Online || len(cust.Sessions) != 1 || cust.Sessions[0].ID != "81a0000f" {
		t.Fatalf("after restart %+v", cust)
	}
	stopAcct := acct
	stopAcct.Status, stopAcct.TerminateCause = rfc2866.AcctStatusType_Value_Stop, rfc2866.AcctTerminateCause_Value_LostCarrier
	send(t, d2, stopAcct)
	var evs struct {
		Events []watcher.Event `json:"events"`
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		getJSON(t, "http://"+d2.HTTPAddr()+"/api/customers/joao/events", &evs)
		if len(evs.Events) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(evs.Events) != 2 || evs.Events[1].Kind != watcher.SessionStop || evs.Events[1].Reason != "Lost-Carrier" ||
		evs.Events[1].Seq <= evs.Events[0].Seq {
		t.Fatalf("events after restart %+v", evs.Events)
	}
	getJSON(t, "http://"+d2.HTTPAddr()+"/api/customers/joao", &cust)
	if cust.Online || cust.LastStop == nil || cust.LastStop.Reason != "Lost-Carrier" {
		t.Fatalf("after stop %+v", cust)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func TestDemoRuns(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- app.Demo(ctx, app.DemoOptions{HTTP: "127.0.0.1:0", Customers: 5, Dir: t.TempDir()}, out, io.Discard)
	}()
	// The demo prints its URL, then the simulated NAS brings customers online.
	var url string
	deadline := time.Now().Add(10 * time.Second)
	for url == "" && time.Now().Before(deadline) {
		fmt.Sscanf(out.after("Open "), "%s", &url)
		time.Sleep(20 * time.Millisecond)
	}
	if url == "" {
		t.Fatalf("no URL printed: %q", out.String())
	}
	var cust watcher.Customer
	client := demoLogin(t, out, url) // the demo has accounts: log in as its admin
	for time.Now().Before(deadline) {
		resp, err := client.Get(url + "api/customers/demo.reboot")
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&cust)
			resp.Body.Close()
		}
		if cust.Online {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !cust.Online {
		t.Fatalf("demo customer never came online: %+v", cust)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("demo did not stop on cancel")
	}
}
