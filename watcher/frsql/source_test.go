package frsql_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"authwatch/watcher"
	"authwatch/watcher/frsql"
	"authwatch/watcher/frsql/mysqltest"
	"authwatch/watcher/sqlstore/pgtest"
)

// A recent, whole-second time: MySQL's DATETIME keeps no fractions. Rows
// dated a little in the past, as a NAS's Event-Timestamp may be, are within
// the source's lookback.
func base() time.Time { return time.Now().Add(-20 * time.Second).Truncate(time.Second) }

// TestPostAuth follows radpostauth in the stock schema and in one with the
// columns provider systems add: rows inserted appear as auth events on the
// hub within the poll interval, with the time read in the configured zone,
// and the password never read.
func TestPostAuth(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		for _, extended := range []bool{false, true} {
			t.Run(map[bool]string{false: "stock", true: "extended"}[extended], func(t *testing.T) {
				f := b.new(t, extended)
				at := base()
				f.postAuth(auth{login: "old", pass: "x", reply: "Access-Accept", at: at.Add(-time.Hour)})
				h := run(t, f, "", opts{})
				h.quiet() // a first run starts from now

				inserted := time.Now()
				f.postAuth(auth{login: "joao", pass: "hunter2-Secret", reply: "Access-Accept", at: at, nas: "10.0.0.1", mac: "aa-bb-cc-dd-ee-ff"})
				f.postAuth(auth{login: "maria", pass: "wrong-Secret", reply: "Access-Reject", at: at.Add(time.Second), nas: "10.0.0.9", mac: "11:22:33:44:55:66", msg: "Multiple logins"})
				evs := h.next(2, 5*time.Second)
				// Within the poll interval, give or take a loaded CI machine.
				if took := time.Since(inserted); took > testPoll+3*time.Second {
					t.Errorf("events took %v to arrive; poll interval %v", took, testPoll)
				} else {
					t.Logf("events arrived %v after the inserts (poll interval %v)", took.Round(time.Millisecond), testPoll)
				}
				accept, reject := evs[0], evs[1]
				if accept.Kind != watcher.AuthAccept || accept.Login != "joao" || reject.Kind != watcher.AuthReject || reject.Login != "maria" {
					t.Fatalf("events:\n%s", dump(evs))
				}
				for i, ev := range evs {
					if want := at.Add(time.Duration(i) * time.Second); !ev.At.Equal(want) {
						t.Errorf("%s: at %v, want %v (authdate read in %s)", ev.Login, ev.At, want.UTC(), zone)
					}
					if ev.Source != "frsql:radius-db" {
						t.Errorf("source %q", ev.Source)
					}
				}
				hasMAC := extended || b.driver == frsql.Postgres
				if hasMAC && (accept.MAC != "AA:BB:CC:DD:EE:FF" || reject.MAC != "11:22:33:44:55:66") {
					t.Errorf("MACs %q %q", accept.MAC, reject.MAC)
				}
				if extended {
					if accept.NAS != "bras-centro" || reject.NAS != "10.0.0.9" {
						t.Errorf("NAS %q %q, want the mapped name and the bare address", accept.NAS, reject.NAS)
					}
					if reject.Reason != "Multiple logins" {
						t.Errorf("reject reason %q, want the reply message", reject.Reason)
					}
				} else if accept.NAS != "" || reject.Reason != "rejected by server" {
					t.Errorf("stock schema: NAS %q, reason %q", accept.NAS, reject.Reason)
				}
				if c, _ := h.state.Customer("maria"); c.LastAuth == nil || c.LastAuth.Accepted {
					t.Errorf("state: maria's last auth %+v", c.LastAuth)
				}

				h.stop()
				for _, q := range frsql.Queries(h.src) {
					if strings.Contains(strings.ToLower(q), "pass") {
						t.Errorf("query reads the password column: %s", q)
					}
				}
				st := h.src.Status()
				if slices.Contains(st.PostAuth.Columns, "pass") || !slices.Contains(st.PostAuth.Columns, "username") {
					t.Errorf("columns read: %v", st.PostAuth.Columns)
				}
				out, _ := json.Marshal(h.stored())
				for _, secret := range []string{"hunter2", "wrong-Secret", roPassword} {
					if strings.Contains(string(out), secret) || strings.Contains(h.logs.String(), secret) {
						t.Errorf("%q reached the store or the log", secret)
					}
				}
			})
		}
	})
}

