package frlog

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// What FreeRADIUS prints, from src/main/auth.c and log.c (3.x):
//
//	<ctime> " : " <level> ": " ["(" <request> ") "] <message> ": [" <user> ["/" <password>] "] ("
//	    "from client " <shortname> " port " <NAS-Port> [" cli " <Calling-Station-Id>]
//	    [" via TLS tunnel" | " via proxy to virtual server"] ")" [" " <msg_goodpass/msg_badpass>]
//
// ctime pads the day with a space ("Wed Nov  5"). User name and password are
// escaped (non-printable bytes as \ooo, backslash doubled), so a line never
// breaks inside them, but either may contain any printable text, including
// "/", "]" and "(from client": the parser leans on the fixed parts around
// them, never on their content.
const (
	ctimeLayout = "Mon Jan _2 15:04:05 2006"
	bsdLayout   = "Jan _2 15:04:05"
	fromClient  = "] (from client "
)

// lineClass says what a line turned out to be.
type lineClass int

const (
	classAuth    lineClass = iota // an authentication line, parsed
	classOther                    // another FreeRADIUS line (Info, Error…) or another program's line in a syslog file
	classUnknown                  // a shape the parser does not know
)

// outcome is the message FreeRADIUS logs an authentication with.
type outcome int

const (
	loginOK outcome = iota + 1
	loginIncorrect
	invalidUser
	multipleLogins
)

var outcomes = []struct {
	text string
	o    outcome
}{
	{"Login OK", loginOK},
	{"Login incorrect", loginIncorrect},
	{"Invalid user", invalidUser},
	{"Multiple logins", multipleLogins},
}

// authLine is one authentication line, parsed. It never holds the password.
type authLine struct {
	at      time.Time
	request string // FreeRADIUS's request number, "" before 3.0
	outcome outcome
	reason  string // in plain words (see event.go)
	module  string // the module whose message gave the reason
	bare    bool   // a "Login incorrect" without a message
	maxUses string // Multiple logins: the Simultaneous-Use limit
	mpp     bool   // Multiple logins: "[MPP attempt]"
	login   string
	client  string
	port    string // NAS-Port; "0" when the request had none
	cli     string // Calling-Station-Id as printed
	via     string // "TLS tunnel", "proxy to virtual server"
}

// parseLine reads one line of the log (without its newline). now gives the
// year to BSD syslog timestamps, which have none.
func parseLine(line string, loc *time.Location, now time.Time) (authLine, lineClass) {
	// copytruncate under a writer without O_APPEND leaves a run of NULs
	// where the old content was.
	line = strings.TrimLeft(line, "\x00")
	line = strings.TrimSuffix(line, "\r")
	at, msg, kind := parseHeader(line, loc, now)
	switch kind {
	case headerNone:
		return authLine{}, classUnknown
	case headerForeign:
		return authLine{}, classOther
	case headerCtime:
		level, rest, ok := strings.Cut(msg, ": ")
		if !ok || !isWord(level) {
			return authLine{}, classUnknown
		}
		if level != "Auth" {
			return authLine{}, classOther
		}
		a, ok := parseAuth(rest)
		if !ok {
			return authLine{}, classUnknown
		}
		a.at = at
		return a, classAuth
	}
	// headerSyslog: the level word is there or not, depending on the
	// version and the syslog setup, and FreeRADIUS's other lines have none.
	rest, hadLevel := strings.CutPrefix(msg, "Auth: ")
	a, ok := parseAuth(rest)
	switch {
	case ok:
		a.at = at
		return a, classAuth
	case hadLevel || looksLikeAuth(rest):
		return authLine{}, classUnknown
	}
	return authLine{}, classOther
}

type headerKind int

const (
	headerNone    headerKind = iota
	headerCtime              // radius.log: "<ctime> : Level: msg"
	headerSyslog             // a FreeRADIUS line in a syslog file
	headerForeign            // another program's line in a syslog file
)

