package radius

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/rfc3162"
	"layeh.com/radius/rfc4818"
	"layeh.com/radius/rfc6911"

	"authwatch/watcher"
)

// Source is the watcher.Event Source of every event the Listener records.
const Source = "radius"

// Errors that make an Accounting-Request impossible to record. The Listener
// counts such packets as malformed and does not answer them.
var (
	ErrNotAccounting = errors.New("not an Accounting-Request")
	ErrNoStatusType  = errors.New("no valid Acct-Status-Type")
	ErrReservedLogin = errors.New(`User-Name "*" is reserved for the firehose`)
)

// Bounds on the times a NAS reports. A NAS that buffered accounting through an
// outage may report hours of Acct-Delay-Time, but not weeks; a clock more than
// a few minutes ahead of ours is wrong.
const (
	maxEventAge   = 7 * 24 * time.Hour
	maxClockAhead = 5 * time.Minute
)

// AttributeError is a problem with one attribute that Decode left out of the
// event. The rest of the event is still good to store.
type AttributeError struct {
	Attribute string // its name, e.g. "Framed-IPv6-Prefix"
	Err       error
}

func (e *AttributeError) Error() string { return e.Attribute + ": " + e.Err.Error() }
func (e *AttributeError) Unwrap() error { return e.Err }

// Decode turns an Accounting-Request from the NAS named nas, received at
// received, into an Event. It is pure: no I/O, no clock, no secret needed
// (the caller verified the packet).
//
// A packet that cannot become an event (not an Accounting-Request, no
// Acct-Status-Type, a reserved login) returns an error. Attributes that are
// malformed but optional are left out and reported in problems; the event is
// still valid. Every event Decode returns passes watcher.Event.Validate.
func Decode(p *radius.Packet, nas string, received time.Time) (ev watcher.Event, problems []error, err error) {
	if p.Code != radius.CodeAccountingRequest {
		return watcher.Event{}, nil, fmt.Errorf("%w: %v", ErrNotAccounting, p.Code)
	}
	status, ok := integer(p.Attributes, rfc2866.AcctStatusType_Type)
	if !ok {
		return watcher.Event{}, nil, ErrNoStatusType
	}
	d := &watcher.Detail{}
	ev = watcher.Event{
		Source:    Source,
		NAS:       nas,
		Login:     text(p.Get(rfc2865.UserName_Type)),
		SessionID: text(p.Get(rfc2866.AcctSessionID_Type)),
		Detail:    d,
	}
	if ev.Login == watcher.Firehose {
		return watcher.Event{}, nil, ErrReservedLogin
	}
	ev.Kind, ev.Reason = kindOf(rfc2866.AcctStatusType(status))

	problem := func(t radius.Type, err error) {
		problems = append(problems, &AttributeError{Attribute: attrName(t), Err: err})
	}
	// lookup returns the first attribute of type t that has the expected
	// length (any when want < 0), and reports one that has not.
	lookup := func(t radius.Type, want int) (radius.Attribute, bool) {
		a, ok := p.Lookup(t)
		if !ok {
			return nil, false
		}
		if want >= 0 && len(a) != want {
			problem(t, fmt.Errorf("length %d, want %d", len(a), want))
			return nil, false
		}
		return a, true
	}
	u32 := func(t radius.Type) uint32 {
		if a, ok := lookup(t, 4); ok {
			return binary.BigEndian.Uint32(a)
		}
		return 0
	}

	if raw := p.Get(rfc2865.CallingStationID_Type); raw != nil {
		// A non-MAC value (a phone number, "unknown") stays visible in
		// Detail.Attributes only.
		ev.MAC = watcher.NormalizeMAC(text(raw))
	}
	if a, ok := lookup(rfc2865.FramedIPAddress_Type, 4); ok {
		ev.IP = netip.AddrFrom4([4]byte(a)).String()
	}
	if a, ok := lookup(rfc2865.NASIPAddress_Type, 4); ok {
		d.NASIP = netip.AddrFrom4([4]byte(a)).String()
	} else if a, ok := lookup(rfc3162.NASIPv6Address_Type, 16); ok {
		d.NASIP = netip.AddrFrom16([16]byte(a)).String()
	}
	d.NASPortID = text(p.Get(rfc2869.NASPortID_Type))
	d.Service = text(p.Get(rfc2865.CalledStationID_Type))

	d.InputOctets = uint64(u32(rfc2869.AcctInputGigawords_Type))<<32 | uint64(u32(rfc2866.AcctInputOctets_Type))
	d.OutputOctets = uint64(u32(rfc2869.AcctOutputGigawords_Type))<<32 | uint64(u32(rfc2866.AcctOutputOctets_Type))
	d.InputPackets = uint64(u32(rfc2866.AcctInputPackets_Type))
	d.OutputPackets = uint64(u32(rfc2866.AcctOutputPackets_Type))
	d.SessionTime = u32(rfc2866.AcctSessionTime_Type)

	if a, ok := lookup(rfc2866.AcctTerminateCause_Type, 4); ok {
		d.TerminateCause = terminateCause(binary.BigEndian.Uint32(a))
		if ev.Kind == watcher.SessionStop {
			ev.Reason = d.TerminateCause
		}
	}

	for _, v6 := range []struct {
		t   radius.Type
		dst *string
	}{
		{rfc3162.FramedIPv6Prefix_Type, &d.IPv6Prefix},
		{rfc4818.DelegatedIPv6Prefix_Type, &d.DelegatedPrefix},
	} {
		if a, ok := lookup(v6.t, -1); ok {
			if pfx, err := ipv6Prefix(a); err != nil {
				problem(v6.t, err)
			} else {
				*v6.dst = pfx.String()
			}
		}
	}
	if a, ok := lookup(rfc6911.FramedIPv6Address_Type, 16); ok {
		d.IPv6Address = netip.AddrFrom16([16]byte(a)).String()
	}

	ev.At, d.DelaySeconds = eventTime(received, lookup, problem)
	d.Attributes = attributeMap(p.Attributes)
	return ev, problems, nil
}

