package watcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind says what an Event is about.
type Kind string

// The kinds of event. The strings are part of the wire contract.
const (
	AuthAccept    Kind = "auth.accept"
	AuthReject    Kind = "auth.reject"
	SessionStart  Kind = "session.start"
	SessionUpdate Kind = "session.update"
	SessionStop   Kind = "session.stop"
	NASUp         Kind = "nas.up"
	NASDown       Kind = "nas.down"
	HTTPUp        Kind = "http.up"
	HTTPDown      Kind = "http.down"
	Action        Kind = "action"
	Log           Kind = "log"
)

var kinds = map[Kind]bool{
	AuthAccept: true, AuthReject: true, SessionStart: true, SessionUpdate: true,
	SessionStop: true, NASUp: true, NASDown: true, HTTPUp: true, HTTPDown: true,
	Action: true, Log: true,
}

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool { return kinds[k] }

// Event is one fact about a customer's connection, from any source. Its JSON
// form is the wire contract of the API and the websocket.
type Event struct {
	Seq       int64     `json:"seq"`
	At        time.Time `json:"at"`
	Login     string    `json:"login"`
	Kind      Kind      `json:"kind"`
	Source    string    `json:"source"`
	NAS       string    `json:"nas,omitempty"`
	SessionID string    `json:"session_id,omitempty"`
	MAC       string    `json:"mac,omitempty"`
	IP        string    `json:"ip,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Detail    *Detail   `json:"detail,omitempty"`

	// detailJSON is Detail encoded by the Recorder while the event is
	// queued, on the goroutine of whoever recorded it: the store's single
	// writer then copies it instead of encoding on its serial path. Cleared
	// once the event is committed.
	detailJSON []byte
}

// DetailJSON returns Detail as JSON (nil without a Detail).
func (ev *Event) DetailJSON() ([]byte, error) {
	if ev.Detail == nil {
		return nil, nil
	}
	if ev.detailJSON != nil {
		return ev.detailJSON, nil
	}
	b, err := json.Marshal(ev.Detail)
	if err != nil {
		return nil, fmt.Errorf("encode detail: %w", err)
	}
	return b, nil
}

// Detail holds what an event knows beyond the common fields. Every field is
// optional; sources fill what they have.
type Detail struct {
	NASIP          string `json:"nas_ip,omitempty"`
	NASPortID      string `json:"nas_port_id,omitempty"`
	Service        string `json:"service,omitempty"`
	InputOctets    uint64 `json:"input_octets,omitempty"`
	OutputOctets   uint64 `json:"output_octets,omitempty"`
	InputPackets   uint64 `json:"input_packets,omitempty"`
	OutputPackets  uint64 `json:"output_packets,omitempty"`
	SessionTime    uint32 `json:"session_time,omitempty"` // seconds
	TerminateCause string `json:"terminate_cause,omitempty"`
	DelaySeconds   uint32 `json:"delay_seconds,omitempty"` // Acct-Delay-Time the time was corrected by

	// IPv6 in canonical text: addresses bare, prefixes as addr/len.
	IPv6Address     string `json:"ipv6_address,omitempty"`
	IPv6Prefix      string `json:"ipv6_prefix,omitempty"`
	DelegatedPrefix string `json:"delegated_prefix,omitempty"`

	Uptime string `json:"uptime,omitempty"`

	HTTPStatus int     `json:"http_status,omitempty"`
	HTTPTitle  string  `json:"http_title,omitempty"`
	LatencyMS  float64 `json:"latency_ms,omitempty"`
	URL        string  `json:"url,omitempty"`

	// Attributes are the raw attributes as received, for the curious agent.
	Attributes map[string]string `json:"attributes,omitempty"`

	// RouterCheck is what a RouterOS router said of the session when it
	// got its address; nil when it was not asked.
	RouterCheck *RouterCheck `json:"router_check,omitempty"`
}

// RouterCheck is what a RouterOS router said of one session: the simple
// queue that shapes it (its plan) and which of the [blocked] firewall
// address-lists hold its IP.
type RouterCheck struct {
	Queue string `json:"queue,omitempty"` // the /queue/simple item's name
	// MaxLimit is the queue's max-limit as the router prints it:
	// upload/download of the customer ("150M/300M"), the order of
	// Mikrotik-Rate-Limit too.
	MaxLimit string `json:"max_limit,omitempty"`
	// ListsChecked says the address-lists were read; AddressLists then
	// names the [blocked] ones holding the session's IP (none: not blocked).
	ListsChecked bool     `json:"lists_checked,omitempty"`
	AddressLists []string `json:"address_lists,omitempty"`
}

// Limits on field sizes; longer input is refused, so that one bad source cannot
// bloat the store.
const (
	maxLoginLen  = 253
	maxFieldLen  = 253
	maxReasonLen = 1024
)

// Validate reports the first problem that makes e unfit to store.
func (e *Event) Validate() error {
	switch {
	case !e.Kind.Valid():
		return fmt.Errorf("event: unknown kind %q", e.Kind)
	case e.At.IsZero():
		return errors.New("event: no time")
	case e.Source == "":
		return errors.New("event: no source")
	case len(e.Login) > maxLoginLen:
		return fmt.Errorf("event: login longer than %d bytes", maxLoginLen)
	case len(e.Reason) > maxReasonLen:
		return fmt.Errorf("event: reason longer than %d bytes", maxReasonLen)
	case e.Login == "*":
		return errors.New(`event: login "*" is reserved for the firehose`)
	}
	for name, v := range map[string]string{"login": e.Login, "source": e.Source, "nas": e.NAS, "session_id": e.SessionID, "mac": e.MAC, "ip": e.IP, "reason": e.Reason} {
		if !utf8.ValidString(v) {
			return fmt.Errorf("event: %s is not valid UTF-8", name)
		}
		if name != "reason" && len(v) > maxFieldLen {
			return fmt.Errorf("event: %s longer than %d bytes", name, maxFieldLen)
		}
	}
	return nil
}

// NormalizeMAC returns s as AA:BB:CC:DD:EE:FF when it is a 48-bit MAC address
// in any of the usual spellings (aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff,
// aabbccddeeff, with or without separators), and "" otherwise.
func NormalizeMAC(s string) string {
	var hex [12]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'A' && c <= 'F':
		case c >= 'a' && c <= 'f':
			c -= 'a' - 'A'
		case c == ':' || c == '-' || c == '.':
			continue
		default:
			return ""
		}
		if n == len(hex) {
			return ""
		}
		hex[n] = c
		n++
	}
	if n != len(hex) {
		return ""
	}
	var b strings.Builder
	b.Grow(17)
	for i := 0; i < len(hex); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteByte(hex[i])
		b.WriteByte(hex[i+1])
	}
	return b.String()
}

// LookupKind classifies a lookup query: a MAC address, an IP address, an IP
// prefix ("2804:db8:100::/56"), or a login prefix. It returns the query in the form the store keeps it.
func LookupKind(q string) (kind, value string) {
	q = strings.TrimSpace(q)
	// IP first: an IPv6 address with 12 hex digits would pass for a MAC,
	// while no MAC spelling parses as an IP.
	if a, err := netip.ParseAddr(q); err == nil {
		return "ip", a.Unmap().String()
	}
	if p, err := netip.ParsePrefix(q); err == nil {
		return "prefix", p.Masked().String()
	}
	if mac := NormalizeMAC(q); mac != "" && (strings.ContainsAny(q, ":-.") || !isAllDigits(q)) {
		// A bare run of 12 digits is more likely a numeric login than a MAC.
		return "mac", mac
	}
	return "login", q
}

func isAllDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
