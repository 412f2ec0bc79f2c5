package radius_test

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc3162"
	"layeh.com/radius/rfc4818"
	"layeh.com/radius/rfc6911"

	authradius "authwatch/radius"
	"authwatch/radius/radiustest"
	"authwatch/watcher"
)

var (
	testSecret = []byte("s3cret")
	received   = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
)

func TestDecode(t *testing.T) {
	start := radiustest.Acct{
		Status:          rfc2866.AcctStatusType_Value_Start,
		User:            "alice",
		SessionID:       "81500001",
		MAC:             "aa-bb-cc-00-11-22",
		IP:              netip.MustParseAddr("100.64.0.10"),
		NASIP:           netip.MustParseAddr("10.0.0.1"),
		NASPortID:       "ether2.100",
		Service:         "pppoe-centro",
		IPv6Prefix:      netip.MustParsePrefix("2804:db8:100:1::/64"),
		DelegatedPrefix: netip.MustParsePrefix("2804:db8:100::/56"),
		IPv6Address:     netip.MustParseAddr("2804:db8:ff::5"),
	}
	base := watcher.Event{At: received, Login: "alice", Source: "radius", NAS: "bras-centro", SessionID: "81500001"}
	ev := func(kind watcher.Kind, mod func(*watcher.Event)) watcher.Event {
		e := base
		e.Kind = kind
		e.Detail = &watcher.Detail{}
		if mod != nil {
			mod(&e)
		}
		return e
	}
	short := func(status rfc2866.AcctStatusType) radiustest.Acct {
		return radiustest.Acct{Status: status, User: "alice", SessionID: "81500001"}
	}
	with := func(a radiustest.Acct, f func(*radiustest.Acct)) radiustest.Acct { f(&a); return a }
	extra := func(a radiustest.Acct, t radius.Type, v []byte) radiustest.Acct {
		a.Extra = append(append(radius.Attributes(nil), a.Extra...), &radius.AVP{Type: t, Attribute: v})
		return a
	}

	tests := []struct {
		name     string
		acct     radiustest.Acct
		want     watcher.Event     // Detail.Attributes is checked by attrs
		attrs    map[string]string // a subset of Detail.Attributes
		problems []string          // substrings, one per expected problem
	}{
		{
			name: "start with everything",
			acct: start,
			want: ev(watcher.SessionStart, func(e *watcher.Event) {
				e.MAC, e.IP = "AA:BB:CC:00:11:22", "100.64.0.10"
				*e.Detail = watcher.Detail{
					NASIP: "10.0.0.1", NASPortID: "ether2.100", Service: "pppoe-centro",
					IPv6Prefix: "2804:db8:100:1::/64", DelegatedPrefix: "2804:db8:100::/56", IPv6Address: "2804:db8:ff::5",
				}
			}),
			attrs: map[string]string{
				"User-Name": "alice", "Acct-Status-Type": "Start", "Calling-Station-Id": "aa-bb-cc-00-11-22",
				"Framed-IP-Address": "100.64.0.10", "Framed-IPv6-Prefix": "2804:db8:100:1::/64",
				"Delegated-IPv6-Prefix": "2804:db8:100::/56", "Framed-IPv6-Address": "2804:db8:ff::5",
			},
		},
		{
			name: "interim with gigawords",
			acct: with(short(rfc2866.AcctStatusType_Value_InterimUpdate), func(a *radiustest.Acct) {
				a.InputOctets, a.OutputOctets = 5<<32+123, 1<<32
				a.InputPackets, a.OutputPackets, a.SessionTime = 1000, 2000, 3600
			}),
			want: ev(watcher.SessionUpdate, func(e *watcher.Event) {
				*e.Detail = watcher.Detail{InputOctets: 5<<32 + 123, OutputOctets: 1 << 32, InputPackets: 1000, OutputPackets: 2000, SessionTime: 3600}
			}),
			attrs: map[string]string{"Acct-Input-Gigawords": "5", "Acct-Input-Octets": "123"},
		},
		{
			name: "stop with terminate cause",
			acct: with(short(rfc2866.AcctStatusType_Value_Stop), func(a *radiustest.Acct) {
				a.TerminateCause = rfc2866.AcctTerminateCause_Value_LostCarrier
			}),
			want: ev(watcher.SessionStop, func(e *watcher.Event) {
				e.Reason = "Lost-Carrier"
				e.Detail.TerminateCause = "Lost-Carrier"
			}),
			attrs: map[string]string{"Acct-Terminate-Cause": "Lost-Carrier"},
		},
		{
			name: "stop with RFC 3580 cause",
			acct: with(short(rfc2866.AcctStatusType_Value_Stop), func(a *radiustest.Acct) { a.TerminateCause = 21 }),
			want: ev(watcher.SessionStop, func(e *watcher.Event) { e.Reason, e.Detail.TerminateCause = "Port-Reinit", "Port-Reinit" }),
		},
		{
			name: "stop with unknown cause",
			acct: with(short(rfc2866.AcctStatusType_Value_Stop), func(a *radiustest.Acct) { a.TerminateCause = 99 }),
			want: ev(watcher.SessionStop, func(e *watcher.Event) {
				e.Reason, e.Detail.TerminateCause = "Terminate-Cause-99", "Terminate-Cause-99"
			}),
			attrs: map[string]string{"Acct-Terminate-Cause": "99"},
		},
		{
			name: "accounting-on is nas.up",
			acct: radiustest.Acct{Status: rfc2866.AcctStatusType_Value_AccountingOn, NASIP: netip.MustParseAddr("10.0.0.1")},
			want: watcher.Event{At: received, Kind: watcher.NASUp, Source: "radius", NAS: "bras-centro", Reason: "Accounting-On", Detail: &watcher.Detail{NASIP: "10.0.0.1"}},
		},
		{
			name: "accounting-off is nas.down",
			acct: radiustest.Acct{Status: rfc2866.AcctStatusType_Value_AccountingOff},
			want: watcher.Event{At: received, Kind: watcher.NASDown, Source: "radius", NAS: "bras-centro", Reason: "Accounting-Off", Detail: &watcher.Detail{}},
		},
		{
			name: "other status types become log events",
			acct: short(rfc2866.AcctStatusType_Value_Failed),
			want: ev(watcher.Log, func(e *watcher.Event) { e.Reason = "Acct-Status-Type Failed" }),
		},
		{
			name: "unknown status type",
			acct: short(42),
			want: ev(watcher.Log, func(e *watcher.Event) { e.Reason = "Acct-Status-Type 42" }),
		},
		{
			name: "delay time corrects the time",
			acct: with(short(rfc2866.AcctStatusType_Value_InterimUpdate), func(a *radiustest.Acct) { a.DelayTime = 90 }),
			want: ev(watcher.SessionUpdate, func(e *watcher.Event) {
				e.At = received.Add(-90 * time.Second)
				e.Detail.DelaySeconds = 90
			}),
		},
		{
			name: "event timestamp takes precedence",
			acct: with(short(rfc2866.AcctStatusType_Value_Stop), func(a *radiustest.Acct) {
				a.DelayTime, a.EventTime = 90, received.Add(-time.Hour)
			}),
			want: ev(watcher.SessionStop, func(e *watcher.Event) {
				e.At = received.Add(-time.Hour)
				e.Detail.DelaySeconds = 90
			}),
			attrs: map[string]string{"Event-Timestamp": "2025-03-01T11:00:00Z"},
		},
		{
			name: "event timestamp in the future is ignored",
			acct: with(short(rfc2866.AcctStatusType_Value_Start), func(a *radiustest.Acct) {
				a.DelayTime, a.EventTime = 5, received.Add(time.Hour)
			}),
			want: ev(watcher.SessionStart, func(e *watcher.Event) {
				e.At = received.Add(-5 * time.Second)
				e.Detail.DelaySeconds = 5
			}),
			problems: []string{"Event-Timestamp"},
		},
		{
			name:     "event timestamp of a NAS without a clock is ignored",
			acct:     with(short(rfc2866.AcctStatusType_Value_Start), func(a *radiustest.Acct) { a.EventTime = time.Unix(86400, 0) }),
			want:     ev(watcher.SessionStart, nil),
			problems: []string{"Event-Timestamp"},
		},
		{
			name:     "implausible delay is not applied",
			acct:     with(short(rfc2866.AcctStatusType_Value_Start), func(a *radiustest.Acct) { a.DelayTime = 30 * 86400 }),
			want:     ev(watcher.SessionStart, func(e *watcher.Event) { e.Detail.DelaySeconds = 30 * 86400 }),
			problems: []string{"Acct-Delay-Time"},
		},
		{
			name:  "calling station that is not a MAC",
			acct:  with(short(rfc2866.AcctStatusType_Value_Start), func(a *radiustest.Acct) { a.MAC = "5511999990000" }),
			want:  ev(watcher.SessionStart, nil),
			attrs: map[string]string{"Calling-Station-Id": "5511999990000"},
		},
		{
			name: "MAC in Cisco notation",
			acct: with(short(rfc2866.AcctStatusType_Value_Start), func(a *radiustest.Acct) { a.MAC = "aabb.cc00.1122" }),
			want: ev(watcher.SessionStart, func(e *watcher.Event) { e.MAC = "AA:BB:CC:00:11:22" }),
		},
		{
			name:     "IPv6 prefix too short an attribute",
			acct:     extra(short(rfc2866.AcctStatusType_Value_Start), rfc3162.FramedIPv6Prefix_Type, []byte{0}),
			want:     ev(watcher.SessionStart, nil),
			attrs:    map[string]string{"Framed-IPv6-Prefix": "0x00"},
			problems: []string{"Framed-IPv6-Prefix: attribute length"},
		},
		{
			name:     "IPv6 prefix too long an attribute",
			acct:     extra(short(rfc2866.AcctStatusType_Value_Start), rfc3162.FramedIPv6Prefix_Type, make([]byte, 19)),
			want:     ev(watcher.SessionStart, nil),
			problems: []string{"Framed-IPv6-Prefix: attribute length"},
		},
		{
			name:     "delegated prefix length over 128",
			acct:     extra(short(rfc2866.AcctStatusType_Value_Start), rfc4818.DelegatedIPv6Prefix_Type, append([]byte{0, 129}, make([]byte, 16)...)),
			want:     ev(watcher.SessionStart, nil),
			problems: []string{"Delegated-IPv6-Prefix: prefix length 129"},
		},
		{
			name:     "delegated prefix field shorter than its length",
			acct:     extra(short(rfc2866.AcctStatusType_Value_Start), rfc4818.DelegatedIPv6Prefix_Type, []byte{0, 56, 0x28, 0x04}),
			want:     ev(watcher.SessionStart, nil),
			problems: []string{"Delegated-IPv6-Prefix: prefix field shorter"},
		},
		{
			name: "prefix in the short form, host bits cleared",
			acct: extra(short(rfc2866.AcctStatusType_Value_Start), rfc4818.DelegatedIPv6Prefix_Type,
				[]byte{0, 56, 0x28, 0x04, 0x0d, 0xb8, 0x01, 0x00, 0x00, 0x80 /* bit 57 set */}),
			want: ev(watcher.SessionStart, func(e *watcher.Event) { e.Detail.DelegatedPrefix = "2804:db8:100::/56" }),
		},
		{
			name: "bad IPv6 attributes do not spoil the good ones",
			acct: extra(extra(with(start, func(a *radiustest.Acct) { a.IPv6Prefix = netip.Prefix{} }),
				rfc3162.FramedIPv6Prefix_Type, []byte{0, 200, 1, 2}), rfc6911.FramedIPv6Address_Type, make([]byte, 8)),
			want: ev(watcher.SessionStart, func(e *watcher.Event) {
				e.MAC, e.IP = "AA:BB:CC:00:11:22", "100.64.0.10"
				*e.Detail = watcher.Detail{
					NASIP: "10.0.0.1", NASPortID: "ether2.100", Service: "pppoe-centro",
					DelegatedPrefix: "2804:db8:100::/56", IPv6Address: "2804:db8:ff::5",
				}
			}),
			problems: []string{"Framed-IPv6-Prefix: prefix length 200"},
		},
		{
			name:     "framed IPv6 address of the wrong length",
			acct:     extra(short(rfc2866.AcctStatusType_Value_Start), rfc6911.FramedIPv6Address_Type, make([]byte, 8)),
			want:     ev(watcher.SessionStart, nil),
			problems: []string{"Framed-IPv6-Address: length 8, want 16"},
		},
		{
			name:     "integer of the wrong size",
			acct:     extra(short(rfc2866.AcctStatusType_Value_InterimUpdate), rfc2866.AcctInputOctets_Type, []byte{1, 2, 3}),
			want:     ev(watcher.SessionUpdate, nil),
			attrs:    map[string]string{"Acct-Input-Octets": "0x010203"},
			problems: []string{"Acct-Input-Octets: length 3, want 4"},
		},
		{
			name: "vendor attributes, no secrets",
			acct: extra(extra(extra(short(rfc2866.AcctStatusType_Value_Start),
				rfc2865.VendorSpecific_Type, radiustest.VSA(14988, 8 /* Mikrotik-Rate-Limit */, []byte("10M/20M"))),
				rfc2865.UserPassword_Type, make([]byte, 16)),
				rfc2865.VendorSpecific_Type, radiustest.VSA(311, 11, make([]byte, 16))),
			want:  ev(watcher.SessionStart, nil),
			attrs: map[string]string{"26:14988:8": "10M/20M"},
		},
		{
			name: "invalid UTF-8 and NUL padding are cleaned",
			acct: radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "jos\xe9", SessionID: "abc\x00\x00"},
			want: watcher.Event{At: received, Kind: watcher.SessionStart, Source: "radius", NAS: "bras-centro",
				Login: "jos\uFFFD", SessionID: "abc", Detail: &watcher.Detail{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := parse(t, tt.acct)
			got, problems, err := authradius.Decode(p, "bras-centro", received)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("decoded event does not validate: %v", err)
			}
			attrs := got.Detail.Attributes
			got.Detail.Attributes = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("event\n got %+v %+v\nwant %+v %+v", got, *got.Detail, tt.want, *tt.want.Detail)
			}
			for k, v := range tt.attrs {
				if attrs[k] != v {
					t.Errorf("Attributes[%q] = %q, want %q (all: %v)", k, attrs[k], v, attrs)
				}
			}
			for k, v := range attrs {
				if strings.Contains(k, "Password") || k == "26:311:11" || k == "Message-Authenticator" {
					t.Errorf("secret attribute %q = %q in Attributes", k, v)
				}
			}
			if len(problems) != len(tt.problems) {
				t.Fatalf("problems = %v, want %d like %q", problems, len(tt.problems), tt.problems)
			}
			for i, want := range tt.problems {
				if !strings.Contains(problems[i].Error(), want) {
					t.Errorf("problem %d = %q, want it to contain %q", i, problems[i], want)
				}
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	tests := []struct {
		name string
		p    func() *radius.Packet
		want error
	}{
		{"no status type", func() *radius.Packet {
			p := radius.New(radius.CodeAccountingRequest, testSecret)
			rfc2865.UserName_SetString(p, "alice")
			return p
		}, authradius.ErrNoStatusType},
		{"status type of the wrong size", func() *radius.Packet {
			p := radius.New(radius.CodeAccountingRequest, testSecret)
			p.Add(rfc2866.AcctStatusType_Type, radius.Attribute{1})
			return p
		}, authradius.ErrNoStatusType},
		{"access request", func() *radius.Packet {
			p := radius.New(radius.CodeAccessRequest, testSecret)
			rfc2866.AcctStatusType_Set(p, rfc2866.AcctStatusType_Value_Start)
			return p
		}, authradius.ErrNotAccounting},
		{"firehose login", func() *radius.Packet {
			p := radius.New(radius.CodeAccountingRequest, testSecret)
			rfc2866.AcctStatusType_Set(p, rfc2866.AcctStatusType_Value_Start)
			rfc2865.UserName_SetString(p, "*")
			return p
		}, authradius.ErrReservedLogin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := authradius.Decode(tt.p(), "nas", received)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzDecode feeds raw datagrams through the listener's decode path: parse,
// decode. Nothing may panic, and whatever decodes must be storable.
func FuzzDecode(f *testing.F) {
	for _, a := range []radiustest.Acct{
		{Status: rfc2866.AcctStatusType_Value_Start, User: "alice", SessionID: "1", MAC: "aa:bb:cc:dd:ee:ff", IP: netip.MustParseAddr("10.1.2.3"),
			IPv6Prefix: netip.MustParsePrefix("2804:db8::/64"), DelegatedPrefix: netip.MustParsePrefix("2804:db8:1::/56")},
		{Status: rfc2866.AcctStatusType_Value_Stop, User: "bob", InputOctets: 1 << 40, TerminateCause: 2, DelayTime: 10, EventTime: received},
		{Status: rfc2866.AcctStatusType_Value_AccountingOn, Extra: radius.Attributes{{Type: 26, Attribute: radiustest.VSA(14988, 8, []byte("1M/1M"))}}},
	} {
		b, err := a.Encode(testSecret)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{4, 1, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := radius.Parse(b, testSecret)
		if err != nil {
			return
		}
		ev, _, err := authradius.Decode(p, "nas", received)
		if err != nil {
			return
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("decoded event does not validate: %v\n%+v", err, ev)
		}
		if ev.MAC != "" && watcher.NormalizeMAC(ev.MAC) != ev.MAC {
			t.Fatalf("MAC %q is not normalised", ev.MAC)
		}
		for k, v := range ev.Detail.Attributes {
			if k == "User-Password" || k == "Message-Authenticator" {
				t.Fatalf("secret attribute %q = %q kept", k, v)
			}
		}
	})
}

func parse(t testing.TB, a radiustest.Acct) *radius.Packet {
	t.Helper()
	b, err := a.Encode(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	p, err := radius.Parse(b, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
