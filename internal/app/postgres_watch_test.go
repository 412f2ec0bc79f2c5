package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"layeh.com/radius/rfc2866"

	"authwatch/radius/radiustest"
	"authwatch/watcher/sqlstore/pgtest"
	"authwatch/watcher/watch"
)

// TestWatchesAreSharedByInstances: a watch started on A is followed on B —
// B's websocket gets its progress, B's API shows its verdict — and one
// cancelled on B ends on A too, and stays ended.
func TestWatchesAreSharedByInstances(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, _ := start(t, pgConfig(t, dsn))
	b, _ := start(t, pgConfig(t, dsn))
	send(t, a, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "joao", SessionID: "old"})

	startWatch := func(d interface{ HTTPAddr() string }) watch.View {
		t.Helper()
		resp, err := http.Post("http://"+d.HTTPAddr()+"/api/watches", "application/json", strings.NewReader(`{"login":"joao","timeout":60}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v watch.View
		json.NewDecoder(resp.Body).Decode(&v)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("start: %s", resp.Status)
		}
		return v
	}
	waitWatch := func(d interface{ HTTPAddr() string }, id string, ok func(watch.View) bool) watch.View {
		t.Helper()
		var v watch.View
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			getJSON(t, "http://"+d.HTTPAddr()+"/api/watches/"+id, &v)
			if ok(v) {
				return v
			}
		}
		t.Fatalf("watch %s on %s: %+v", id, d.HTTPAddr(), v.Watch)
		return v
	}

	// Started on A, followed on B: B's websocket sees the drop.
	w1 := startWatch(a)
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+b.HTTPAddr()+"/ws?login=joao", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	time.Sleep(2500 * time.Millisecond) // B adopts the watch at its next read of the store
	send(t, a, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Stop, User: "joao", SessionID: "old"})
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var msg struct {
			Type  string      `json:"type"`
			Watch *watch.View `json:"watch"`
		}
		if err := ws.ReadJSON(&msg); err != nil {
			t.Fatalf("B's websocket never showed the watch's drop: %v", err)
		}
		if msg.Type == "watch" && msg.Watch.ID == w1.ID && msg.Watch.Step == watch.Dropped {
			break
		}
	}

	// Cancelled on B: A lets go of it, and it stays cancelled.
	req, _ := http.NewRequest(http.MethodDelete, "http://"+b.HTTPAddr()+"/api/watches/"+w1.ID, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitWatch(a, w1.ID, func(v watch.View) bool { return v.Verdict == watch.Cancelled })
	// A later event would have moved A's copy on; it must not revive it.
	send(t, a, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "joao", SessionID: "new"})
	time.Sleep(2500 * time.Millisecond)
	if v := waitWatch(b, w1.ID, func(v watch.View) bool { return v.Verdict != "" }); v.Verdict != watch.Cancelled {
		t.Fatalf("revived: %+v", v.Watch)
	}
}
