package frsql

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"authwatch/watcher"
)

// fakeSchema is t with every logical column present under its usual name,
// as detect would make it from information_schema.
func fakeSchema(t table, d dialect, timeType, textType string) *schema {
	s := &schema{table: t, name: "radius." + t.key, byName: map[string]*column{}}
	var list []string
	for i := range t.columns {
		l := &t.columns[i]
		c := column{logical: l, actual: l.candidates[0], dataType: textType}
		switch l.kind {
		case kindInt:
			c.dataType = "bigint"
		case kindTime:
			c.dataType = timeType
			c.naive = d.driver == Postgres && timeType != "timestamp with time zone"
		}
		s.cols = append(s.cols, c)
	}
	for i := range s.cols {
		s.byName[s.cols[i].name] = &s.cols[i]
		list = append(list, d.selectExpr(s.cols[i]))
	}
	s.selects = strings.Join(list, ", ")
	return s
}

// TestQueriesNeverReadPasswords: whatever the schema, the queries name
// their columns, and the password column is not one of them.
func TestQueriesNeverReadPasswords(t *testing.T) {
	for _, d := range []dialect{{MySQL}, {Postgres}} {
		for _, tb := range tables {
			s := fakeSchema(tb, d, "timestamp with time zone", "inet")
			qs := []string{s.newRows(d, 500), s.rowsByID(d, 4), s.maxID(d)}
			if tb.key == "acct" {
				qs = append(qs, s.changedRows(d, "update_time", 500), s.changedRows(d, "stop_time", 500), s.firstIDSince(d, "start_time"))
			} else {
				qs = append(qs, s.firstIDSince(d, "time"))
			}
			for _, q := range qs {
				if strings.Contains(strings.ToLower(q), "pass") || strings.Contains(q, "*") {
					t.Errorf("%s %s: %s", d.driver, tb.key, q)
				}
			}
		}
	}
	// The stock names of the password column are refused as a mapping.
	for _, col := range passwordColumns {
		if err := checkColumn("reply_message", col); err == nil {
			t.Errorf("mapping to %q accepted", col)
		}
	}
}

func TestQuoting(t *testing.T) {
	if got := (dialect{MySQL}).quote("radius.radacct"); got != "`radius`.`radacct`" {
		t.Errorf("mysql: %s", got)
	}
	if got := (dialect{Postgres}).quote("AcctSessionId"); got != `"AcctSessionId"` {
		t.Errorf("postgres: %s", got)
	}
	s := fakeSchema(acctTable, dialect{Postgres}, "timestamp with time zone", "inet")
	if q := s.changedRows(dialect{Postgres}, "update_time", 10); !strings.Contains(q, `"acctstoptime" IS NULL AND "radacctid" <= ? AND "acctupdatetime" >= ? AND ("acctupdatetime" > ? OR "radacctid" > ?) ORDER BY "acctupdatetime", "radacctid" LIMIT 10`) ||
		!strings.Contains(q, `CAST("framedipaddress" AS text)`) {
		t.Errorf("changed rows: %s", q)
	}
}

func TestTimes(t *testing.T) {
	sp, _ := time.LoadLocation("America/Sao_Paulo")
	want := time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		src   any
		naive bool
		want  time.Time
		valid bool
	}{
		{"mysql, read in the zone", time.Date(2026, 3, 1, 10, 0, 0, 0, sp), false, want, true},
		{"postgres with zone", want, false, want, true},
		{"postgres without zone", time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), true, want, true},
		{"text", []byte("2026-03-01 10:00:00"), false, want, true},
		{"text with fraction", "2026-03-01 10:00:00.000000", false, want, true},
		{"text with zone", "2026-03-01T13:00:00Z", false, want, true},
		{"mysql zero date", time.Time{}, false, time.Time{}, false},
		{"zero date as text", "0000-00-00 00:00:00", false, time.Time{}, false},
		{"null", nil, false, time.Time{}, false},
	}
	for _, c := range cases {
		var v tsVal
		if err := v.Scan(c.src); err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if v.Valid != c.valid || !v.at(c.naive, sp).Equal(c.want) {
			t.Errorf("%s: valid %v at %v, want %v %v", c.name, v.Valid, v.at(c.naive, sp), c.valid, c.want)
		}
	}
	var v tsVal
	if err := v.Scan("yesterday"); err == nil {
		t.Error("a word scanned as a time")
	}
}

