package frlog_test

import (
	"bufio"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"authwatch/watcher/frlog"
)

// FuzzParseLine feeds the parser anything: it must not panic, and what it
// makes of a line must be an event the store accepts.
func FuzzParseLine(f *testing.F) {
	seedFromFile(f, "testdata/freeradius-3.2.1.log")
	for _, s := range []string{
		`Tue Nov 25 14:02:10 2026 : Auth: (7) Login OK: [joao] (from client bras1 port 15728640 cli AA-BB-CC-DD-EE-FF)`,
		`Tue Nov 25 14:02:17 2026 : Auth: (13) Multiple logins (max 2) [MPP attempt]: [joao/pw] (from client bras1 port 1 cli AA-BB-CC-DD-EE-FF via TLS tunnel)`,
		`2026-11-25T10:01:00.123456-03:00 radius1 freeradius[812]: (0) Login OK: [maria] (from client bras1 port 0)`,
		`Nov 25 10:01:00 radius1 radiusd[812]: Auth: Invalid user (sql: x): [m\303\243/\\] (from client b port 0 cli x)`,
		"\x00\x00Tue Nov 25 14:02:10 2026 : Auth: Login OK: [a] (from client b port 0)\r",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsRune(line, '\n') {
			return // the reader splits lines first
		}
		ev, _, ok := frlog.ParseLine(testCfg, line, time.UTC, now)
		if !ok {
			return
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("event does not validate: %v\nline %q", err, line)
		}
		if _, err := json.Marshal(ev); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzPasswordNeverShown builds authentication lines around a password and
// checks that the event does not depend on it: the same line with another
// password gives the same event, so nothing of the password can be in it.
// In particular, the password never appears in the event unless the rest of
// the line already shows it.
func FuzzPasswordNeverShown(f *testing.F) {
	f.Add("Login incorrect (pap: Cleartext password does not match \"known good\" password)", "joao", "secret", "bras1", "AA-BB-CC-DD-EE-FF")
	f.Add("Login OK", "joao", "s3nha/secreta", "bras1", "AA-BB-CC-DD-EE-FF")
	f.Add("Multiple logins (max 1) ", "joao", "] (from client x port 1 cli 1)", "bras1", "x")
	f.Add("Invalid user", "a: [b", "c: [d/e", "bras1", "")
	f.Add("Login incorrect", "we[ird", "p] (from client evil port 9 cli 00-11-22-33-44-55)", "bras1", "AA-BB-CC-DD-EE-FF via TLS tunnel")
	f.Fuzz(func(t *testing.T, msg, user, pass, client, cli string) {
		other := "Zq8-other-password"
		for _, s := range []string{msg, user, pass, client, cli} {
			if strings.ContainsAny(s, "\n") {
				return // FreeRADIUS escapes newlines: a line never has one
			}
		}
		// The documented limits: the login ends at the first '/', and a
		// module message that contains the password is withheld (so the
		// event depends on it, by design); placeholders are no passwords.
		if pass == "" || strings.Contains(user, "/") || strings.HasPrefix(pass, "<") ||
			strings.Contains(msg, pass) || strings.Contains(msg, other) {
			return
		}
		line := func(p string) string {
			l := "Tue Nov 25 14:02:10 2026 : Auth: (7) " + msg + ": [" + user + "/" + p + "] (from client " + client + " port 1"
			if cli != "" {
				l += " cli " + cli
			}
			return l + ")"
		}
		ev, _, ok := frlog.ParseLine(testCfg, line(pass), time.UTC, now)
		ev2, _, ok2 := frlog.ParseLine(testCfg, line(other), time.UTC, now)
		if ok != ok2 {
			t.Fatalf("whether the line parses depends on the password: %v vs %v\n%q", ok, ok2, line(pass))
		}
		if !ok {
			return
		}
		if !reflect.DeepEqual(ev, ev2) {
			t.Fatalf("the event depends on the password:\n%+v\n%+v\nline %q", ev, ev2, line(pass))
		}
		b, _ := json.Marshal(ev)
		b2, _ := json.Marshal(ev2)
		if strings.Contains(string(b), pass) && !strings.Contains(string(b2), pass) {
			t.Fatalf("the password %q is in the event: %s", pass, b)
		}
	})
}

func seedFromFile(f *testing.F, name string) {
	fh, err := os.Open(name)
	if err != nil {
		f.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		f.Add(sc.Text())
	}
}
