package routeros

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/routeros/routerostest"
)

func TestParseRow(t *testing.T) {
	r, err := parseRow(map[string]string{
		".id": "*80000123", "name": "joao", "service": "pppoe", "caller-id": "52:54:00:aa:00:03",
		"address": "10.99.0.2", "uptime": "1d2h", "encoding": "", "session-id": "0x81A00003", "radius": "true",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := row{id: "*80000123", name: "joao", service: "pppoe", callerID: "52:54:00:aa:00:03", mac: "52:54:00:AA:00:03",
		ip: "10.99.0.2", sessionID: "81a00003", rawSID: "0x81A00003", uptime: "1d2h", radius: "true"}
	if r != want {
		t.Fatalf("got  %+v\nwant %+v", r, want)
	}
	for _, tc := range []struct {
		m    map[string]string
		want string
	}{
		{map[string]string{"name": "joao"}, "no .id"},
		{map[string]string{".id": "*1"}, "no name"},
		{map[string]string{".id": "*1", "name": "a\x00b"}, "control characters"},
		{map[string]string{".id": "*1", "name": "\xff"}, "UTF-8"},
		{map[string]string{".id": "*1", "name": strings.Repeat("x", 254)}, "longer"},
		{map[string]string{".id": "*1", "name": "*"}, "reserved"},
	} {
		if _, err := parseRow(tc.m); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseRow(%q) = %v, want %q", tc.m, err, tc.want)
		}
	}
	// Placeholders and oddities.
	r, _ = parseRow(map[string]string{".id": "*2", "name": "ana", "address": "0.0.0.0", "caller-id": "10.1.1.1"})
	if r.ip != "" || r.mac != "" || r.sessionID != "*2" {
		t.Fatalf("placeholder row = %+v", r)
	}
}

func TestParseUptime(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"0s": 0, "5s": 5 * time.Second, "1w2d3h4m5s": (9*24+3)*time.Hour + 4*time.Minute + 5*time.Second,
		"150ms": 150 * time.Millisecond, "1m30s": 90 * time.Second, "00:01:02": 62 * time.Second,
		"1d00:01:02": 24*time.Hour + 62*time.Second, "2w1d 10:00:00": 15*24*time.Hour + 10*time.Hour,
	} {
		if got, ok := parseUptime(in); !ok || got != want {
			t.Errorf("parseUptime(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "5", "s", "1x", "1:2", "aa:bb:cc", "1d:", "99999999999h", "-5s"} {
		if got, ok := parseUptime(in); ok {
			t.Errorf("parseUptime(%q) = %v, want not ok", in, got)
		}
	}
}

func TestDiff(t *testing.T) {
	a := row{id: "*1", name: "ana", sessionID: "a1", ip: "10.0.0.1"}
	b := row{id: "*2", name: "bia", sessionID: "b1", ip: "10.0.0.2"}
	bNewIP := b
	bNewIP.ip = "10.0.0.22"
	bAged := b
	bAged.uptime = "9h"
	c := row{id: "*3", name: "caio", sessionID: "c1"}
	reused := row{id: "*1", name: "duda", sessionID: "d1"} // .id reused after a reboot
	tab := func(rs ...row) map[string]row {
		m := map[string]row{}
		for _, r := range rs {
			m[r.id] = r
		}
		return m
	}
	for _, tc := range []struct {
		name        string
		known, snap map[string]row
		want        string
	}{
		{"nothing", tab(a, b), tab(a, bAged), ""},
		{"first", tab(), tab(a, b), "session.start ana, session.start bia"},
		{"gone", tab(a, b), tab(a), "session.stop bia"},
		{"new ip", tab(a, b), tab(a, bNewIP), "session.update bia"},
		{"mixed", tab(a, b), tab(b, c), "session.stop ana, session.start caio"},
		{"reused id", tab(a), tab(reused), "session.stop ana, session.start duda"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, c := range diff(tc.known, tc.snap) {
				got = append(got, string(c.kind)+" "+c.r.name)
			}
			if s := strings.Join(got, ", "); s != tc.want {
				t.Fatalf("diff = %q, want %q", s, tc.want)
			}
		})
	}
}

func TestNormalizeSessionID(t *testing.T) {
	for in, want := range map[string]string{"0x81A00003": "81a00003", "81a00003": "81a00003", "0xZZ": "0xZZ", "0x": "0x", "": ""} {
		if got := normalizeSessionID(in); got != want {
			t.Errorf("normalizeSessionID(%q) = %q, want %q", in, got, want)
		}
	}
}

// table10k builds a /ppp/active of n sessions as the router would report it.
func table10k(n int) []map[string]string {
	rows := make([]map[string]string, n)
	for i := range rows {
		rows[i] = map[string]string{
			".id": fmt.Sprintf("*%X", 0x80000000+i), "name": fmt.Sprintf("cliente%05d", i), "service": "pppoe",
			"caller-id": fmt.Sprintf("52:54:00:%02X:%02X:%02X", i>>16&0xff, i>>8&0xff, i&0xff),
			"address":   fmt.Sprintf("100.64.%d.%d", i>>8&0xff, i&0xff), "uptime": "3d4h5m6s",
			"encoding": "", "session-id": fmt.Sprintf("0x81A%05X", i), "radius": "true",
		}
	}
	return rows
}

func parseTable(b testing.TB, rows []map[string]string) map[string]row {
	m := make(map[string]row, len(rows))
	for _, r := range rows {
		rw, err := parseRow(r)
		if err != nil {
			b.Fatal(err)
		}
		m[rw.id] = rw
	}
	return m
}

// BenchmarkDiff10k measures one poll's work on a 10,000-session router once
// the reply is read: parsing the items, diffing them with the known table,
// and building the events, with no change ("steady") and with 1% churn
// (100 stops, 100 starts, 100 new IPs).
func BenchmarkDiff10k(b *testing.B) {
	const n = 10000
	rows := table10k(n)
	known := parseTable(b, rows)
	churn := table10k(n + 100)[100:]
	for i := 0; i < 100; i++ {
		churn[1000+i]["address"] = "198.51.100.1"
	}
	src := New(Config{Name: "bench", Address: "127.0.0.1", User: "x"}, nil, nil)
	for _, bc := range []struct {
		name string
		snap []map[string]string
	}{{"steady", rows}, {"churn1pct", churn}} {
		b.Run(bc.name, func(b *testing.B) {
			now := time.Now()
			var evs []watcher.Event
			for b.Loop() {
				snap := parseTable(b, bc.snap)
				evs = src.changeEvents(diff(known, snap), now, phasePoll)
			}
			b.ReportMetric(float64(len(evs)), "events/op")
		})
	}
}

// BenchmarkPrint10k measures reading a 10,000-session /ppp/active over a
// real loopback connection to the fake router (go-routeros sync Run behind
// the frame guard), which a poll does before diffing.
func BenchmarkPrint10k(b *testing.B) {
	srv, err := routerostest.New(routerostest.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	for _, r := range table10k(10000) {
		srv.AddSession(routerostest.Session{Name: r["name"], CallerID: r["caller-id"], Address: r["address"], SessionID: r["session-id"], Uptime: r["uptime"]})
	}
	cfg := Config{Name: "bench", Address: srv.Addr(), User: "admin"}.withDefaults()
	l, err := dialLink(context.Background(), cfg, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.close(nil)
	for b.Loop() {
		r, err := l.run(time.Minute, "/ppp/active/print", "=.proplist="+sessionProps)
		if err != nil || len(r.Re) != 10000 {
			b.Fatalf("print: %d items, %v", len(r.Re), err)
		}
	}
}