func TestConvert(t *testing.T) {
	cfg := Config{Name: "db", Driver: Postgres, NAS: map[string]string{"10.0.0.1": "bras-centro"}}
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	c := converter{cfg: cfg, loc: time.UTC, source: "frsql:db", now: func() time.Time { return now }}
	pa := fakeSchema(postAuthTable, dialect{Postgres}, "timestamp with time zone", "text")
	ac := fakeSchema(acctTable, dialect{Postgres}, "timestamp with time zone", "inet")
	str := func(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }

	ev, ok := c.postAuthEvent(pa, &row{Login: str("joao"), Reply: str("Access-Reject"), NAS: str("10.0.0.1/32"), MAC: str("unknown"), Class: str("plano-100")})
	if !ok || ev.Kind != watcher.AuthReject || ev.NAS != "bras-centro" || ev.MAC != "" || ev.Reason != "rejected by server" || !ev.At.Equal(now) ||
		ev.Detail.Attributes["Calling-Station-Id"] != "unknown" || ev.Detail.Attributes["Class"] != "plano-100" || ev.Detail.NASIP != "10.0.0.1" {
		t.Errorf("reject: %+v %+v", ev, ev.Detail)
	}
	if _, ok := c.postAuthEvent(pa, &row{Login: str("joao"), Reply: str("Access-Challenge")}); ok {
		t.Error("a challenge became an event")
	}
	ev, _ = c.postAuthEvent(pa, &row{Login: str("joao"), Reply: str("Access-Accept"), ReplyMessage: str("Cliente em débito: velocidade reduzida")})
	if ev.Kind != watcher.AuthAccept || ev.Reason != "Cliente em débito: velocidade reduzida" || ev.Detail != nil {
		t.Errorf("accept: %+v", ev)
	}

	r := &row{Login: str("ana"), SessionID: str("x1"), NAS: str("2001:db8::1/128"), IP: str("0.0.0.0"),
		IPv6Address: str("2001:db8:0:0::7/128"), IPv6Prefix: str("2001:db8:1:0:0::/64"), DelegatedPrefix: str("10.0.0.0/8"),
		TerminateCause: str("NAS-Reboot"), InputOctets: sql.NullInt64{Int64: -5, Valid: true}, SessionTime: sql.NullInt64{Int64: 1 << 40, Valid: true}}
	ev = c.acctEvent(ac, r, watcher.SessionStop)
	if ev.NAS != "2001:db8::1" || ev.IP != "" || ev.Reason != "NAS-Reboot" || ev.Detail.IPv6Address != "2001:db8::7" || ev.Detail.IPv6Prefix != "2001:db8:1::/64" ||
		ev.Detail.DelegatedPrefix != "" || ev.Detail.InputOctets != 0 || ev.Detail.SessionTime != 0 {
		t.Errorf("stop: %+v %+v", ev, ev.Detail)
	}
	ev = c.acctEvent(ac, r, watcher.SessionUpdate)
	if ev.Reason != "" || ev.Detail.TerminateCause != "" {
		t.Errorf("an update has a reason: %+v", ev)
	}
}

