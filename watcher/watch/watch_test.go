package watch_test

import (
	"strings"
	"testing"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/watch"
)

var t0 = time.Date(2026, 11, 25, 14, 2, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

const (
	macOld = "18:FD:74:22:23:B7"
	macNew = "E4:8D:8C:00:00:01"
)

var online = watcher.Customer{Login: "joao", Online: true, LastSeq: 10, Sessions: []watcher.Session{
	{NAS: "bras1", ID: "old", MAC: macOld, IP: "100.64.3.7", Start: t0.Add(-48 * time.Hour)},
}}

var offline = watcher.Customer{Login: "joao", LastSeq: 10, LastStop: &watcher.Stop{At: t0.Add(-time.Hour), Reason: "Lost-Carrier"}}

type evs []watcher.Event

func stop(sec int, id string) watcher.Event {
	return watcher.Event{At: at(sec), Login: "joao", Kind: watcher.SessionStop, Source: "radius", NAS: "bras1", SessionID: id, Reason: "Lost-Carrier"}
}
func start(sec int, id, mac string) watcher.Event {
	return watcher.Event{At: at(sec), Login: "joao", Kind: watcher.SessionStart, Source: "radius", NAS: "bras1", SessionID: id, MAC: mac, IP: "100.64.3.9"}
}
func reject(sec int, why string) watcher.Event {
	return watcher.Event{At: at(sec), Login: "joao", Kind: watcher.AuthReject, Source: "proxy", NAS: "bras1", Reason: why}
}
func accept(sec int) watcher.Event {
	return watcher.Event{At: at(sec), Login: "joao", Kind: watcher.AuthAccept, Source: "proxy", NAS: "bras1"}
}
func httpUp(sec int) watcher.Event {
	return watcher.Event{At: at(sec), Login: "joao", Kind: watcher.HTTPUp, Source: "probe", Reason: "200 OK",
		Detail: &watcher.Detail{HTTPTitle: "Archer C6", URL: "http://100.64.3.9/"}}
}
func httpDown(sec int) watcher.Event {
	return watcher.Event{At: at(sec), Login: "joao", Kind: watcher.HTTPDown, Source: "probe", Reason: "80: timeout after 3s"}
}

func TestVerdicts(t *testing.T) {
	tests := []struct {
		name     string
		customer watcher.Customer
		probing  bool
		events   evs
		expire   bool // run past the deadline
		want     watch.Verdict
		wantStep watch.Step
		rejects  int
	}{
		{name: "ok: drop, reject, accept, online, reachable", customer: online, probing: true,
			events: evs{stop(30, "old"), reject(40, "wrong password"), accept(60), start(61, "new", macOld), httpDown(62), httpUp(70)},
			want:   watch.OK, wantStep: watch.Reachable, rejects: 1},
		{name: "ok without probing ends at online", customer: online, probing: false,
			events: evs{stop(30, "old"), start(61, "new", macOld)},
			want:   watch.OK, wantStep: watch.Online},
		{name: "auth failing", customer: online, probing: true,
			events: evs{stop(30, "old"), reject(40, "wrong password"), reject(50, "wrong password"), reject(60, "wrong password")},
			expire: true, want: watch.AuthFailing, wantStep: watch.Authenticating, rejects: 3},
		{name: "no attempt after the drop", customer: online, probing: true,
			events: evs{stop(30, "old")}, expire: true, want: watch.NoAttempt, wantStep: watch.Dropped},
		{name: "no attempt from an already offline customer", customer: offline, probing: true,
			expire: true, want: watch.NoAttempt, wantStep: watch.Dropped},
		{name: "accepted but no session", customer: online, probing: true,
			events: evs{stop(30, "old"), accept(40)}, expire: true, want: watch.NoAttempt, wantStep: watch.Authenticating},
		{name: "online but unreachable", customer: online, probing: true,
			events: evs{stop(30, "old"), start(61, "new", macOld), httpDown(62), httpDown(70)},
			expire: true, want: watch.OnlineUnreachable, wantStep: watch.Online},
		{name: "mac changed", customer: online, probing: true,
			events: evs{stop(30, "old"), start(61, "new", macNew), httpUp(70)},
			want:   watch.MACChanged, wantStep: watch.Reachable},
		{name: "mac changed and unreachable says mac changed", customer: online, probing: true,
			events: evs{stop(30, "old"), start(61, "new", macNew)},
			expire: true, want: watch.MACChanged, wantStep: watch.Online},
		{name: "never dropped", customer: online, probing: true,
			expire: true, want: watch.NoDrop, wantStep: watch.WaitingDrop},
		{name: "new session before the stale one closed", customer: online, probing: true,
			events: evs{start(20, "new", macOld), stop(90, "old"), httpUp(95)},
			want:   watch.OK, wantStep: watch.Reachable},
		{name: "nas reboot counts as the drop", customer: online, probing: false,
			events: evs{{At: at(5), Kind: watcher.NASUp, Source: "radius", NAS: "bras1", Reason: "Accounting-On"}, start(40, "new", macOld)},
			want:   watch.OK, wantStep: watch.Online},
		{name: "other login's events are ignored", customer: online, probing: true,
			events: evs{{At: at(5), Login: "maria", Kind: watcher.SessionStop, Source: "radius", NAS: "bras1", SessionID: "old"}},
			expire: true, want: watch.NoDrop, wantStep: watch.WaitingDrop},
		{name: "interim of the old session is not a new one", customer: online, probing: true,
			events: evs{{At: at(5), Login: "joao", Kind: watcher.SessionUpdate, Source: "radius", NAS: "bras1", SessionID: "old", IP: "100.64.3.7"}},
			expire: true, want: watch.NoDrop, wantStep: watch.WaitingDrop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := watch.Begin("w1", tt.customer, t0, 5*time.Minute, tt.probing)
			for i, ev := range tt.events {
				ev.Seq = int64(11 + i)
				w.Apply(ev)
			}
			if tt.expire {
				if !w.Active() {
					t.Fatalf("ended before the deadline with %s", w.Verdict)
				}
				if w.Expire(t0.Add(time.Minute)) {
					t.Fatal("expired before its deadline")
				}
				if !w.Expire(t0.Add(5 * time.Minute)) {
					t.Fatal("did not expire at its deadline")
				}
			}
			if w.Verdict != tt.want || w.Step != tt.wantStep || len(w.Rejects) != tt.rejects {
				t.Fatalf("verdict %q step %q rejects %d; want %q %q %d (marks %+v)", w.Verdict, w.Step, len(w.Rejects), tt.want, tt.wantStep, tt.rejects, w.Marks)
			}
			// Marks are in time order and start with the watch.
			for i := 1; i < len(w.Marks); i++ {
				if w.Marks[i].At.Before(w.Marks[i-1].At) {
					t.Errorf("marks out of order: %+v", w.Marks)
				}
			}
		})
	}
}

