package watcher_test

import (
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"

	"authwatch/watcher"
)

var t0 = time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func sess(kind watcher.Kind, login, nas, id string, sec int) watcher.Event {
	return watcher.Event{At: at(sec), Login: login, Kind: kind, Source: "radius", NAS: nas, SessionID: id, IP: "100.64.0.9", MAC: "AA:BB:CC:DD:EE:FF"}
}

func TestStateApply(t *testing.T) {
	stop := sess(watcher.SessionStop, "joao", "bras1", "s1", 60)
	stop.Reason = "Lost-Carrier"
	reject := watcher.Event{At: at(70), Login: "joao", Kind: watcher.AuthReject, Source: "proxy", NAS: "bras1", Reason: "wrong password"}
	interim := sess(watcher.SessionUpdate, "joao", "bras1", "s9", 100)
	interim.Detail = &watcher.Detail{SessionTime: 40, InputOctets: 10}

	tests := []struct {
		name     string
		events   []watcher.Event
		login    string
		online   bool
		since    time.Time
		sessions []string // NAS/ID of open sessions
		affected []string // logins the last event changed
		check    func(t *testing.T, c watcher.Customer)
	}{
		{name: "start", events: []watcher.Event{sess(watcher.SessionStart, "joao", "bras1", "s1", 0)},
			login: "joao", online: true, since: at(0), sessions: []string{"bras1/s1"}, affected: []string{"joao"}},
		{name: "start then stop", events: []watcher.Event{sess(watcher.SessionStart, "joao", "bras1", "s1", 0), stop},
			login: "joao", online: false, since: at(60), affected: []string{"joao"},
			check: func(t *testing.T, c watcher.Customer) {
				if c.LastStop == nil || c.LastStop.Reason != "Lost-Carrier" {
					t.Errorf("last stop %+v", c.LastStop)
				}
			}},
		{name: "stale session and new one: still online", events: []watcher.Event{
			sess(watcher.SessionStart, "joao", "bras1", "s1", 0),
			sess(watcher.SessionStart, "joao", "bras1", "s2", 30),
			stop},
			login: "joao", online: true, since: at(0), sessions: []string{"bras1/s2"}, affected: []string{"joao"}},
		{name: "same id on two NAS are two sessions", events: []watcher.Event{
			sess(watcher.SessionStart, "joao", "bras1", "s1", 0),
			sess(watcher.SessionStart, "joao", "bras2", "s1", 1)},
			login: "joao", online: true, since: at(0), sessions: []string{"bras1/s1", "bras2/s1"}, affected: []string{"joao"}},
		{name: "interim for a session we missed starts it at its age", events: []watcher.Event{interim},
			login: "joao", online: true, since: at(60), sessions: []string{"bras1/s9"}, affected: []string{"joao"}},
		{name: "reject is the last auth", events: []watcher.Event{stop, reject},
			login: "joao", online: false, since: at(60), affected: []string{"joao"},
			check: func(t *testing.T, c watcher.Customer) {
				if c.LastAuth == nil || c.LastAuth.Accepted || c.LastAuth.Reason != "wrong password" {
					t.Errorf("last auth %+v", c.LastAuth)
				}
			}},
		{name: "accounting-on closes every session of that NAS", events: []watcher.Event{
			sess(watcher.SessionStart, "joao", "bras1", "s1", 0),
			sess(watcher.SessionStart, "maria", "bras1", "s2", 0),
			sess(watcher.SessionStart, "ana", "bras2", "s3", 0),
			{At: at(90), Kind: watcher.NASUp, Source: "radius", NAS: "bras1", Reason: "Accounting-On"}},
			login: "maria", online: false, since: at(90), affected: []string{"joao", "maria"}},
		{name: "http up", events: []watcher.Event{{At: at(5), Login: "joao", Kind: watcher.HTTPUp, Source: "probe", Reason: "200 OK",
			Detail: &watcher.Detail{URL: "http://100.64.0.9/", HTTPTitle: "Archer C6"}}},
			login: "joao", affected: []string{"joao"},
			check: func(t *testing.T, c watcher.Customer) {
				if c.LastHTTP == nil || !c.LastHTTP.Up || c.LastHTTP.Title != "Archer C6" {
					t.Errorf("last http %+v", c.LastHTTP)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := watcher.NewState()
			var affected []string
			for i, ev := range tt.events {
				ev.Seq = int64(i + 1)
				affected = s.Apply(ev)
			}
			if !reflect.DeepEqual(affected, tt.affected) {
				t.Errorf("affected %v, want %v", affected, tt.affected)
			}
			c, _ := s.Customer(tt.login)
			if c.Online != tt.online || !c.Since.Equal(tt.since) {
				t.Errorf("online=%v since=%v, want %v %v", c.Online, c.Since, tt.online, tt.since)
			}
			var got []string
			for _, ss := range c.Sessions {
				got = append(got, ss.NAS+"/"+ss.ID)
			}
			if !reflect.DeepEqual(got, tt.sessions) {
				t.Errorf("sessions %v, want %v", got, tt.sessions)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	s := watcher.NewState()
	for i, ev := range []watcher.Event{
		sess(watcher.SessionStart, "joao", "bras1", "s1", 0),
		sess(watcher.SessionStart, "maria", "bras1", "", 1), // no session id
		{At: at(2), Login: "ana", Kind: watcher.AuthReject, Source: "proxy", Reason: "wrong password"},
	} {
		ev.Seq = int64(i + 1)
		s.Apply(ev)
	}
	cp, err := s.MarshalCheckpoint()
	if err != nil || cp.Seq != 3 {
		t.Fatalf("seq %d err %v", cp.Seq, err)
	}
	r := watcher.NewState()
	if err := r.RestoreCheckpoint(cp); err != nil {
		t.Fatal(err)
	}
	// The session without an id must still be found by the stop that follows.
	r.Apply(watcher.Event{Seq: 4, At: at(9), Login: "maria", Kind: watcher.SessionStop, Source: "radius", NAS: "bras1"})
	if c, _ := r.Customer("maria"); c.Online {
		t.Errorf("maria still online after stop: %+v", c)
	}
	for _, login := range []string{"joao", "ana"} {
		a, _ := s.Customer(login)
		b, _ := r.Customer(login)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: %+v != %+v", login, a, b)
		}
	}
	for _, bad := range [][]byte{[]byte("{garbage"), {0x1f, 0x8b, 1, 2, 3}, []byte(`{"customers": {}}`)} {
		if err := r.RestoreCheckpoint(watcher.Checkpoint{Seq: 1, Parts: [][]byte{bad}}); err == nil {
			t.Errorf("garbage checkpoint %q accepted", bad)
		}
	}
}

// A checkpoint of many customers is saved in several parts, and reads back
// whole; so does one saved as a single JSON text by an earlier version.
func TestCheckpointParts(t *testing.T) {
	s := watcher.NewState()
	const n = 1234
	for i := range n {
		ev := sess(watcher.SessionStart, fmt.Sprintf("cliente%04d", i), fmt.Sprintf("bras%d", i%3), strconv.Itoa(i), i)
		ev.Seq = int64(i + 1)
		s.Apply(ev)
	}
	cp, err := s.MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	if len(cp.Parts) < 2 || cp.Seq != n {
		t.Fatalf("%d customers: %d parts, seq %d", n, len(cp.Parts), cp.Seq)
	}
	r := watcher.NewState()
	if err := r.RestoreCheckpoint(cp); err != nil {
		t.Fatal(err)
	}
	if got, want := r.Stats(), s.Stats(); got != want || got.Online != n {
		t.Fatalf("restored stats %+v, want %+v", got, want)
	}
	for _, login := range []string{"cliente0000", "cliente0617", "cliente1233"} {
		a, _ := s.Customer(login)
		b, _ := r.Customer(login)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: %+v != %+v", login, b, a)
		}
	}

	legacy := []byte(`{"seq": 7, "customers": [{"login": "joao", "online": true, "since": "2026-11-02T10:00:00Z",
		"sessions": [{"nas": "bras1", "session_id": "s1", "source": "radius", "ip": "100.64.0.9",
		"start": "2026-11-02T10:00:00Z", "updated": "2026-11-02T10:00:00Z"}], "last_seq": 7}]}`)
	old := watcher.NewState()
	if err := old.RestoreCheckpoint(watcher.Checkpoint{Seq: 7, Parts: [][]byte{legacy}}); err != nil {
		t.Fatal(err)
	}
	c, ok := old.Customer("joao")
	if !ok || !c.Online || len(c.Sessions) != 1 || c.Sessions[0].IP != "100.64.0.9" {
		t.Fatalf("legacy checkpoint: %+v", c)
	}
	// Its session is found by the stop that closes it.
	old.Apply(watcher.Event{Seq: 8, At: at(9), Login: "joao", Kind: watcher.SessionStop, Source: "radius", NAS: "bras1", SessionID: "s1"})
	if c, _ := old.Customer("joao"); c.Online {
		t.Errorf("joao still online after the stop: %+v", c)
	}
}

func TestNormalizeMAC(t *testing.T) {
	tests := map[string]string{
		"aa:bb:cc:dd:ee:ff":    "AA:BB:CC:DD:EE:FF",
		"AA-BB-CC-DD-EE-FF":    "AA:BB:CC:DD:EE:FF",
		"aabb.ccdd.eeff":       "AA:BB:CC:DD:EE:FF",
		"aabbccddeeff":         "AA:BB:CC:DD:EE:FF",
		"aa:bb:cc:dd:ee":       "",
		"aa:bb:cc:dd:ee:ff:00": "",
		"pppoe-service":        "",
		"":                     "",
		"gg:bb:cc:dd:ee:ff":    "",
	}
	for in, want := range tests {
		if got := watcher.NormalizeMAC(in); got != want {
			t.Errorf("NormalizeMAC(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLookupKind(t *testing.T) {
	tests := []struct{ q, kind, value string }{
		{"aa-bb-cc-dd-ee-ff", "mac", "AA:BB:CC:DD:EE:FF"},
		{"aabbccddeeff", "mac", "AA:BB:CC:DD:EE:FF"},
		{"123456789012", "login", "123456789012"}, // numeric logins are common
		{"100.64.3.7", "ip", "100.64.3.7"},
		{"::ffff:100.64.3.7", "ip", "100.64.3.7"},
		{"2804:db8::1", "ip", "2804:db8::1"},
		{" joao ", "login", "joao"},
		{"joao.silva@provedor", "login", "joao.silva@provedor"},
	}
	for _, tt := range tests {
		if k, v := watcher.LookupKind(tt.q); k != tt.kind || v != tt.value {
			t.Errorf("LookupKind(%q) = %s %q, want %s %q", tt.q, k, v, tt.kind, tt.value)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := watcher.Event{At: t0, Login: "joao", Kind: watcher.SessionStart, Source: "radius"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(e *watcher.Event){
		"kind":     func(e *watcher.Event) { e.Kind = "session.weird" },
		"time":     func(e *watcher.Event) { e.At = time.Time{} },
		"source":   func(e *watcher.Event) { e.Source = "" },
		"firehose": func(e *watcher.Event) { e.Login = "*" },
		"utf8":     func(e *watcher.Event) { e.Login = "jo\xffao" },
		"long":     func(e *watcher.Event) { e.MAC = string(make([]byte, 300)) },
	}
	for name, mutate := range bad {
		e := ok
		mutate(&e)
		if e.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLookupKindIPv6IsNotAMAC(t *testing.T) {
	for _, q := range []string{"2804:14c:5bb::10", "::ffff:100.64.0.12", "2804:db8:100:1:2:3:4:5"} {
		if k, _ := watcher.LookupKind(q); k != "ip" {
			t.Errorf("LookupKind(%q) = %s, want ip", q, k)
		}
	}
}

func TestPlanAndBlock(t *testing.T) {
	policy := watcher.BlockPolicy{AddressLists: []string{"bloqueados"}, Pools: []string{"bloqueio"}, ReducedRateLimits: []string{"1M/1M"}}
	tests := []struct {
		name             string
		attrs            map[string]string
		plan             string
		blocked, reduced string
	}{
		{"plan", map[string]string{"26:14988:8": "300M/150M 600M/300M 300M/150M 10/10"}, "300M/150M", "", ""},
		{"wispr plan", map[string]string{"26:14122:8": "100000000", "26:14122:7": "50000000"}, "50M/100M", "", ""},
		{"address list", map[string]string{"26:14988:19": "bloqueados", "26:14988:8": "1M/1M"}, "1M/1M", "address-list bloqueados", "rate-limit 1M/1M"},
		{"pool", map[string]string{"Framed-Pool": "bloqueio"}, "", "pool bloqueio", ""},
		{"other list is not a block", map[string]string{"26:14988:19": "clientes"}, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := watcher.NewState()
			s.SetBlockPolicy(policy)
			s.Apply(watcher.Event{Seq: 1, At: at(0), Login: "joao", Kind: watcher.AuthAccept, Source: "proxy", Detail: &watcher.Detail{Attributes: tt.attrs}})
			c, _ := s.Customer("joao")
			by := func(b *watcher.Block) string {
				if b == nil {
					return ""
				}
				return b.By
			}
			if c.Plan != tt.plan || by(c.Blocked) != tt.blocked || by(c.Reduced) != tt.reduced {
				t.Errorf("plan %q blocked %q reduced %q", c.Plan, by(c.Blocked), by(c.Reduced))
			}
			// A later accept without the block lifts it.
			s.Apply(watcher.Event{Seq: 2, At: at(9), Login: "joao", Kind: watcher.AuthAccept, Source: "proxy", Detail: &watcher.Detail{Attributes: map[string]string{"26:14988:8": "300M/150M"}}})
			if c, _ := s.Customer("joao"); c.Blocked != nil || c.Reduced != nil {
				t.Errorf("still blocked after a clean accept: %+v %+v", c.Blocked, c.Reduced)
			}
		})
	}
}