// FuzzConvert feeds arbitrary column values to the conversion: it never
// panics, and what it returns is either a valid event or refused by
// Validate (and so counted, not stored).
func FuzzConvert(f *testing.F) {
	f.Add("joao", "Access-Accept", "10.0.0.1", "aa-bb-cc-dd-ee-ff", "100.64.0.1", "2001:db8::/64", "Lost-Carrier", "2026-03-01 10:00:00")
	f.Add("*", "reject", "", "", "", "", "", "")
	f.Add("\xff", "x", "::ffff:10.0.0.1", "1234", "300.1.1.1", "/", "\x00", "0000-00-00")
	cfg := Config{Name: "db", Driver: MySQL, NAS: map[string]string{"10.0.0.1": "bras"}}
	c := converter{cfg: cfg, loc: time.UTC, source: "frsql:db", now: time.Now}
	pa := fakeSchema(postAuthTable, dialect{MySQL}, "varchar", "varchar")
	ac := fakeSchema(acctTable, dialect{MySQL}, "datetime", "varchar")
	f.Fuzz(func(t *testing.T, login, reply, nas, mac, ip, prefix, cause, at string) {
		str := func(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }
		var tv tsVal
		_ = tv.Scan(at)
		r := &row{Login: str(login), Reply: str(reply), NAS: str(nas), MAC: str(mac), ReplyMessage: str(cause), Class: str(cause), Called: str(cause),
			SessionID: str(login), IP: str(ip), IPv6Address: str(ip), IPv6Prefix: str(prefix), DelegatedPrefix: str(prefix), TerminateCause: str(cause),
			NASPortID: str(cause), Time: tv, Start: tv, Update: tv, Stop: tv}
		evs := []watcher.Event{c.acctEvent(ac, r, watcher.SessionStart), c.acctEvent(ac, r, watcher.SessionStop)}
		if ev, ok := c.postAuthEvent(pa, r); ok {
			evs = append(evs, ev)
		}
		for _, ev := range evs {
			if err := ev.Validate(); err != nil {
				continue
			}
			if ev.At.IsZero() || ev.Source != "frsql:db" {
				t.Fatalf("valid event without time or source: %+v", ev)
			}
			if ev.MAC != "" && watcher.NormalizeMAC(ev.MAC) != ev.MAC {
				t.Fatalf("MAC not normalised: %q", ev.MAC)
			}
		}
	})
}

func TestHoles(t *testing.T) {
	now := time.Now()
	h := holes{}
	rows := []*row{{ID: 12}, {ID: 13}, {ID: 15}, {ID: 500}}
	h.note(10, rows, now)
	if got := h.ids(); len(got) != 2 || got[0] != 11 || got[1] != 14 {
		t.Fatalf("holes %v, want [11 14] (the jump to 500 is too large to wait for)", got)
	}
	h.expire(now.Add(holeWait - time.Second))
	if len(h) != 2 {
		t.Fatal("expired early")
	}
	h.expire(now.Add(holeWait + time.Second))
	if len(h) != 0 {
		t.Fatal("not expired")
	}
}

func TestChangeCursor(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	c := newChangeCursor("stop_time", cursorPos{keyset: keyset{T: t0}, Seen: [][2]int64{{7, t0.Add(time.Second).UnixMicro()}}})
	if !c.recorded(7, t0.Add(time.Second)) || c.recorded(7, t0.Add(2*time.Second)) || c.recorded(8, t0) {
		t.Fatal("seen not restored")
	}
	// A regular poll reads after the highest key; a sweep from lookback
	// before the database's clock, never before the floor.
	c.last = keyset{T: t0.Add(5 * time.Minute), ID: 9}
	if k := c.from(t0.Add(5*time.Minute), time.Minute, false); k != c.last {
		t.Errorf("regular poll from %v", k)
	}
	if k := c.from(t0.Add(5*time.Minute), time.Minute, true); !k.T.Equal(t0.Add(4*time.Minute)) || k.ID != 0 {
		t.Errorf("sweep from %v", k)
	}
	if k := c.from(t0.Add(30*time.Second), time.Minute, true); !k.equal(c.floor) {
		t.Errorf("sweep before the floor: %v", k)
	}
	c.now = t0.Add(5 * time.Minute)
	c.mark(8, t0.Add(4*time.Minute+time.Second))
	p := c.checkpoint(time.Minute)
	if !p.T.Equal(t0.Add(4*time.Minute)) || len(p.Seen) != 1 || p.Seen[0][0] != 8 {
		t.Errorf("checkpoint %+v: want the sweep's start and only the changes after it", p)
	}
}