// TestAcct follows radacct: a new row is a session.start, an interim update
// a session.update with the counters, a stop a session.stop with the
// terminate cause; a row first seen already stopped is a stop.
func TestAcct(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := b.new(t, false)
		at := base()
		f.start(session{id: "old", login: "old", nas: "10.0.0.1", start: at.Add(-time.Hour)})
		h := run(t, f, "", opts{})
		h.quiet()

		f.start(session{id: "81a00001", login: "joao", nas: "10.0.0.1", mac: "18fd.7422.23b7", ip: "100.64.0.7",
			v6prefix: "2804:1b0:1::/64", delegated: "2804:1b0:2000::/56", start: at})
		ev := h.next(1, 5*time.Second)[0]
		want := watcher.Event{Kind: watcher.SessionStart, Login: "joao", NAS: "bras-centro", SessionID: "81a00001", MAC: "18:FD:74:22:23:B7", IP: "100.64.0.7"}
		if ev.Kind != want.Kind || ev.Login != want.Login || ev.NAS != want.NAS || ev.SessionID != want.SessionID || ev.MAC != want.MAC || ev.IP != want.IP || !ev.At.Equal(at) {
			t.Fatalf("start:\n%s", dump([]watcher.Event{ev}))
		}
		if d := ev.Detail; d == nil || d.IPv6Prefix != "2804:1b0:1::/64" || d.DelegatedPrefix != "2804:1b0:2000::/56" || d.NASIP != "10.0.0.1" || d.NASPortID != "ether1" || d.Service != "pppoe-svc" {
			t.Errorf("start detail: %+v", ev.Detail)
		}
		if c, _ := h.state.Customer("joao"); !c.Online || len(c.Sessions) != 1 || c.Sessions[0].IP != "100.64.0.7" {
			t.Errorf("state after start: %+v", c)
		}

		f.interim("81a00001", at.Add(5*time.Second), 123456789012, 987654321)
		ev = h.next(1, 5*time.Second)[0]
		if ev.Kind != watcher.SessionUpdate || !ev.At.Equal(at.Add(5*time.Second)) || ev.Detail == nil || ev.Detail.InputOctets != 123456789012 || ev.Detail.OutputOctets != 987654321 || ev.Detail.SessionTime != 300 {
			t.Fatalf("update:\n%s", dump([]watcher.Event{ev}))
		}

		f.stop("81a00001", at.Add(10*time.Second), "Lost-Carrier")
		ev = h.next(1, 5*time.Second)[0]
		if ev.Kind != watcher.SessionStop || ev.Reason != "Lost-Carrier" || !ev.At.Equal(at.Add(10*time.Second)) || ev.NAS != "bras-centro" {
			t.Fatalf("stop:\n%s", dump([]watcher.Event{ev}))
		}
		if c, _ := h.state.Customer("joao"); c.Online || c.LastStop == nil || c.LastStop.Reason != "Lost-Carrier" {
			t.Errorf("state after stop: %+v", c)
		}

		// A session that came and went between two polls.
		f.start(session{id: "81a00002", login: "ana", nas: "10.0.0.2", start: at})
		f.stop("81a00002", at.Add(2*time.Second), "User-Request")
		ev = h.next(1, 5*time.Second)[0]
		if ev.Kind != watcher.SessionStop || ev.Login != "ana" || ev.NAS != "10.0.0.2" || ev.Reason != "User-Request" {
			t.Fatalf("start and stop between polls:\n%s", dump([]watcher.Event{ev}))
		}
		h.quiet()
		if st := h.src.Status(); !st.Connected || st.Acct.LastID == 0 || st.Events != 4 {
			t.Errorf("status %+v", st)
		}
	})
}

