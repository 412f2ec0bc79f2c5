package routeros

import (
	"regexp"
	"strconv"
	"strings"

	"authwatch/watcher"
)

// logMeaning is what a RouterOS log line says about a customer.
type logMeaning int

const (
	logOther         logMeaning = iota // names a login; kept as a log event
	logAuthOK                          // the router accepted the login
	logAuthFailed                      // the router (or its RADIUS) refused it
	logLoggedIn                        // account topic: session up, with IP and MAC
	logLoggedOut                       // account topic: session down, with counters
	logTerminating                     // the router is ending the session, and why
	logConnected                       // PPP link up
	logDisconnected                    // PPP link down
	logRadiusTimeout                   // RADIUS server not answering: NAS-wide
)

var meaningNames = [...]string{"other", "auth-ok", "auth-failed", "logged-in", "logged-out", "terminating", "connected", "disconnected", "radius-timeout"}

func (m logMeaning) String() string {
	if int(m) < len(meaningNames) {
		return meaningNames[m]
	}
	return "meaning(" + strconv.Itoa(int(m)) + ")"
}

// logLine is what parseLogLine understood of one line.
type logLine struct {
	meaning logMeaning
	rule    string // the table entry that matched
	login   string // "" only for NAS-wide lines (logRadiusTimeout)
	reason  string // the router's own words: "authentication failed", "peer is not responding"
	cause   string // RADIUS Acct-Terminate-Cause equivalent of reason, when known
	ip      string
	mac     string
	server  string // the RADIUS server a timeout is about

	sessionTime           uint32
	inOctets, outOctets   uint64
	inPackets, outPackets uint64
	hasCounters           bool
}

// ifacePrefix matches the name RouterOS gives a PPP server interface once the
// user is known: <pppoe-joao>, <l2tp-joao>… Before that the interface is a
// bare number (<0010>) and the line names the user in its text, if at all.
const ifacePrefix = `^<(?:pppoe|l2tp|pptp|sstp|ovpn|ppp)-(.+?)>: `

// logRule is one known RouterOS log message format. Rules are tried in
// order; the first whose pattern matches the message wins.
type logRule struct {
	name    string
	meaning logMeaning
	re      *regexp.Regexp
	// fill copies the submatches into l; login is always group 1 unless
	// the rule says otherwise by leaving l.login set.
	fill func(m []string, l *logLine)
}

