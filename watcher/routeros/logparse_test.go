package routeros

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestParseLogLine runs the parser over real-looking RouterOS v6 and v7
// lines, as topics and message.
func TestParseLogLine(t *testing.T) {
	for _, tc := range []struct {
		topics, msg string
		want        logLine
		drop        bool // no event: no login
		ignore      bool // topics not followed
	}{
		// Authentication.
		{topics: "pppoe,ppp,error", msg: "<0010>: user joao authentication failed",
			want: logLine{meaning: logAuthFailed, rule: "auth-failed", login: "joao", reason: "authentication failed"}},
		{topics: "pppoe,ppp,error", msg: `<pppoe-0>: user "maria.silva@isp" authentication failed`,
			want: logLine{meaning: logAuthFailed, rule: "auth-failed", login: "maria.silva@isp", reason: "authentication failed"}},
		{topics: "ppp,error", msg: "<1a2b>: user 12345 authentication failed - bad password",
			want: logLine{meaning: logAuthFailed, rule: "auth-failed", login: "12345", reason: "authentication failed: bad password"}},
		{topics: "pppoe,ppp,info", msg: "<pppoe-joao>: authenticated",
			want: logLine{meaning: logAuthOK, rule: "authenticated", login: "joao", reason: "authenticated"}},
		{topics: "l2tp,ppp,info", msg: "<l2tp-ana>: authenticated",
			want: logLine{meaning: logAuthOK, rule: "authenticated", login: "ana", reason: "authenticated"}},
		// Session life.
		{topics: "pppoe,ppp,info", msg: "<pppoe-joao>: connected",
			want: logLine{meaning: logConnected, rule: "connected", login: "joao", reason: "<pppoe-joao>: connected"}},
		{topics: "pppoe,ppp,info", msg: "<pppoe-joao>: terminating... - peer is not responding",
			want: logLine{meaning: logTerminating, rule: "terminating", login: "joao", reason: "peer is not responding", cause: "Lost-Carrier"}},
		{topics: "pppoe,ppp,info", msg: "<pppoe-joao>: terminating... - hungup",
			want: logLine{meaning: logTerminating, rule: "terminating", login: "joao", reason: "hungup", cause: "User-Request"}},
		{topics: "pppoe,ppp,info", msg: "<pppoe-joao>: terminating... - session timeout",
			want: logLine{meaning: logTerminating, rule: "terminating", login: "joao", reason: "session timeout", cause: "Session-Timeout"}},
		{topics: "ppp,info", msg: "<pppoe-joao>: terminating...",
			want: logLine{meaning: logTerminating, rule: "terminating", login: "joao", reason: "terminating"}},
		{topics: "pppoe,ppp,info", msg: "<pppoe-joao>: disconnected",
			want: logLine{meaning: logDisconnected, rule: "disconnected", login: "joao", reason: "<pppoe-joao>: disconnected"}},
		// Accounting (v7 with MAC, v6 without).
		{topics: "pppoe,ppp,info,account", msg: "joao logged in, 10.99.0.2 from 52:54:00:AA:00:03",
			want: logLine{meaning: logLoggedIn, rule: "logged-in", login: "joao", reason: "joao logged in, 10.99.0.2 from 52:54:00:AA:00:03", ip: "10.99.0.2", mac: "52:54:00:AA:00:03"}},
		{topics: "ppp,info,account", msg: "joao logged in, 10.99.0.2",
			want: logLine{meaning: logLoggedIn, rule: "logged-in", login: "joao", reason: "joao logged in, 10.99.0.2", ip: "10.99.0.2"}},
		{topics: "pppoe,ppp,info,account", msg: "joao logged out, 143 115036 112418 106 92 from 52:54:00:AA:00:03",
			want: logLine{meaning: logLoggedOut, rule: "logged-out", login: "joao", reason: "joao logged out, 143 115036 112418 106 92 from 52:54:00:AA:00:03",
				mac: "52:54:00:AA:00:03", sessionTime: 143, inOctets: 115036, outOctets: 112418, inPackets: 106, outPackets: 92, hasCounters: true}},
		{topics: "ppp,info,account", msg: "joao logged out, 3600 1 2 3 4",
			want: logLine{meaning: logLoggedOut, rule: "logged-out", login: "joao", reason: "joao logged out, 3600 1 2 3 4",
				sessionTime: 3600, inOctets: 1, outOctets: 2, inPackets: 3, outPackets: 4, hasCounters: true}},
		// RADIUS.
		{topics: "radius,debug", msg: "RADIUS server 10.0.0.5 is not responding",
			want: logLine{meaning: logRadiusTimeout, rule: "radius-timeout", reason: "RADIUS server 10.0.0.5 not responding", server: "10.0.0.5"}},
		{topics: "radius,debug", msg: "radius server 10.0.0.5:1812 not responding",
			want: logLine{meaning: logRadiusTimeout, rule: "radius-timeout", reason: "RADIUS server 10.0.0.5:1812 not responding", server: "10.0.0.5:1812"}},
		{topics: "radius,debug", msg: "sending Access-Request with id 55 to 10.0.0.5:1812", drop: true},
		// Other lines that name a login are kept as they are.
		{topics: "pppoe,ppp,debug", msg: "<pppoe-joao>: LCP lowerup",
			want: logLine{meaning: logOther, rule: "iface-other", login: "joao", reason: "<pppoe-joao>: LCP lowerup"}},
		{topics: "pppoe,ppp,info", msg: "<0011>: user joao is already connected",
			want: logLine{meaning: logOther, rule: "user-other", login: "joao", reason: "<0011>: user joao is already connected"}},
		// No login: dropped (and counted by the source).
		{topics: "pppoe,info", msg: "PPPoE connection established from 18:FD:74:22:23:B7", drop: true},
		{topics: "pppoe,ppp,info", msg: "<0010>: waiting for call...", drop: true},
		{topics: "ppp,info", msg: "", drop: true},
		// Topics not followed: administrators and the rest of the system.
		{topics: "system,info,account", msg: "user admin logged in from 10.0.0.9 via winbox", ignore: true},
		{topics: "system,error,critical", msg: "login failure for user admin from 10.0.0.9 via api", ignore: true},
		{topics: "dhcp,info", msg: "dhcp1 assigned 192.168.88.254 to 52:54:00:AA:00:03", ignore: true},
	} {
		t.Run(tc.msg, func(t *testing.T) {
			if keep := keepTopics(tc.topics); keep == tc.ignore {
				t.Fatalf("keepTopics(%q) = %v", tc.topics, keep)
			}
			if tc.ignore {
				return
			}
			got, ok := parseLogLine(tc.msg)
			if ok == tc.drop {
				t.Fatalf("parseLogLine ok = %v, got %+v", ok, got)
			}
			if !tc.drop && got != tc.want {
				t.Fatalf("parseLogLine\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestLogRulesCovered checks every rule of the table is exercised by the
// captures in testdata, so a rule cannot rot unnoticed.
func TestLogRulesCovered(t *testing.T) {
	f, err := os.Open("testdata/log-lines.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		topics, msg, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("bad testdata line %q", line)
		}
		if !keepTopics(topics) {
			continue
		}
		if l, ok := parseLogLine(msg); ok {
			seen[l.rule]++
		}
	}
	for _, r := range logRules {
		if seen[r.name] == 0 {
			t.Errorf("rule %s matches no line in testdata/log-lines.txt", r.name)
		}
	}
}

func FuzzParseLogLine(f *testing.F) {
	for _, s := range []string{
		"<0010>: user joao authentication failed",
		"<pppoe-joao>: terminating... - peer is not responding",
		"joao logged out, 143 115036 112418 106 92 from 52:54:00:AA:00:03",
		"joao logged in, 10.99.0.2 from 52:54:00:AA:00:03",
		"RADIUS server 10.0.0.5 is not responding",
		"<pppoe->: x", "<>: user  authentication failed", "\xff\xfe logged in, ::1 from x",
		"joao logged out, 99999999999999999999 1 2 3 4",
	} {
		f.Add("pppoe,ppp,info", s)
	}
	f.Fuzz(func(t *testing.T, topics, msg string) {
		keepTopics(topics)
		l, ok := parseLogLine(msg)
		if !ok {
			return
		}
		if l.meaning != logRadiusTimeout {
			if err := checkLogin(l.login); err != nil {
				t.Fatalf("accepted login %q: %v", l.login, err)
			}
		}
		if !utf8.ValidString(l.reason) || len(l.reason) > maxLogMessage {
			t.Fatalf("reason %q", l.reason)
		}
	})
}