// TestRestart stops the source, changes both tables meanwhile, and starts
// it again on the same store: what changed is recorded once, what was
// recorded before is not recorded again.
func TestRestart(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := b.new(t, false)
		at := base()
		h := run(t, f, "", opts{})
		f.postAuth(auth{login: "a1", reply: "Access-Accept", at: at})
		f.start(session{id: "s1", login: "a1", nas: "10.0.0.1", start: at})
		f.start(session{id: "s2", login: "a2", nas: "10.0.0.1", start: at})
		// Unchanged through the restart, and within the lookback the
		// sweep reads again: recorded once.
		f.start(session{id: "s4", login: "a4", nas: "10.0.0.1", start: at})
		h.next(4, 5*time.Second)
		h.stop()

		// While authwatch is down.
		f.postAuth(auth{login: "b1", reply: "Access-Reject", at: at.Add(time.Second)})
		f.interim("s1", at.Add(2*time.Second), 10, 20)
		f.stop("s2", at.Add(3*time.Second), "User-Request")
		f.start(session{id: "s3", login: "b2", nas: "10.0.0.1", start: at.Add(4 * time.Second)})

		h2 := run(t, f, h.db, opts{})
		t.Logf("after restart: %s", dump(h2.next(4, 5*time.Second)))
		h2.quiet()
		f.postAuth(auth{login: "c1", reply: "Access-Accept", at: at.Add(5 * time.Second)})
		h2.next(1, 5*time.Second)
		h2.stop()

		got := summaries(h2.stored())
		want := []string{
			"auth.accept a1", "session.start a1 s1", "session.start a2 s2", "session.start a4 s4",
			"auth.reject b1", "session.start b2 s3", "session.update a1 s1", "session.stop a2 s2",
			"auth.accept c1",
		}
		if !slices.Equal(got, want) {
			t.Errorf("stored events:\n got %q\nwant %q", got, want)
		}
	})
}

// TestBackfill reads the last hour on a first run, and nothing older.
func TestBackfill(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := b.new(t, false)
		now := time.Now().Truncate(time.Second)
		f.postAuth(auth{login: "too-old", reply: "Access-Accept", at: now.Add(-3 * time.Hour)})
		f.postAuth(auth{login: "recent", reply: "Access-Reject", at: now.Add(-30 * time.Minute)})
		f.start(session{id: "s-old", login: "too-old", nas: "10.0.0.1", start: now.Add(-3 * time.Hour)})
		f.start(session{id: "s-new", login: "recent", nas: "10.0.0.1", start: now.Add(-20 * time.Minute)})
		f.stop("s-new", now.Add(-10*time.Minute), "Idle-Timeout")
		// An old session whose stop came within the hour.
		f.start(session{id: "s-long", login: "long", nas: "10.0.0.1", start: now.Add(-5 * time.Hour)})
		f.stop("s-long", now.Add(-5*time.Minute), "Session-Timeout")

		h := run(t, f, "", opts{cfg: func(c *frsql.Config) { c.Backfill = time.Hour }})
		h.waitSteps(3)
		h.stop()
		got := summaries(h.stored())
		want := []string{"auth.reject recent", "session.stop recent s-new", "session.stop long s-long"}
		if !slices.Equal(got, want) {
			t.Errorf("backfilled:\n got %q\nwant %q", got, want)
		}
	})
}