// eventTime is when the event happened: Event-Timestamp when the NAS sent a
// plausible one, else the receive time less Acct-Delay-Time.
func eventTime(received time.Time, lookup func(radius.Type, int) (radius.Attribute, bool), problem func(radius.Type, error)) (time.Time, uint32) {
	received = received.UTC()
	var delay uint32
	at := received
	if a, ok := lookup(rfc2866.AcctDelayTime_Type, 4); ok {
		delay = binary.BigEndian.Uint32(a)
		if d := time.Duration(delay) * time.Second; d <= maxEventAge {
			at = received.Add(-d)
		} else {
			problem(rfc2866.AcctDelayTime_Type, fmt.Errorf("%d s is implausible; time not corrected", delay))
		}
	}
	if a, ok := lookup(rfc2869.EventTimestamp_Type, 4); ok {
		ts := time.Unix(int64(binary.BigEndian.Uint32(a)), 0).UTC()
		if ts.After(received.Add(maxClockAhead)) || ts.Before(received.Add(-maxEventAge)) {
			problem(rfc2869.EventTimestamp_Type, fmt.Errorf("%s is too far from the receive time %s; ignored", ts.Format(time.RFC3339), received.Format(time.RFC3339)))
		} else {
			at = ts
		}
	}
	return at, delay
}

// kindOf maps Acct-Status-Type to an event kind. Accounting-On means the NAS
// (re)booted, so its sessions are gone: nas.up; Accounting-Off: nas.down.
// Other types (Failed, tunnel accounting) are still stored, as a log event,
// because the NAS expects an answer and the agent may want to see them.
func kindOf(s rfc2866.AcctStatusType) (watcher.Kind, string) {
	switch s {
	case rfc2866.AcctStatusType_Value_Start:
		return watcher.SessionStart, ""
	case rfc2866.AcctStatusType_Value_InterimUpdate:
		return watcher.SessionUpdate, ""
	case rfc2866.AcctStatusType_Value_Stop:
		return watcher.SessionStop, ""
	case rfc2866.AcctStatusType_Value_AccountingOn:
		return watcher.NASUp, "Accounting-On"
	case rfc2866.AcctStatusType_Value_AccountingOff:
		return watcher.NASDown, "Accounting-Off"
	}
	if name, ok := rfc2866.AcctStatusType_Strings[s]; ok {
		return watcher.Log, "Acct-Status-Type " + name
	}
	return watcher.Log, "Acct-Status-Type " + strconv.FormatUint(uint64(s), 10)
}

// terminateCause is the RFC name of an Acct-Terminate-Cause value.
func terminateCause(v uint32) string {
	if name, ok := rfc2866.AcctTerminateCause_Strings[rfc2866.AcctTerminateCause(v)]; ok {
		return name
	}
	return "Terminate-Cause-" + strconv.FormatUint(uint64(v), 10)
}

func integer(attrs radius.Attributes, t radius.Type) (uint32, bool) {
	a, ok := attrs.Lookup(t)
	if !ok || len(a) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(a), true
}

func attrName(t radius.Type) string {
	if info, ok := attrInfos[t]; ok {
		return info.name
	}
	return strconv.Itoa(int(t))
}