// parseHeader splits the timestamp (and the syslog host and tag) from the
// message.
func parseHeader(line string, loc *time.Location, now time.Time) (time.Time, string, headerKind) {
	if stamp, rest, ok := ctimeStamp(line); ok {
		t, err := time.ParseInLocation(ctimeLayout, stamp, loc)
		if err != nil {
			return time.Time{}, "", headerNone
		}
		return t, rest, headerCtime
	}
	var t time.Time
	var rest string
	if stamp, r, ok := rfc3339Stamp(line); ok {
		var err error
		if t, err = time.Parse(time.RFC3339Nano, stamp); err != nil {
			return time.Time{}, "", headerNone
		}
		rest = r
	} else if stamp, r, ok := bsdStamp(line); ok {
		bt, err := time.ParseInLocation(bsdLayout, stamp, loc)
		if err != nil {
			return time.Time{}, "", headerNone
		}
		t, rest = bsdYear(bt, now.In(loc)), r
	} else {
		return time.Time{}, "", headerNone
	}
	// "host tag[pid]: message"
	_, rest, ok := strings.Cut(rest, " ")
	if !ok {
		return time.Time{}, "", headerNone
	}
	tag, msg, ok := strings.Cut(rest, ": ")
	if !ok || strings.Contains(tag, " ") {
		return time.Time{}, "", headerNone
	}
	if name, _, _ := strings.Cut(tag, "["); name != "freeradius" && name != "radiusd" {
		return t, "", headerForeign
	}
	return t, msg, headerSyslog
}

// ctimeStamp cuts "Wed Nov 25 10:01:00 2026 : " from the start of line.
func ctimeStamp(line string) (stamp, rest string, ok bool) {
	if len(line) < 27 || line[24:27] != " : " || line[3] != ' ' || line[7] != ' ' {
		return "", "", false
	}
	return line[:24], line[27:], true
}

// rfc3339Stamp cuts "2026-11-25T10:01:00.123456-03:00 " (rsyslog's file
// format) from the start of line.
func rfc3339Stamp(line string) (stamp, rest string, ok bool) {
	stamp, rest, ok = strings.Cut(line, " ")
	if !ok || len(stamp) < 20 || stamp[4] != '-' || stamp[10] != 'T' {
		return "", "", false
	}
	return stamp, rest, true
}

// bsdStamp cuts "Nov 25 10:01:00 " (the traditional syslog format) from the
// start of line.
func bsdStamp(line string) (stamp, rest string, ok bool) {
	if len(line) < 17 || line[3] != ' ' || line[15] != ' ' || line[9] != ':' {
		return "", "", false
	}
	return line[:15], line[16:], true
}

// bsdYear gives a year-less timestamp the year that puts it closest before
// now: a line from December read in January is last year's.
func bsdYear(t, now time.Time) time.Time {
	y := time.Date(now.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, now.Location())
	if y.After(now.Add(24 * time.Hour)) {
		y = y.AddDate(-1, 0, 0)
	}
	return y
}

// lineStamp returns the timestamp text a line starts with, or "". It names a
// file's first line in the saved position, to tell a file that was rewritten
// (or a recycled inode) from the one that was being read; it is only the
// timestamp, never anything a customer sent.
func lineStamp(line string) string {
	if s, _, ok := ctimeStamp(line); ok {
		if _, err := time.Parse(ctimeLayout, s); err == nil {
			return s
		}
		return ""
	}
	if s, _, ok := rfc3339Stamp(line); ok {
		if _, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return s
		}
		return ""
	}
	if s, _, ok := bsdStamp(line); ok {
		if _, err := time.Parse(bsdLayout, s); err == nil {
			return s
		}
	}
	return ""
}

// looksLikeAuth reports whether msg starts like an authentication line, so
// that one of them that fails to parse is counted as unknown, not ignored.
func looksLikeAuth(msg string) bool {
	_, msg = cutRequest(msg)
	for _, o := range outcomes {
		if strings.HasPrefix(msg, o.text) {
			return true
		}
	}
	return false
}

// cutRequest cuts FreeRADIUS 3's "(7) " request number.
func cutRequest(msg string) (request, rest string) {
	if !strings.HasPrefix(msg, "(") {
		return "", msg
	}
	end := strings.IndexByte(msg, ')')
	if end < 2 || end > 11 || !isDigits(msg[1:end]) {
		return "", msg
	}
	return msg[1:end], strings.TrimPrefix(msg[end+1:], " ")
}