// TestRevokedGrant takes SELECT away from the source's user: the status
// says so clearly and the source keeps trying; given back, it resumes where
// it was, missing nothing.
func TestRevokedGrant(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := b.new(t, false)
		at := base()
		h := run(t, f, "", opts{})
		f.revoke("radpostauth")
		f.postAuth(auth{login: "during", reply: "Access-Accept", at: at})
		eventually(t, "a status naming the refused table", func() bool {
			st := h.src.Status()
			return !st.Connected && strings.Contains(st.LastError, "radpostauth")
		})
		st := h.src.Status()
		if !strings.Contains(st.LastError, "SELECT") || !strings.Contains(st.LastError, "README") {
			t.Errorf("status error is not clear: %q", st.LastError)
		}
		if strings.Contains(st.LastError, roPassword) || strings.Contains(h.logs.String(), roPassword) {
			t.Error("the DSN's password reached the status or the log")
		}
		t.Logf("status while refused: %s", st.LastError)

		f.grant("radpostauth")
		ev := h.next(1, 10*time.Second)[0]
		if ev.Login != "during" {
			t.Fatalf("after the grant: %s", dump([]watcher.Event{ev}))
		}
		eventually(t, "connected again", func() bool { return h.src.Status().Connected })
	})
}

// TestDatabaseDown stops the database server: the status says the source is
// not connected and why; once the server is back, rows written meanwhile
// are recorded.
func TestDatabaseDown(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := b.new(t, false)
		at := base()
		h := run(t, f, "", opts{})
		f.postAuth(auth{login: "before", reply: "Access-Accept", at: at})
		h.next(1, 5*time.Second)
		stop, start := mysqltest.Stop, mysqltest.Start
		if b.driver == frsql.Postgres {
			stop, start = pgtest.Stop, pgtest.Start
		}
		stop(t)
		restarted := false
		defer func() {
			if !restarted {
				start(t)
			}
		}()
		eventually(t, "a disconnected status", func() bool {
			st := h.src.Status()
			return !st.Connected && st.LastError != ""
		})
		t.Logf("status while down: %s", h.src.Status().LastError)
		start(t)
		restarted = true
		// The fixture's pool reconnects on its own.
		f.postAuth(auth{login: "after", reply: "Access-Reject", at: at.Add(time.Second)})
		ev := h.next(1, 15*time.Second)[0]
		if ev.Login != "after" {
			t.Fatalf("after the restart: %s", dump([]watcher.Event{ev}))
		}
		eventually(t, "connected again", func() bool { return h.src.Status().Connected })
		if st := h.src.Status(); st.Failures == 0 {
			t.Errorf("no failure counted: %+v", st)
		}
	})
}

// TestMissingColumn: a table without a column the source needs gives a
// status that names it and the key to map it with; once added, the source
// goes on.
func TestMissingColumn(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := b.new(t, false)
		f.exec("ALTER TABLE radacct DROP COLUMN acctsessionid")
		h := run(t, f, "", opts{})
		st := h.src.Status()
		if st.Connected || !strings.Contains(st.LastError, "acctsessionid") || !strings.Contains(st.LastError, "columns.acct.session_id") {
			t.Fatalf("status %+v", st)
		}
		if b.driver == frsql.MySQL {
			f.exec("ALTER TABLE radacct ADD acctsessionid varchar(64) NOT NULL DEFAULT ''")
		} else {
			f.exec("ALTER TABLE radacct ADD acctsessionid text")
		}
		eventually(t, "connected after the column was added", func() bool { return h.src.Status().Connected })
		f.start(session{id: "s1", login: "joao", nas: "10.0.0.1", start: base()})
		if ev := h.next(1, 5*time.Second)[0]; ev.Kind != watcher.SessionStart || ev.SessionID != "s1" {
			t.Fatalf("%s", dump([]watcher.Event{ev}))
		}
	})
}