// logRules are the message formats of RouterOS v6 and v7 that matter to an
// agent, from captures (see DOMAIN.md). Topics are shown for reference;
// matching is on the message alone because topic sets vary between
// versions ("ppp,info,account" vs "pppoe,ppp,info,account").
var logRules = []logRule{
	{
		// pppoe,ppp,error: "<0010>: user joao authentication failed". The
		// interface is not yet named after the user. Some builds quote the
		// user or add a detail after the phrase; keep it in the reason.
		name: "auth-failed", meaning: logAuthFailed,
		re: regexp.MustCompile(`^<[^>]*>: user "?(.+?)"? authentication failed(?:\s*[-:,]\s*(.+))?$`),
		fill: func(m []string, l *logLine) {
			l.reason = "authentication failed"
			if m[2] != "" {
				l.reason += ": " + m[2]
			}
		},
	},
	{
		// pppoe,ppp,info: "<pppoe-joao>: authenticated"
		name: "authenticated", meaning: logAuthOK,
		re:   regexp.MustCompile(ifacePrefix + `authenticated$`),
		fill: func(m []string, l *logLine) { l.reason = "authenticated" },
	},
	{
		// pppoe,ppp,info: "<pppoe-joao>: terminating... - peer is not
		// responding" (also "- hungup", "- disconnected", "- session
		// timeout"…); v6 sometimes ends at "terminating...".
		name: "terminating", meaning: logTerminating,
		re: regexp.MustCompile(ifacePrefix + `terminating\.{0,3}(?:\s*-\s*(.+))?$`),
		fill: func(m []string, l *logLine) {
			l.reason = strings.TrimSpace(m[2])
			if l.reason == "" {
				l.reason = "terminating"
			}
			l.cause = terminateCauses[strings.ToLower(l.reason)]
		},
	},
	{
		// pppoe,ppp,info: "<pppoe-joao>: disconnected"
		name: "disconnected", meaning: logDisconnected,
		re: regexp.MustCompile(ifacePrefix + `disconnected$`),
	},
	{
		// pppoe,ppp,info: "<pppoe-joao>: connected"
		name: "connected", meaning: logConnected,
		re: regexp.MustCompile(ifacePrefix + `connected$`),
	},
	{
		// pppoe,ppp,info,account: "joao logged in, 10.99.0.2 from
		// 52:54:00:AA:00:03" (v7); v6 has no "from MAC".
		name: "logged-in", meaning: logLoggedIn,
		re: regexp.MustCompile(`^(\S+) logged in, (\S+?)(?: from (\S+))?$`),
		fill: func(m []string, l *logLine) {
			l.ip = parseAddress(m[2])
			l.mac = watcher.NormalizeMAC(m[3])
		},
	},
	{
		// pppoe,ppp,info,account: "joao logged out, 143 115036 112418 106
		// 92 from 52:54:00:AA:00:03": session seconds, then bytes in and
		// out, packets in and out (as the router counts them).
		name: "logged-out", meaning: logLoggedOut,
		re: regexp.MustCompile(`^(\S+) logged out, (\d+) (\d+) (\d+) (\d+) (\d+)(?: from (\S+))?$`),
		fill: func(m []string, l *logLine) {
			secs, _ := strconv.ParseUint(m[2], 10, 32)
			l.sessionTime = uint32(secs)
			l.inOctets, _ = strconv.ParseUint(m[3], 10, 64)
			l.outOctets, _ = strconv.ParseUint(m[4], 10, 64)
			l.inPackets, _ = strconv.ParseUint(m[5], 10, 64)
			l.outPackets, _ = strconv.ParseUint(m[6], 10, 64)
			l.hasCounters = true
			l.mac = watcher.NormalizeMAC(m[7])
		},
	},
	{
		// radius,…: "RADIUS server 10.0.0.5 is not responding" (wording
		// unconfirmed across versions; case and "is" are optional here).
		name: "radius-timeout", meaning: logRadiusTimeout,
		re: regexp.MustCompile(`(?i)^radius server (\S+?) (?:is )?not responding`),
		fill: func(m []string, l *logLine) {
			l.server, l.login = m[1], ""
			l.reason = "RADIUS server " + m[1] + " not responding"
		},
	},
	{
		// Anything else on a named PPP interface: "<pppoe-joao>: LCP …".
		name: "iface-other", meaning: logOther,
		re: regexp.MustCompile(ifacePrefix + `(.+)$`),
	},
	{
		// Anything else about a user on an unnamed interface:
		// "<0010>: user joao …".
		name: "user-other", meaning: logOther,
		re: regexp.MustCompile(`^<[^>]*>: user "?([^"\s]+)"? (.+)$`),
	},
}

// terminateCauses maps the reason RouterOS gives when it terminates a PPP
// session to the RADIUS Acct-Terminate-Cause an accounting Stop would carry.
// "disconnected" (an admin removed the session) is unconfirmed.
var terminateCauses = map[string]string{
	"hungup":                 "User-Request",
	"peer is not responding": "Lost-Carrier",
	"disconnected":           "Admin-Reset",
	"session timeout":        "Session-Timeout",
	"idle timeout":           "Idle-Timeout",
}

// keepTopics reports whether a log line's topics are ones authwatch follows:
// pppoe, ppp, radius or account — but not system, whose "account" lines are
// administrators (authwatch's own API login among them), not customers.
func keepTopics(topics string) bool {
	keep := false
	for t := range strings.SplitSeq(topics, ",") {
		switch strings.TrimSpace(t) {
		case "system":
			return false
		case "pppoe", "ppp", "radius", "account", "l2tp", "pptp", "sstp", "ovpn":
			keep = true
		}
	}
	return keep
}

// maxLogMessage bounds the message parsed; RouterOS lines are far shorter.
const maxLogMessage = 1024

// parseLogLine applies logRules to one message. ok is false when no rule
// matches or the login a rule found is not a plausible one; such lines are
// dropped by the caller (and counted). It never panics, whatever the input.
func parseLogLine(message string) (l logLine, ok bool) {
	message = strings.TrimSpace(clean(message, maxLogMessage))
	for i := range logRules {
		r := &logRules[i]
		m := r.re.FindStringSubmatch(message)
		if m == nil {
			continue
		}
		l = logLine{meaning: r.meaning, rule: r.name, reason: message}
		if len(m) > 1 {
			l.login = m[1]
		}
		if r.fill != nil {
			// Pad so fill can index optional groups that did not take part.
			for len(m) < 8 {
				m = append(m, "")
			}
			r.fill(m, &l)
		}
		if l.meaning == logRadiusTimeout {
			return l, true
		}
		if checkLogin(l.login) != nil {
			return logLine{}, false
		}
		return l, true
	}
	return logLine{}, false
}
