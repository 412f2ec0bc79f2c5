package frsql

import (
	"database/sql"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"authwatch/watcher"
)

// row is one row of either table, as read: only the columns the schema has
// are filled.
type row struct {
	ID int64

	Login, NAS, MAC, Called, Class sql.NullString

	// radpostauth
	Reply, ReplyMessage sql.NullString
	Time                tsVal

	// radacct
	SessionID, NASPortID, TerminateCause         sql.NullString
	IP, IPv6Address, IPv6Prefix, DelegatedPrefix sql.NullString
	Start, Update, Stop                          tsVal
	SessionTime, InputOctets, OutputOctets       sql.NullInt64
}

// tsVal is a time column as read. Raw is the driver's value, kept to be
// passed back in a query (a cursor compares exactly with what was read);
// Text says it came as text without a zone and Raw holds its wall clock in
// UTC.
type tsVal struct {
	Raw   time.Time
	Valid bool
	Text  bool
}

// textLayouts are the zone-less forms a time stored as text takes.
var textLayouts = []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02"}

// zonedLayouts are the forms with a zone.
var zonedLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07"}

// Scan implements sql.Scanner.
func (v *tsVal) Scan(src any) error {
	*v = tsVal{}
	var s string
	switch x := src.(type) {
	case nil:
		return nil
	case time.Time:
		if x.IsZero() || x.Year() <= 1 {
			return nil // MySQL's 0000-00-00: no time
		}
		v.Raw, v.Valid = x, true
		return nil
	case []byte:
		s = string(x)
	case string:
		s = x
	default:
		return fmt.Errorf("not a time: %T", src)
	}
	s = strings.TrimSpace(s)
	if s == "" || strings.HasPrefix(s, "0000-00-00") {
		return nil
	}
	for _, l := range zonedLayouts {
		if t, err := time.Parse(l, s); err == nil {
			v.Raw, v.Valid = t, true
			return nil
		}
	}
	for _, l := range textLayouts {
		if t, err := time.Parse(l, s); err == nil {
			v.Raw, v.Valid, v.Text = t, true, true
			return nil
		}
	}
	return fmt.Errorf("not a time: %q", s)
}

// at returns when the value says, reading a zone-less wall clock in loc.
func (v tsVal) at(naive bool, loc *time.Location) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	t := v.Raw
	if naive || v.Text {
		t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc)
	}
	return t.UTC()
}

// converter turns rows into events.
type converter struct {
	cfg    Config
	loc    *time.Location
	source string
	now    func() time.Time
}

func (c *converter) timeOf(s *schema, logical string, v tsVal) time.Time {
	col := s.byName[logical]
	if col == nil {
		return time.Time{}
	}
	return v.at(col.naive, c.loc)
}

// postAuthEvent turns a radpostauth row into auth.accept or auth.reject.
// ok is false for a reply that is neither (it is counted, not recorded).
func (c *converter) postAuthEvent(s *schema, r *row) (ev watcher.Event, ok bool) {
	reply := strings.TrimSpace(r.Reply.String)
	switch lower := strings.ToLower(reply); {
	case strings.Contains(lower, "accept"):
		ev.Kind = watcher.AuthAccept
	case strings.Contains(lower, "reject"):
		ev.Kind = watcher.AuthReject
	default:
		return watcher.Event{}, false
	}
	ev.Source = c.source
	ev.Login = r.Login.String
	ev.At = c.timeOf(s, "time", r.Time)
	if ev.At.IsZero() {
		ev.At = c.now().UTC()
	}
	d := &watcher.Detail{}
	c.common(&ev, d, r)
	ev.Reason = strings.TrimSpace(r.ReplyMessage.String)
	if ev.Reason == "" && ev.Kind == watcher.AuthReject {
		ev.Reason = "rejected by server"
	}
	if len(ev.Reason) > 1024 {
		ev.Reason = truncate(ev.Reason, 1024)
	}
	ev.Detail = detailOrNil(d)
	return ev, true
}

// common fills what both tables may have: NAS, MAC, called station, class.
func (c *converter) common(ev *watcher.Event, d *watcher.Detail, r *row) {
	ev.NAS, d.NASIP = c.cfg.nasName(r.NAS.String)
	if cli := strings.TrimSpace(r.MAC.String); cli != "" {
		if ev.MAC = watcher.NormalizeMAC(cli); ev.MAC == "" {
			// A phone number, "unknown"…: visible, not a MAC.
			attr(d, "Calling-Station-Id", cli)
		}
	}
	d.Service = truncate(strings.TrimSpace(r.Called.String), 253)
	if cl := strings.TrimSpace(r.Class.String); cl != "" {
		attr(d, "Class", cl)
	}
}

// acctEvent turns a radacct row into an event of kind k, dated by the column
// that says when that happened.
func (c *converter) acctEvent(s *schema, r *row, k watcher.Kind) watcher.Event {
	ev := watcher.Event{Kind: k, Source: c.source, Login: r.Login.String, SessionID: truncate(r.SessionID.String, 253)}
	switch k {
	case watcher.SessionStart:
		ev.At = c.timeOf(s, "start_time", r.Start)
	case watcher.SessionUpdate:
		ev.At = c.timeOf(s, "update_time", r.Update)
	case watcher.SessionStop:
		ev.At = c.timeOf(s, "stop_time", r.Stop)
	}
	if ev.At.IsZero() {
		ev.At = c.now().UTC()
	}
	d := &watcher.Detail{}
	c.common(&ev, d, r)
	if a, err := parseAddr(strings.TrimSpace(r.IP.String)); err == nil && a.Is4() && !a.IsUnspecified() {
		ev.IP = a.String()
	}
	d.NASPortID = truncate(strings.TrimSpace(r.NASPortID.String), 253)
	d.InputOctets = nonNegative(r.InputOctets)
	d.OutputOctets = nonNegative(r.OutputOctets)
	if st := nonNegative(r.SessionTime); st <= 1<<32-1 {
		d.SessionTime = uint32(st)
	}
	if a, err := parseAddr(strings.TrimSpace(r.IPv6Address.String)); err == nil && a.Is6() && !a.IsUnspecified() {
		d.IPv6Address = a.String()
	}
	d.IPv6Prefix = prefix(r.IPv6Prefix.String)
	d.DelegatedPrefix = prefix(r.DelegatedPrefix.String)
	if k == watcher.SessionStop {
		d.TerminateCause = truncate(strings.TrimSpace(r.TerminateCause.String), 253)
		ev.Reason = d.TerminateCause
	}
	ev.Detail = detailOrNil(d)
	return ev
}

// prefix returns an IPv6 prefix in canonical text, or "".
func prefix(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is6() {
		return ""
	}
	return p.Masked().String()
}

func nonNegative(n sql.NullInt64) uint64 {
	if !n.Valid || n.Int64 < 0 {
		return 0
	}
	return uint64(n.Int64)
}

func attr(d *watcher.Detail, k, v string) {
	if d.Attributes == nil {
		d.Attributes = map[string]string{}
	}
	d.Attributes[k] = truncate(v, 253)
}

func detailOrNil(d *watcher.Detail) *watcher.Detail {
	if reflect.ValueOf(*d).IsZero() {
		return nil
	}
	return d
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