func TestEndedWatchIgnoresEvents(t *testing.T) {
	w := watch.Begin("w1", online, t0, time.Minute, false)
	w.Cancel(at(1))
	if w.Verdict != watch.Cancelled || w.Apply(stop(2, "old")) || w.Expire(at(120)) {
		t.Fatalf("cancelled watch changed: %+v", w)
	}
}

func TestReplayedEventsAreSkipped(t *testing.T) {
	w := watch.Begin("w1", online, t0, time.Minute, true)
	ev := stop(2, "old")
	ev.Seq = 20
	if !w.Apply(ev) {
		t.Fatal("first application did nothing")
	}
	r := reject(3, "x")
	r.Seq = 20 // replayed after a restart: same seq
	if w.Apply(r) || len(w.Rejects) != 0 {
		t.Fatal("an event at or below LastSeq was applied")
	}
}

func TestNewSessionDropsAgain(t *testing.T) {
	w := watch.Begin("w1", online, t0, time.Minute, true)
	for i, ev := range (evs{stop(1, "old"), start(10, "new", macOld), stop(20, "new"), start(30, "newer", macOld), httpUp(31)}) {
		ev.Seq = int64(20 + i)
		w.Apply(ev)
	}
	if w.Verdict != watch.OK || w.After == nil || w.After.ID != "newer" || len(w.Notes) == 0 {
		t.Fatalf("%+v", w)
	}
}

func TestMultipleLoginsNamesTheStaleSession(t *testing.T) {
	w := watch.Begin("w1", online, t0, time.Minute, true)
	// The router redials while the concentrator still holds the old session.
	for i, ev := range (evs{reject(20, "already online — an old session is still open (Multiple logins)"), reject(30, "You are already logged in - access denied")}) {
		ev.Seq = int64(20 + i)
		w.Apply(ev)
	}
	w.Expire(at(60))
	if w.Verdict != watch.AuthFailing || !w.MultipleLogins || w.Stale == nil || w.Stale.ID != "old" {
		t.Fatalf("%+v", w)
	}
	for lang, want := range map[watch.Lang]string{watch.PtBR: "sessão antiga ainda está aberta", watch.En: "end the old session (on bras1"} {
		if got := w.VerdictText(lang, at(60)); !strings.Contains(got, want) {
			t.Errorf("%s: %q lacks %q", lang, got, want)
		}
	}
	// Once the old session is closed it is no longer the stale one.
	w2 := watch.Begin("w2", online, t0, time.Minute, true)
	for i, ev := range (evs{reject(20, "Multiple logins"), stop(25, "old")}) {
		ev.Seq = int64(20 + i)
		w2.Apply(ev)
	}
	if w2.Stale != nil {
		t.Errorf("stale after the stop: %+v", w2.Stale)
	}
}

func TestAddressArrivesAfterTheStart(t *testing.T) {
	w := watch.Begin("w1", online, t0, time.Minute, true)
	noIP := start(10, "new", macOld)
	noIP.IP = ""
	withIP := noIP
	withIP.Kind, withIP.IP, withIP.At = watcher.SessionUpdate, "100.64.3.10", at(12)
	for i, ev := range (evs{stop(5, "old"), noIP, withIP}) {
		ev.Seq = int64(20 + i)
		w.Apply(ev)
	}
	if w.Step != watch.Online || w.After == nil || w.After.IP != "100.64.3.10" {
		t.Fatalf("%+v after %+v", w, w.After)
	}
}
