package frlog_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/frlog"
)

var testCfg = frlog.Config{
	Name: "radius-1", Path: "/var/log/freeradius/radius.log",
	Clients: map[string]string{"bras1": "bras-centro"},
}

// now is when the tests pretend to run: BSD syslog lines get their year
// from it.
var now = time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)

func saoPaulo(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("America/Sao_Paulo")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	return loc
}

// want is what a line must become; empty fields must be empty.
type want struct {
	kind   watcher.Kind
	login  string
	nas    string
	mac    string
	reason string
	at     string // RFC 3339 in UTC
	attrs  map[string]string
}

func TestParseLine(t *testing.T) {
	sp := saoPaulo(t)
	for _, tc := range []struct {
		name   string
		line   string
		secret string // must appear nowhere in the event
		want   want
	}{
		{
			name: "login ok",
			line: `Tue Nov 25 14:02:10 2026 : Auth: (7) Login OK: [joao] (from client bras1 port 15728640 cli AA-BB-CC-DD-EE-FF)`,
			want: want{kind: watcher.AuthAccept, login: "joao", nas: "bras-centro", mac: "AA:BB:CC:DD:EE:FF", at: "2026-11-25T17:02:10Z",
				attrs: map[string]string{"NAS-Port": "15728640", "request": "7", "client": "bras1"}},
		},
		{
			name:   "login ok with auth_goodpass, password with a slash",
			line:   `Wed Nov 25 10:11:48 2026 : Auth: (2) Login OK: [joao/s3nha/secreta] (from client bras1 port 15728641 cli aa:bb:cc:dd:ee:ff)`,
			secret: "s3nha/secreta",
			want: want{kind: watcher.AuthAccept, login: "joao", nas: "bras-centro", mac: "AA:BB:CC:DD:EE:FF", at: "2026-11-25T13:11:48Z",
				attrs: map[string]string{"NAS-Port": "15728641", "request": "2", "client": "bras1"}},
		},
		{
			name:   "pap wrong password, auth_badpass",
			line:   `Tue Nov 25 14:02:11 2026 : Auth: (8) Login incorrect (pap: Cleartext password does not match "known good" password): [joao/secret] (from client bras1 port 0 cli AA-BB-CC-DD-EE-FF)`,
			secret: "secret",
			want: want{kind: watcher.AuthReject, login: "joao", nas: "bras-centro", mac: "AA:BB:CC:DD:EE:FF", reason: frlog.ReasonWrongPassword, at: "2026-11-25T17:02:11Z",
				attrs: map[string]string{"request": "8", "client": "bras1", "module": "pap"}},
		},
		{
			name: "bare login incorrect",
			line: `Tue Nov 25 14:02:12 2026 : Auth: (9) Login incorrect: [joao] (from client bras1 port 15728640 cli AA-BB-CC-DD-EE-FF)`,
			want: want{kind: watcher.AuthReject, login: "joao", nas: "bras-centro", mac: "AA:BB:CC:DD:EE:FF", reason: frlog.ReasonRejected, at: "2026-11-25T17:02:12Z",
				attrs: map[string]string{"NAS-Port": "15728640", "request": "9", "client": "bras1"}},
		},
		{
			name:   "FreeRADIUS 2.x rlm_pap, no request number, client not mapped",
			line:   `Tue Nov 25 14:02:13 2026 : Auth: Login incorrect (rlm_pap: CLEAR TEXT password check failed): [joao/joao123] (from client bras2 port 2 cli 18:FD:74:22:23:B7)`,
			secret: "joao123",
			want: want{kind: watcher.AuthReject, login: "joao", nas: "bras2", mac: "18:FD:74:22:23:B7", reason: frlog.ReasonWrongPassword, at: "2026-11-25T17:02:13Z",
				attrs: map[string]string{"NAS-Port": "2", "module": "rlm_pap"}},
		},
		{
			name: "chap",
			line: `Tue Nov 25 14:02:14 2026 : Auth: (10) Login incorrect (chap: Password comparison failed: password is incorrect): [maria/<CHAP-Password>] (from client bras1 port 0)`,
			want: want{kind: watcher.AuthReject, login: "maria", nas: "bras-centro", reason: frlog.ReasonWrongPassword, at: "2026-11-25T17:02:14Z",
				attrs: map[string]string{"request": "10", "client": "bras1", "module": "chap"}},
		},
		{
			name: "mschap",
			line: `Tue Nov 25 14:02:15 2026 : Auth: (11) Login incorrect (mschap: MS-CHAP2-Response is incorrect): [maria] (from client bras1 port 3 cli 52-54-00-AA-00-03)`,
			want: want{kind: watcher.AuthReject, login: "maria", nas: "bras-centro", mac: "52:54:00:AA:00:03", reason: frlog.ReasonWrongPassword, at: "2026-11-25T17:02:15Z",
				attrs: map[string]string{"NAS-Port": "3", "request": "11", "client": "bras1", "module": "mschap"}},
		},
		{
			name: "multiple logins",
			line: `Tue Nov 25 14:02:16 2026 : Auth: (12) Multiple logins (max 1) : [joao] (from client bras1 port 15728640 cli AA-BB-CC-DD-EE-FF)`,
			want: want{kind: watcher.AuthReject, login: "joao", nas: "bras-centro", mac: "AA:BB:CC:DD:EE:FF", reason: frlog.ReasonMultipleLogins, at: "2026-11-25T17:02:16Z",
				attrs: map[string]string{"NAS-Port": "15728640", "request": "12", "client": "bras1", "hint": "multiple_logins", "max_logins": "1"}},
		},
		{
			name:   "multiple logins, MPP attempt, auth_goodpass",
			line:   `Tue Nov 25 14:02:17 2026 : Auth: (13) Multiple logins (max 2) [MPP attempt]: [joao/pw] (from client bras1 port 1 cli AA-BB-CC-DD-EE-FF)`,
			secret: "/pw",
			want: want{kind: watcher.AuthReject, login: "joao", nas: "bras-centro", mac: "AA:BB:CC:DD:EE:FF", reason: frlog.ReasonMultipleLogins, at: "2026-11-25T17:02:17Z",
				attrs: map[string]string{"NAS-Port": "1", "request": "13", "client": "bras1", "hint": "multiple_logins", "max_logins": "2", "mpp": "yes"}},
		},
		{
			name: "invalid user",
			line: `Tue Nov 25 14:02:18 2026 : Auth: (14) Invalid user: [ghost] (from client bras1 port 0)`,
			want: want{kind: watcher.AuthReject, login: "ghost", nas: "bras-centro", reason: frlog.ReasonUnknownUser, at: "2026-11-25T17:02:18Z",
				attrs: map[string]string{"request": "14", "client": "bras1"}},
		},
		{
			name:   "invalid user with a module message",
			line:   `Tue Nov 25 14:02:19 2026 : Auth: (15) Invalid user (expiration: Account expired at 'Nov 20 2026 00:00:00 -03'): [joao/x1] (from client bras1 port 0)`,
			secret: "x1",
			want: want{kind: watcher.AuthReject, login: "joao", nas: "bras-centro", reason: "expiration: Account expired at 'Nov 20 2026 00:00:00 -03'", at: "2026-11-25T17:02:19Z",
				attrs: map[string]string{"request": "15", "client": "bras1", "module": "expiration"}},
		},
		{
			name: "invalid user, rlm_sql 2.x instance",
			line: `Tue Nov 25 14:02:20 2026 : Auth: Invalid user (rlm_sql (sql): User not found): [ghost] (from client bras1 port 0)`,
			want: want{kind: watcher.AuthReject, login: "ghost", nas: "bras-centro", reason: frlog.ReasonUnknownUser, at: "2026-11-25T17:02:20Z",
				attrs: map[string]string{"client": "bras1", "module": "rlm_sql (sql)"}},
		},
		{
			name:   "no Auth-Type found",
			line:   `Wed Nov 25 10:11:48 2026 : Auth: (3) Login incorrect (No Auth-Type found: rejecting the user via Post-Auth-Type = Reject): [nobody/nobody123] (from client bras1 port 0 cli 52:54:00:aa:00:03)`,
			secret: "nobody123",
			want: want{kind: watcher.AuthReject, login: "nobody", nas: "bras-centro", mac: "52:54:00:AA:00:03", reason: frlog.ReasonUnknownUser, at: "2026-11-25T13:11:48Z",
				attrs: map[string]string{"request": "3", "client": "bras1"}},
		},
		{
			name: "no password sent",
			line: `Wed Nov 25 10:11:49 2026 : Auth: (7) Login incorrect (No Auth-Type found: rejecting the user via Post-Auth-Type = Reject): [maria/<no User-Password attribute>] (from client bras1 port 0)`,
			want: want{kind: watcher.AuthReject, login: "maria", nas: "bras-centro", reason: frlog.ReasonNoPassword, at: "2026-11-25T13:11:49Z",
				attrs: map[string]string{"request": "7", "client": "bras1"}},
		},
		{
			name: "via TLS tunnel",
			line: `Tue Nov 25 14:02:21 2026 : Auth: (16) Login OK: [joao] (from client bras1 port 0 cli AA-BB-CC-DD-EE-FF via TLS tunnel)`,
			want: want{kind: watcher.AuthAccept, login: "joao", nas: "bras-centro", mac: "AA:BB:CC:DD:EE:FF", at: "2026-11-25T17:02:21Z",
				attrs: map[string]string{"request": "16", "client": "bras1", "via": "TLS tunnel"}},
		},
		{
			name:   "via proxy to virtual server, no cli",
			line:   `Tue Nov 25 14:02:22 2026 : Auth: (17) Login incorrect (pap: Cleartext password does not match "known good" password): [joao/abc] (from client bras1 port 0 via proxy to virtual server)`,
			secret: "abc",
			want: want{kind: watcher.AuthReject, login: "joao", nas: "bras-centro", reason: frlog.ReasonWrongPassword, at: "2026-11-25T17:02:22Z",
				attrs: map[string]string{"request": "17", "client": "bras1", "module": "pap", "via": "proxy to virtual server"}},
		},
		{
			name: "day padded with a space",
			line: `Thu Nov  5 08:00:00 2026 : Auth: (1) Login OK: [ana] (from client bras1 port 9)`,
			want: want{kind: watcher.AuthAccept, login: "ana", nas: "bras-centro", at: "2026-11-05T11:00:00Z",
				attrs: map[string]string{"NAS-Port": "9", "request": "1", "client": "bras1"}},
		},
		{
			name: "calling station not a MAC",
			line: `Tue Nov 25 14:02:23 2026 : Auth: (18) Login OK: [ana] (from client bras1 port 0 cli 10.0.0.9)`,
			want: want{kind: watcher.AuthAccept, login: "ana", nas: "bras-centro", at: "2026-11-25T17:02:23Z",
				attrs: map[string]string{"request": "18", "client": "bras1", "Calling-Station-Id": "10.0.0.9"}},
		},
		{
			name:   "a module message holding the password is withheld",
			line:   `Tue Nov 25 14:02:24 2026 : Auth: (19) Login incorrect (my_policy: password hunter22 expired): [ana/hunter22] (from client bras1 port 0)`,
			secret: "hunter22",
			want: want{kind: watcher.AuthReject, login: "ana", nas: "bras-centro", reason: "my_policy: (message withheld: it contained the password)", at: "2026-11-25T17:02:24Z",
				attrs: map[string]string{"request": "19", "client": "bras1", "module": "my_policy"}},
		},
		{
			name:   "msg_badpass after the parenthesis is ignored",
			line:   `Tue Nov 25 14:02:25 2026 : Auth: (20) Login incorrect (pap: Cleartext password does not match "known good" password): [ana/Pa55word] (from client bras1 port 0) senha=Pa55word`,
			secret: "Pa55word",
			want: want{kind: watcher.AuthReject, login: "ana", nas: "bras-centro", reason: frlog.ReasonWrongPassword, at: "2026-11-25T17:02:25Z",
				attrs: map[string]string{"request": "20", "client": "bras1", "module": "pap"}},
		},
		{
			name:   "user and password imitating the trailer",
			line:   `Tue Nov 25 14:02:26 2026 : Auth: (21) Login incorrect: [we[ird] (from client x port 1 cli 11-22-33-44-55-66)/p] (from client evil port 9 cli 00-11-22-33-44-55)] (from client bras1 port 0 cli AA-BB-CC-DD-EE-FF)`,
			secret: "p] (from client evil",
			want: want{kind: watcher.AuthReject, login: "we[ird] (from client x port 1 cli 11-22-33-44-55-66)", nas: "bras-centro", mac: "AA:BB:CC:DD:EE:FF", reason: frlog.ReasonRejected, at: "2026-11-25T17:02:26Z",
				attrs: map[string]string{"request": "21", "client": "bras1"}},
		},
		{
			name: "escaped user name",
			line: `Tue Nov 25 14:02:27 2026 : Auth: (22) Login OK: [jo\303\243o\\x] (from client bras1 port 0)`,
			want: want{kind: watcher.AuthAccept, login: `joão\x`, nas: "bras-centro", at: "2026-11-25T17:02:27Z",
				attrs: map[string]string{"request": "22", "client": "bras1"}},
		},
		{
			name: "no User-Name",
			line: `Tue Nov 25 14:02:28 2026 : Auth: (23) Login incorrect: [<no User-Name attribute>] (from client bras1 port 0)`,
			want: want{kind: watcher.AuthReject, nas: "bras-centro", reason: frlog.ReasonRejected, at: "2026-11-25T17:02:28Z",
				attrs: map[string]string{"request": "23", "client": "bras1"}},
		},
		{
			name:   "rsyslog RFC 3339, its own offset",
			line:   `2026-11-25T10:01:00.123456-03:00 radius1 freeradius[812]: (0) Login incorrect (pap: Cleartext password does not match "known good" password): [maria/zz9] (from client bras1 port 0)`,
			secret: "zz9",
			want: want{kind: watcher.AuthReject, login: "maria", nas: "bras-centro", reason: frlog.ReasonWrongPassword, at: "2026-11-25T13:01:00.123456Z",
				attrs: map[string]string{"request": "0", "client": "bras1", "module": "pap"}},
		},
		{
			name: "BSD syslog with the level word",
			line: `Nov 25 10:01:00 radius1 radiusd[812]: Auth: (4) Login OK: [maria] (from client bras1 port 0)`,
			want: want{kind: watcher.AuthAccept, login: "maria", nas: "bras-centro", at: "2026-11-25T13:01:00Z",
				attrs: map[string]string{"request": "4", "client": "bras1"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, class, ok := frlog.ParseLine(testCfg, tc.line, sp, now)
			if !ok {
				t.Fatalf("not parsed (%s)", class)
			}
			checkEvent(t, ev, tc.want)
			if tc.secret != "" {
				b, _ := json.Marshal(ev)
				if strings.Contains(string(b), tc.secret) {
					t.Errorf("the password %q is in the event: %s", tc.secret, b)
				}
			}
			if err := ev.Validate(); err != nil {
				t.Errorf("event does not validate: %v", err)
			}
		})
	}
}

func checkEvent(t *testing.T, ev watcher.Event, w want) {
	t.Helper()
	if ev.Kind != w.kind || ev.Login != w.login || ev.NAS != w.nas || ev.MAC != w.mac || ev.Reason != w.reason {
		t.Errorf("got kind %q login %q nas %q mac %q reason %q\nwant kind %q login %q nas %q mac %q reason %q",
			ev.Kind, ev.Login, ev.NAS, ev.MAC, ev.Reason, w.kind, w.login, w.nas, w.mac, w.reason)
	}
	if ev.Source != "freeradius:radius-1" {
		t.Errorf("source %q", ev.Source)
	}
	if w.at != "" && ev.At.UTC().Format(time.RFC3339Nano) != w.at {
		t.Errorf("at %s, want %s", ev.At.UTC().Format(time.RFC3339Nano), w.at)
	}
	var got map[string]string
	if ev.Detail != nil {
		got = ev.Detail.Attributes
	}
	if len(got) != len(w.attrs) {
		t.Errorf("attributes %v, want %v", got, w.attrs)
		return
	}
	for k, v := range w.attrs {
		if got[k] != v {
			t.Errorf("attribute %s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
}

func TestParseLineSkips(t *testing.T) {
	for _, tc := range []struct {
		name, line, class string
	}{
		{"info", `Wed Nov 25 10:00:59 2026 : Info: Ready to process requests`, "other"},
		{"error", `Wed Nov 25 10:00:59 2026 : Error: (3) pap: ERROR: Cleartext password does not match`, "other"},
		{"another program in syslog", `Nov 25 10:01:00 radius1 sshd[99]: Accepted password for root`, "other"},
		{"FreeRADIUS syslog info", `2026-11-25T10:01:00-03:00 radius1 freeradius[812]: Ready to process requests`, "other"},
		{"garbage", `hello world`, "unknown"},
		{"empty", ``, "unknown"},
		{"auth without trailer (truncated line)", `Wed Nov 25 10:00:59 2026 : Auth: (1) Login OK: [joao/abc`, "unknown"},
		{"auth of an unknown kind", `Wed Nov 25 10:00:59 2026 : Auth: (1) Something new: [joao] (from client bras1 port 0)`, "unknown"},
		{"syslog auth that does not parse", `2026-11-25T10:01:00-03:00 radius1 freeradius[812]: (1) Login OK: [joao`, "unknown"},
		{"bad port", `Wed Nov 25 10:00:59 2026 : Auth: (1) Login OK: [joao] (from client bras1 port x)`, "unknown"},
		{"bad date", `Wed Nox 25 10:00:59 2026 : Auth: (1) Login OK: [joao] (from client bras1 port 0)`, "unknown"},
		{"reserved login", `Wed Nov 25 10:00:59 2026 : Auth: (1) Login OK: [*] (from client bras1 port 0)`, "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, class, ok := frlog.ParseLine(testCfg, tc.line, time.UTC, now)
			if ok || class != tc.class {
				t.Errorf("got %s (ok %v), want %s", class, ok, tc.class)
			}
		})
	}
}

// TestLoginWithSlash pins the documented trade-off: the login ends at the
// first '/', because the line does not say whether a password follows.
func TestLoginWithSlash(t *testing.T) {
	ev, _, ok := frlog.ParseLine(testCfg, `Tue Nov 25 14:02:10 2026 : Auth: (7) Login OK: [cond/ana/segredo] (from client bras1 port 0)`, time.UTC, now)
	if !ok || ev.Login != "cond" {
		t.Fatalf("login %q ok %v", ev.Login, ok)
	}
	b, _ := json.Marshal(ev)
	if strings.Contains(string(b), "segredo") || strings.Contains(string(b), "ana") {
		t.Errorf("the text after the first '/' is in the event: %s", b)
	}
}

func TestBSDYear(t *testing.T) {
	// A December line read on the first of January is last year's.
	jan := time.Date(2027, 1, 1, 0, 5, 0, 0, time.UTC)
	ev, _, ok := frlog.ParseLine(testCfg, `Dec 31 23:59:59 r1 freeradius[1]: (1) Login OK: [a] (from client bras1 port 0)`, time.UTC, jan)
	if !ok || ev.At.Year() != 2026 {
		t.Fatalf("at %v ok %v", ev.At, ok)
	}
}
