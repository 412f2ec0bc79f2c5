package routeros

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"authwatch/watcher"
)

// sessionProps are the /ppp/active properties read by polls (=.proplist=).
const sessionProps = ".id,name,service,caller-id,address,uptime,encoding,session-id,radius"

// row is one /ppp/active item as the source keeps it, keyed by its .id:
// listen reports removals with nothing but the .id and .dead.
type row struct {
	id        string // .id, e.g. *80000123
	name      string // the PPPoE login
	service   string // pppoe, l2tp, …
	callerID  string // as the router reports it
	mac       string // caller-id normalised, "" when it is not a MAC
	ip        string // IPv4 (or v6) address; "" while the router shows 0.0.0.0
	sessionID string // session-id normalised to match RADIUS Acct-Session-Id, or the .id
	rawSID    string // session-id as the router reports it
	uptime    string
	encoding  string
	radius    string
}

// sameSession reports whether a and b describe one PPP session (as opposed
// to a reused .id after a router reboot).
func (a row) sameSession(b row) bool {
	return a.name == b.name && a.sessionID == b.sessionID && a.callerID == b.callerID && a.service == b.service
}

var errNoID = errors.New("no .id")

// parseRow reads a /ppp/active item from an API reply. It refuses items
// authwatch could not key or attribute: no .id, no name, a name that is not
// a plausible login.
func parseRow(m map[string]string) (row, error) {
	r := row{
		id:       m[".id"],
		name:     m["name"],
		service:  clean(m["service"], 64),
		callerID: clean(m["caller-id"], 64),
		uptime:   clean(m["uptime"], 32),
		encoding: clean(m["encoding"], 64),
		radius:   clean(m["radius"], 8),
		rawSID:   clean(m["session-id"], 64),
	}
	if r.id == "" {
		return row{}, errNoID
	}
	if len(r.id) > 32 || !utf8.ValidString(r.id) {
		return row{}, fmt.Errorf("bad .id %q", trunc(r.id, 32))
	}
	if err := checkLogin(r.name); err != nil {
		return row{}, fmt.Errorf("item %s: %w", r.id, err)
	}
	r.mac = watcher.NormalizeMAC(r.callerID)
	r.ip = parseAddress(m["address"])
	r.sessionID = normalizeSessionID(r.rawSID)
	if r.sessionID == "" {
		r.sessionID = r.id
	}
	return r, nil
}

// checkLogin refuses what cannot be a customer's login.
func checkLogin(login string) error {
	switch {
	case login == "":
		return errors.New("no name")
	case len(login) > 253:
		return errors.New("name longer than 253 bytes")
	case !utf8.ValidString(login):
		return errors.New("name is not valid UTF-8")
	case login == watcher.Firehose:
		return errors.New(`name "*" is reserved`)
	}
	for _, c := range login {
		if c < 0x20 || c == 0x7f {
			return errors.New("name has control characters")
		}
	}
	return nil
}

// parseAddress returns the session's address in canonical form, or "" for
// the 0.0.0.0 placeholder RouterOS shows before IPCP assigns one, and for
// anything that is not an address.
func parseAddress(s string) string {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || a.IsUnspecified() {
		return ""
	}
	return a.Unmap().String()
}

// normalizeSessionID turns RouterOS' "0x81A00003" into "81a00003", the form
// RouterOS sends as Acct-Session-Id, so that a session seen through both
// RADIUS accounting and the API has one id (unconfirmed against every
// RouterOS version: the raw value is kept in the event's detail).
func normalizeSessionID(s string) string {
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		hex := s[2:]
		for i := 0; i < len(hex); i++ {
			c := hex[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return s
			}
		}
		return strings.ToLower(hex)
	}
	return s
}

// parseUptime reads RouterOS durations: "1w2d3h4m5s", "5s", "150ms",
// "00:01:02", "1d00:01:02", "1d 00:01:02". ok is false for anything else.
func parseUptime(s string) (d time.Duration, ok bool) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, ":") {
		return parseUnits(s)
	}
	k := strings.LastIndexFunc(s, func(r rune) bool { return !(r >= '0' && r <= '9' || r == ':') }) + 1
	if pre := strings.TrimSpace(s[:k]); pre != "" {
		if d, ok = parseUnits(pre); !ok {
			return 0, false
		}
	}
	parts := strings.Split(s[k:], ":")
	if len(parts) != 3 {
		return 0, false
	}
	var secs time.Duration
	for _, p := range parts {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return 0, false
		}
		secs = secs*60 + time.Duration(n)
	}
	return d + secs*time.Second, true
}

// parseUnits reads "1w2d3h4m5s"-style durations (and ms).
func parseUnits(s string) (d time.Duration, ok bool) {
	if s == "" {
		return 0, false
	}
	num := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		var unit time.Duration
		switch c {
		case '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			if num > 1e7 {
				return 0, false // longer than any router has been up
			}
			num = max(num, 0)*10 + int(c-'0')
			continue
		case 'w':
			unit = 7 * 24 * time.Hour
		case 'd':
			unit = 24 * time.Hour
		case 'h':
			unit = time.Hour
		case 'm':
			unit = time.Minute
			if i+1 < len(s) && s[i+1] == 's' {
				unit = time.Millisecond
				i++
			}
		case 's':
			unit = time.Second
		default:
			return 0, false
		}
		if num < 0 {
			return 0, false
		}
		d += time.Duration(num) * unit
		num = -1
	}
	return d, num < 0
}

// change is one difference between the known table and the router.
type change struct {
	kind watcher.Kind // SessionStart, SessionUpdate or SessionStop
	r    row          // the row as it is now (as it was, for a stop)
}

// diff compares the rows the source has recorded with a full read of
// /ppp/active and returns what changed: stops first, then starts and
// updates, each sorted by .id so that events come out in a stable order. A
// row whose .id was reused by a different session (after a router reboot) is
// a stop and a start; a row that only aged (uptime) is no change.
func diff(known, snap map[string]row) []change {
	var stops, rest []change
	for id, old := range known {
		now, ok := snap[id]
		if !ok || !now.sameSession(old) {
			stops = append(stops, change{watcher.SessionStop, old})
		}
	}
	for id, now := range snap {
		old, ok := known[id]
		switch {
		case !ok || !now.sameSession(old):
			rest = append(rest, change{watcher.SessionStart, now})
		case now.ip != old.ip || now.mac != old.mac:
			rest = append(rest, change{watcher.SessionUpdate, now})
		}
	}
	byID := func(a, b change) int { return strings.Compare(a.r.id, b.r.id) }
	slices.SortFunc(stops, byID)
	slices.SortFunc(rest, byID)
	return append(stops, rest...)
}

// clean makes s fit to store: valid UTF-8, at most n bytes (cut on a rune
// boundary).
func clean(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return trunc(s, n)
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
