package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"layeh.com/radius/rfc2866"

	"authwatch/radius/radiustest"
	"authwatch/watcher/routeros/routerostest"
	"authwatch/watcher/watch"
)

// TestRebootWatchEndToEnd drives a watch with real accounting packets, and a
// real HTTP server on loopback standing in for the customer's router, from
// "please reboot" to ok, as an agent's page sees it on the websocket.
func TestRebootWatchEndToEnd(t *testing.T) {
	cpe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html><title>TP-Link Archer C6</title></html>")
	}))
	defer cpe.Close()
	port := cpe.Listener.Addr().(*net.TCPAddr).Port

	cfg := testConfig(t, filepath.Join(t.TempDir(), "authwatch.db"))
	cfg.Probe.Ports, cfg.Probe.Allow = []int{port}, []string{"127.0.0.0/8"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d, _ := start(t, cfg)
	base := "http://" + d.HTTPAddr()

	old := radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "joao", SessionID: "old",
		MAC: "18:FD:74:22:23:B7", IP: netip.MustParseAddr("127.0.0.1")}
	send(t, d, old)

	resp, err := http.Post(base+"/api/watches", "application/json", strings.NewReader(`{"login":"joao","ticket":"2026-123","agent":"Ana","timeout":60}`))
	if err != nil {
		t.Fatal(err)
	}
	var started watch.View
	json.NewDecoder(resp.Body).Decode(&started)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || started.Step != watch.WaitingDrop || started.Before == nil {
		t.Fatalf("start: %s %+v", resp.Status, started.Watch)
	}

	ws, _, err := websocket.DefaultDialer.Dial("ws://"+d.HTTPAddr()+"/ws?login=joao", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var snap struct {
		Type    string       `json:"type"`
		Watches []watch.View `json:"watches"`
	}
	if err := ws.ReadJSON(&snap); err != nil || len(snap.Watches) != 1 || snap.Watches[0].ID != started.ID {
		t.Fatalf("snapshot %+v, %v", snap, err)
	}

	// The customer pulls the plug; the router comes back with a new session.
	stop := old
	stop.Status, stop.TerminateCause = rfc2866.AcctStatusType_Value_Stop, rfc2866.AcctTerminateCause_Value_LostCarrier
	send(t, d, stop)
	back := old
	back.SessionID = "new"
	send(t, d, back)

	var steps []watch.Step
	ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		var msg struct {
			Type  string      `json:"type"`
			Watch *watch.View `json:"watch"`
		}
		if err := ws.ReadJSON(&msg); err != nil {
			t.Fatalf("waiting for the verdict (steps so far %v): %v", steps, err)
		}
		if msg.Type != "watch" {
			continue
		}
		steps = append(steps, msg.Watch.Step)
		if msg.Watch.Verdict != "" {
			if msg.Watch.Verdict != watch.OK || msg.Watch.HTTP == nil || msg.Watch.HTTP.Title != "TP-Link Archer C6" {
				t.Fatalf("verdict %+v", msg.Watch.Watch)
			}
			break
		}
	}
	if steps[len(steps)-1] != watch.Reachable {
		t.Errorf("steps %v", steps)
	}

	resp, err = http.Get(fmt.Sprintf("%s/api/watches/%s/summary?lang=pt-BR&tz=America/Sao_Paulo", base, started.ID))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"protocolo 2026-123", "atendente Ana", "sessão caiu", "equipamento responde em HTTP (TP-Link Archer C6)", "Resultado: reinício concluído"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("summary lacks %q:\n%s", want, body)
		}
	}
}

// TestRebootWatchAuthFailingFromRouterOS: a MikroTik (the fake speaks the
// real API protocol) drops the customer's session, then logs three failed
// logins; the watch ends auth_failing with the router's reason.
func TestRebootWatchAuthFailingFromRouterOS(t *testing.T) {
	router, err := routerostest.New(routerostest.Options{User: "authwatch", Password: "pw", Identity: "bras-norte"})
	if err != nil {
		t.Fatal(err)
	}
	defer router.Close()
	router.ConnectSession(routerostest.Session{Name: "maria", CallerID: "18:FD:74:00:00:01", Address: "100.64.9.9"})

	d, _ := start(t, routerConfig(t, router))
	base := "http://" + d.HTTPAddr()

	// Wait until the router's session is known, then start watching.
	waitOnline(t, base, "maria")
	resp, err := http.Post(base+"/api/watches", "application/json", strings.NewReader(`{"login":"maria","timeout":"4s"}`))
	if err != nil {
		t.Fatal(err)
	}
	var v watch.View
	json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()

	router.DisconnectSession("maria", "peer is not responding")
	for range 3 {
		router.RejectLogin("maria", "18:FD:74:00:00:01")
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		getJSON(t, base+"/api/watches/"+v.ID, &v)
		if v.Verdict != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v.Verdict != watch.AuthFailing || len(v.Rejects) != 3 || !strings.Contains(v.Rejects[0].Reason, "authentication failed") {
		t.Fatalf("watch %+v", v.Watch)
	}
	if !strings.Contains(v.VerdictText[watch.En], "3 rejects") {
		t.Errorf("verdict text %q", v.VerdictText[watch.En])
	}
}
