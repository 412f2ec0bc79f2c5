package frlog

import (
	"strings"
	"time"

	"authwatch/watcher"
)

// Reasons of auth.reject events, in the words the reboot watch and the page
// translate. A reason not listed here is a module's own message.
const (
	ReasonWrongPassword = "wrong password"
	ReasonUnknownUser   = "unknown user"
	ReasonRejected      = "rejected by server"
	// ReasonNoPassword is told apart from ReasonUnknownUser only when
	// FreeRADIUS prints passwords (auth_badpass = yes): it then prints a
	// placeholder for a request without one.
	ReasonNoPassword = "no password sent"
	// ReasonMultipleLogins is FreeRADIUS's "Multiple logins": the login is
	// over its Simultaneous-Use limit because a session is still open —
	// after a power cut, the old one, until the concentrator's keepalive
	// gives up and its Stop arrives (or for hours, when the Stop was lost).
	ReasonMultipleLogins = "already online — an old session is still open (Multiple logins)"
)

// A "Multiple logins" reject carries Detail.Attributes[HintAttribute] =
// HintMultipleLogins (besides its Reason), so the reboot watch can give it
// its own verdict without matching the reason's text. "max_logins" holds the
// Simultaneous-Use limit, and "mpp" = "yes" marks a multilink (MPP) attempt.
const (
	HintAttribute      = "hint"
	HintMultipleLogins = "multiple_logins"
)

// Limits of the text kept from a line.
const (
	maxReason = 512
	maxAttr   = 253
)

// reasonOf turns an outcome and its module's message into the event's
// reason, and says which module the message came from. password is what
// followed the '/' in the brackets: a message that contains it (a module
// printing the password) is used only to pick a canned reason, never shown.
func reasonOf(o outcome, detail, password string) (reason, module string) {
	switch o {
	case loginOK:
		return "", ""
	case multipleLogins:
		return ReasonMultipleLogins, ""
	}
	module = moduleOf(detail)
	withheld := secret(password) && strings.Contains(detail, password)
	if withheld && strings.Contains(module, password) {
		module = ""
	}
	switch {
	case detail == "" && o == invalidUser:
		// The usual "reject when the user is not found" policy in
		// authorize logs exactly this.
		return ReasonUnknownUser, ""
	case detail == "":
		return ReasonRejected, ""
	case wrongPassword(detail):
		return ReasonWrongPassword, module
	case strings.HasPrefix(password, "<no ") && unknownUser(detail):
		// Nothing to check: the router sent no password at all ("<no
		// User-Password attribute>", 2.x "<no Password attribute>").
		return ReasonNoPassword, module
	case unknownUser(detail):
		return ReasonUnknownUser, module
	case withheld && module != "":
		return module + ": (message withheld: it contained the password)", module
	case withheld:
		return "(message withheld: it contained the password)", ""
	}
	return clip(detail, maxReason), module
}

// wrongPassword recognises the messages of the modules that check a
// password: pap (3.x: "Cleartext password does not match \"known good\"
// password", also Crypt, MD5, SHA…; 2.x: "rlm_pap: CLEAR TEXT password check
// failed"), chap ("Password comparison failed: password is incorrect"; 2.x
// "Wrong user password") and mschap ("MS-CHAP2-Response is incorrect").
func wrongPassword(d string) bool {
	d = strings.ToLower(d)
	for _, s := range []string{"password does not match", "password check failed", "password is incorrect", "wrong user password", "response is incorrect", "incorrect password", "invalid password"} {
		if strings.Contains(d, s) {
			return true
		}
	}
	return false
}

// unknownUser recognises messages that mean FreeRADIUS knows no password for
// the login: "No Auth-Type found" (no module took the request: no
// Cleartext-Password from files or SQL), and modules saying so.
func unknownUser(d string) bool {
	d = strings.ToLower(d)
	for _, s := range []string{"no auth-type found", "user not found", "no such user", "unknown user"} {
		if strings.Contains(d, s) {
			return true
		}
	}
	return false
}

// moduleOf returns the module name a message starts with ("pap" in "pap:
// Cleartext…", "rlm_sql (sql)" in 2.x), or "".
func moduleOf(d string) string {
	name, _, ok := strings.Cut(d, ": ")
	if !ok || name == "" || len(name) > 48 {
		return ""
	}
	base, inst, _ := strings.Cut(name, " (")
	if inst != "" && !strings.HasSuffix(inst, ")") {
		return ""
	}
	for i := 0; i < len(base); i++ {
		c := base[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return ""
		}
	}
	return name
}

// event turns a parsed line into the event to record.
func (a authLine) event(cfg Config, source string) watcher.Event {
	ev := watcher.Event{
		At:     a.at,
		Login:  a.login,
		Kind:   watcher.AuthReject,
		Source: source,
		NAS:    clip(cfg.nas(a.client), maxAttr),
		MAC:    watcher.NormalizeMAC(a.cli),
	}
	if a.outcome == loginOK {
		ev.Kind = watcher.AuthAccept
	}
	ev.Reason = a.reason
	attrs := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			attrs[k] = clip(v, maxAttr)
		}
	}
	if a.port != "0" {
		set("NAS-Port", a.port)
	}
	if ev.MAC == "" {
		set("Calling-Station-Id", a.cli)
	}
	if ev.NAS != a.client {
		set("client", a.client)
	}
	set("request", a.request)
	set("module", a.module)
	set("via", a.via)
	if a.outcome == multipleLogins {
		attrs[HintAttribute] = HintMultipleLogins
		set("max_logins", a.maxUses)
		if a.mpp {
			attrs["mpp"] = "yes"
		}
	}
	if len(attrs) > 0 {
		ev.Detail = &watcher.Detail{Attributes: attrs}
	}
	return ev
}

// clip cuts s to at most n bytes, on a rune boundary, and makes it valid
// UTF-8.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// mergeWindow is how far apart in time the two lines FreeRADIUS 3.2 logs for
// one rejected request may be.
const mergeWindow = 2 * time.Second

// merger drops the bare "Login incorrect" that FreeRADIUS 3.2 logs, in
// post-auth, after a request it already logged as "Invalid user", "Multiple
// logins" or "Login incorrect (reason)": one attempt, one event, with the
// informative reason. A bare line never absorbs another bare line, so two
// real attempts in a row (2.x lines have no request number) both count.
type merger struct {
	recent [32]mergeKey
	next   int
}

type mergeKey struct {
	request, login, client, port, cli string
	at                                time.Time
}

func keyOf(a authLine) mergeKey {
	return mergeKey{request: a.request, login: a.login, client: a.client, port: a.port, cli: a.cli, at: a.at}
}

// duplicate reports whether a is the echo of a reject seen just before, and
// remembers a if it may have an echo.
func (m *merger) duplicate(a authLine) bool {
	if a.outcome == loginOK {
		return false
	}
	k := keyOf(a)
	if a.bare {
		for i, r := range m.recent {
			if r.at.IsZero() {
				continue
			}
			d := k.at.Sub(r.at)
			if d >= 0 && d <= mergeWindow && r.request == k.request && r.login == k.login &&
				r.client == k.client && r.port == k.port && r.cli == k.cli {
				m.recent[i] = mergeKey{} // one echo per reject
				return true
			}
		}
		return false
	}
	m.recent[m.next] = k
	m.next = (m.next + 1) % len(m.recent)
	return false
}