// parseAuth parses the message of an Auth line.
func parseAuth(msg string) (authLine, bool) {
	var a authLine
	a.request, msg = cutRequest(msg)
	for _, o := range outcomes {
		if rest, ok := strings.CutPrefix(msg, o.text); ok {
			a.outcome, msg = o.o, rest
			break
		}
	}
	if a.outcome == 0 {
		return authLine{}, false
	}
	// The password, if printed, lies between the first ": [" (everything
	// before it is FreeRADIUS's message) and the last "] (from client "
	// (everything after is the NAS's data and FreeRADIUS's own text). Cut
	// there, the password cannot leak into any other field, whatever it
	// contains.
	end := strings.LastIndex(msg, fromClient)
	if end < 0 {
		return authLine{}, false
	}
	head, trailer := msg[:end], msg[end+len(fromClient):]
	open := strings.Index(head, ": [")
	if open < 0 {
		return authLine{}, false
	}
	message, bracket := head[:open], head[open+len(": ["):]
	// The login ends at the first '/': see the package documentation.
	user, password, _ := strings.Cut(bracket, "/")
	if !a.setLogin(user) {
		return authLine{}, false
	}
	if !a.setTrailer(trailer) {
		return authLine{}, false
	}
	detail, ok := a.setMessage(message)
	if !ok {
		return authLine{}, false
	}
	a.reason, a.module = reasonOf(a.outcome, detail, password)
	return a, true
}

// secret reports whether the text after the '/' is a password rather than
// one of FreeRADIUS's placeholders.
func secret(p string) bool {
	return p != "" && !(strings.HasPrefix(p, "<") && strings.HasSuffix(p, ">"))
}

// setLogin stores the user name, unescaped.
func (a *authLine) setLogin(user string) bool {
	if user == "<no User-Name attribute>" {
		a.login = ""
		return true
	}
	login := unescape(user)
	if !utf8.ValidString(login) {
		login = strings.ToValidUTF8(login, "\uFFFD")
	}
	if len(login) > 253 || login == "*" {
		return false
	}
	a.login = login
	return true
}

// setTrailer parses "bras1 port 15728640 cli AA-BB-CC-DD-EE-FF via TLS
// tunnel)" and what follows (a configured msg_badpass, ignored: it may be an
// expansion of anything, the password included).
func (a *authLine) setTrailer(t string) bool {
	client, rest, ok := strings.Cut(t, " port ")
	if !ok || client == "" || len(client) > 128 {
		return false
	}
	n := 0
	for n < len(rest) && n < 10 && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 {
		return false
	}
	a.client, a.port, rest = client, rest[:n], rest[n:]
	end := strings.IndexByte(rest, ')')
	if end < 0 {
		return false
	}
	inner := rest[:end]
	for _, via := range []string{" via TLS tunnel", " via proxy to virtual server"} {
		if s, ok := strings.CutSuffix(inner, via); ok {
			a.via, inner = via[len(" via "):], s
			break
		}
	}
	if inner != "" {
		cli, ok := strings.CutPrefix(inner, " cli ")
		if !ok {
			return false
		}
		a.cli = cli
	}
	return true
}

// setMessage parses what follows the outcome: "", " (module: text)", or for
// Multiple logins " (max 1) " and " (max 1) [MPP attempt]". It returns the
// module's message, if any.
func (a *authLine) setMessage(m string) (detail string, ok bool) {
	m = strings.TrimSpace(m)
	if a.outcome == multipleLogins {
		rest, ok := strings.CutPrefix(m, "(max ")
		if !ok {
			return "", false
		}
		max, rest, ok := strings.Cut(rest, ")")
		if !ok || !isDigits(strings.TrimPrefix(max, "-")) {
			return "", false
		}
		a.maxUses, a.mpp = max, strings.Contains(rest, "[MPP attempt]")
		return "", true
	}
	if m == "" {
		a.bare = a.outcome == loginIncorrect
		return "", true
	}
	if strings.HasPrefix(m, "(") && strings.HasSuffix(m, ")") {
		m = m[1 : len(m)-1]
	}
	return m, true
}

// unescape undoes FreeRADIUS's escaping of a user name: \\ \" \n \r \t and
// \ooo (octal bytes).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch n := s[i+1]; {
		case n == '\\' || n == '"':
			b.WriteByte(n)
			i++
		case n == 'n':
			b.WriteByte('\n')
			i++
		case n == 'r':
			b.WriteByte('\r')
			i++
		case n == 't':
			b.WriteByte('\t')
			i++
		case i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]):
			v, _ := strconv.ParseUint(s[i+1:i+4], 8, 16)
			if v > 0xff {
				b.WriteByte(c)
				continue
			}
			b.WriteByte(byte(v))
			i += 3
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isWord reports whether s is a log level as FreeRADIUS prints them (Auth,
// Info, Error, WARNING…).
func isWord(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}