// TestColumnMapping reads a provider's renamed columns through Columns.
func TestColumnMapping(t *testing.T) {
	f := newMySQL(t, false)
	f.exec("ALTER TABLE radpostauth ADD motivo varchar(200) DEFAULT NULL, ADD mac_cliente varchar(20) DEFAULT NULL, ADD concentrador varchar(15) DEFAULT NULL")
	h := run(t, f, "", opts{cfg: func(c *frsql.Config) {
		c.Columns = map[string]string{"postauth.reply_message": "motivo", "postauth.mac": "mac_cliente", "postauth.nas": "concentrador"}
	}})
	f.insert("radpostauth", map[string]any{"username": "joao", "pass": "x", "reply": "Access-Reject", "authdate": f.ts(base(), false),
		"motivo": "Cliente bloqueado", "mac_cliente": "AABBCCDDEEFF", "concentrador": "10.0.0.1"})
	ev := h.next(1, 5*time.Second)[0]
	if ev.Reason != "Cliente bloqueado" || ev.MAC != "AA:BB:CC:DD:EE:FF" || ev.NAS != "bras-centro" {
		t.Fatalf("%s", dump([]watcher.Event{ev}))
	}
	if cols := h.src.Status().PostAuth.Columns; !slices.Contains(cols, "motivo") {
		t.Errorf("columns %v", cols)
	}
}

// TestKnown leaves sessions another source already reports to it: none of
// their rows is recorded, while the others are.
func TestKnown(t *testing.T) {
	f := newPostgres(t, false)
	at := base()
	known := func(nas, id string) bool { return nas == "bras-centro" && id == "by-radius" }
	h := run(t, f, "", opts{known: known})
	f.start(session{id: "by-radius", login: "joao", nas: "10.0.0.1", start: at})
	f.start(session{id: "only-here", login: "maria", nas: "10.0.0.1", start: at})
	f.interim("by-radius", at.Add(time.Second), 1, 2)
	f.stop("by-radius", at.Add(2*time.Second), "User-Request")
	f.stop("only-here", at.Add(2*time.Second), "User-Request")
	h.waitSteps(3)
	h.stop()
	got := summaries(h.stored())
	if want := []string{"session.start maria only-here", "session.stop maria only-here"}; !slices.Equal(got, want) && !slices.Equal(got, []string{"session.stop maria only-here"}) {
		t.Errorf("recorded %q, want %q", got, want)
	}
	if st := h.src.Status(); st.Skipped == 0 {
		t.Errorf("nothing counted as skipped: %+v", st)
	}
}

// TestKnownFrom merges with the State: a session RADIUS accounting already
// reported is known; one this source reported is not.
func TestKnownFrom(t *testing.T) {
	state := watcher.NewState()
	at := time.Now()
	state.Apply(watcher.Event{Seq: 1, At: at, Login: "joao", Kind: watcher.SessionStart, Source: "radius", NAS: "bras-centro", SessionID: "a1"})
	state.Apply(watcher.Event{Seq: 2, At: at, Login: "ana", Kind: watcher.SessionStart, Source: "frsql:db", NAS: "bras-centro", SessionID: "a2"})
	known := frsql.KnownFrom(state, "frsql:db")
	for _, c := range []struct {
		nas, id string
		want    bool
	}{{"bras-centro", "a1", true}, {"bras-centro", "a2", false}, {"bras-norte", "a1", false}, {"bras-centro", "zz", false}} {
		if got := known(c.nas, c.id); got != c.want {
			t.Errorf("known(%q, %q) = %v, want %v", c.nas, c.id, got, c.want)
		}
	}
}

// TestLateCommits: rows that become visible out of order — an insert that
// took a lower id but committed later, an interim update whose time is
// older than one already read — are still recorded, once.
func TestLateCommits(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := b.new(t, false)
		at := base()
		h := run(t, f, "", opts{})
		f.start(session{id: "s1", login: "u1", nas: "10.0.0.1", start: at})
		f.start(session{id: "s2", login: "u2", nas: "10.0.0.1", start: at})
		h.next(2, 5*time.Second)

		tx := f.admin.MustBegin()
		insertTx(t, f, tx, "slow")
		f.postAuth(auth{login: "fast", reply: "Access-Accept", at: at})
		if ev := h.next(1, 5*time.Second)[0]; ev.Login != "fast" {
			t.Fatalf("%s", dump([]watcher.Event{ev}))
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if ev := h.next(1, 5*time.Second)[0]; ev.Login != "slow" {
			t.Fatalf("the row committed late: %s", dump([]watcher.Event{ev}))
		}

		f.interim("s2", at.Add(20*time.Second), 1, 1)
		h.next(1, 5*time.Second)
		f.interim("s1", at.Add(10*time.Second), 5, 5) // older than s2's, seen after it
		if ev := h.next(1, 5*time.Second)[0]; ev.Kind != watcher.SessionUpdate || ev.SessionID != "s1" {
			t.Fatalf("the older interim: %s", dump([]watcher.Event{ev}))
		}
		h.quiet()
	})
}

// insertTx inserts a radpostauth row in tx, which takes its id now.
func insertTx(t *testing.T, f *fixture, tx *sqlx.Tx, login string) {
	t.Helper()
	if _, err := tx.Exec(tx.Rebind("INSERT INTO radpostauth (username, pass, reply, authdate) VALUES (?, 'x', 'Access-Accept', ?)"), login, f.ts(base(), f.naiveAuth)); err != nil {
		t.Fatal(err)
	}
}

// TestPaging reads a backlog larger than one query's batch, in order, once.
func TestPaging(t *testing.T) {
	f := newMySQL(t, false)
	at := base()
	var want []string
	h := run(t, f, "", opts{batch: 3})
	for i := range 10 {
		login := fmt.Sprintf("u%02d", i)
		f.postAuth(auth{login: login, reply: "Access-Accept", at: at})
		f.start(session{id: "s" + login, login: login, nas: "10.0.0.1", start: at})
		want = append(want, "auth.accept "+login)
	}
	for i := range 10 {
		f.interim(fmt.Sprintf("su%02d", i), at.Add(time.Duration(i)*time.Second), 1, 1)
	}
	h.waitSteps(5)
	h.stop()
	var auths, starts, updates []string
	for _, ev := range h.stored() {
		switch ev.Kind {
		case watcher.AuthAccept:
			auths = append(auths, summary(ev))
		case watcher.SessionStart:
			starts = append(starts, ev.SessionID)
		case watcher.SessionUpdate:
			updates = append(updates, ev.SessionID)
		}
	}
	if !slices.Equal(auths, want) || len(starts) != 10 || len(updates) > 10 || len(starts)+len(updates) < 10 {
		t.Errorf("auths %q\nstarts %q\nupdates %q", auths, starts, updates)
	}
	seen := map[string]bool{}
	for _, id := range updates {
		if seen[id] {
			t.Errorf("update of %s recorded twice", id)
		}
		seen[id] = true
	}
}

// TestColumnGrants: with SELECT granted on every column but the password
// (what the README recommends), the source works, and the database itself
// keeps the passwords from it.
func TestColumnGrants(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := b.new(t, true)
		f.revoke("radpostauth")
		cols := "id, username, reply, authdate, class, nasipaddress, callingstationid, reply_message"
		if b.driver == frsql.MySQL {
			f.exec(fmt.Sprintf("GRANT SELECT (%s) ON radpostauth TO '%s'@'localhost'", cols, f.user))
		} else {
			f.exec(fmt.Sprintf("GRANT SELECT (%s, calledstationid) ON radpostauth TO %s", cols, f.user))
		}
		h := run(t, f, "", opts{})
		f.postAuth(auth{login: "joao", pass: "hunter2", reply: "Access-Reject", at: base(), nas: "10.0.0.1", msg: "Cliente bloqueado"})
		if ev := h.next(1, 5*time.Second)[0]; ev.Reason != "Cliente bloqueado" || ev.NAS != "bras-centro" {
			t.Fatalf("%s", dump([]watcher.Event{ev}))
		}
		if st := h.src.Status(); !st.Connected || slices.Contains(st.PostAuth.Columns, "pass") {
			t.Errorf("status %+v", st)
		}
	})
}
