package radiustest

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/rfc3162"
	"layeh.com/radius/rfc4818"
	"layeh.com/radius/rfc6911"
)

// Acct describes an Accounting-Request. Zero fields are not sent.
type Acct struct {
	Status    rfc2866.AcctStatusType // Start, Interim-Update, Stop, Accounting-On…
	User      string                 // User-Name
	SessionID string                 // Acct-Session-Id
	MAC       string                 // Calling-Station-Id, sent as written
	IP        netip.Addr             // Framed-IP-Address (IPv4)
	NASIP     netip.Addr             // NAS-IP-Address (IPv4)
	NASPortID string                 // NAS-Port-Id
	Service   string                 // Called-Station-Id

	// Octet counters beyond 32 bits are split into Gigawords, as a NAS does.
	InputOctets, OutputOctets   uint64
	InputPackets, OutputPackets uint32
	SessionTime                 uint32 // Acct-Session-Time, seconds

	TerminateCause rfc2866.AcctTerminateCause
	DelayTime      uint32    // Acct-Delay-Time, seconds
	EventTime      time.Time // Event-Timestamp

	IPv6Prefix      netip.Prefix // Framed-IPv6-Prefix (RFC 3162)
	DelegatedPrefix netip.Prefix // Delegated-IPv6-Prefix (RFC 4818)
	IPv6Address     netip.Addr   // Framed-IPv6-Address (RFC 6911)

	// Extra attributes are appended as they are: vendor attributes, or
	// deliberately malformed values for tests.
	Extra radius.Attributes
}

// Packet returns the request as a packet with a random Identifier; its
// Request Authenticator is computed when it is encoded (Client.Exchange or
// radius.Packet.Encode).
func (a Acct) Packet(secret []byte) (*radius.Packet, error) {
	p := radius.New(radius.CodeAccountingRequest, secret)
	if err := a.addTo(p); err != nil {
		return nil, err
	}
	return p, nil
}

// Encode returns the request on the wire, with a random Identifier.
func (a Acct) Encode(secret []byte) ([]byte, error) {
	p, err := a.Packet(secret)
	if err != nil {
		return nil, err
	}
	b, err := p.Encode()
	if err != nil {
		return nil, fmt.Errorf("radiustest: encode: %w", err)
	}
	return b, nil
}

func (a Acct) addTo(p *radius.Packet) error {
	str := func(t radius.Type, name, v string) error {
		if v == "" {
			return nil
		}
		if len(v) > 253 {
			return fmt.Errorf("radiustest: %s longer than 253 bytes", name)
		}
		p.Add(t, radius.Attribute(v))
		return nil
	}
	u32 := func(t radius.Type, v uint32) {
		if v != 0 {
			p.Add(t, radius.NewInteger(v))
		}
	}
	if a.Status != 0 {
		p.Add(rfc2866.AcctStatusType_Type, radius.NewInteger(uint32(a.Status)))
	}
	for _, s := range []struct {
		t    radius.Type
		name string
		v    string
	}{
		{rfc2865.UserName_Type, "User", a.User},
		{rfc2866.AcctSessionID_Type, "SessionID", a.SessionID},
		{rfc2865.CallingStationID_Type, "MAC", a.MAC},
		{rfc2869.NASPortID_Type, "NASPortID", a.NASPortID},
		{rfc2865.CalledStationID_Type, "Service", a.Service},
	} {
		if err := str(s.t, s.name, s.v); err != nil {
			return err
		}
	}
	for _, ip := range []struct {
		t    radius.Type
		name string
		v    netip.Addr
	}{
		{rfc2865.FramedIPAddress_Type, "IP", a.IP},
		{rfc2865.NASIPAddress_Type, "NASIP", a.NASIP},
	} {
		if !ip.v.IsValid() {
			continue
		}
		if !ip.v.Unmap().Is4() {
			return fmt.Errorf("radiustest: %s %v is not IPv4", ip.name, ip.v)
		}
		b := ip.v.Unmap().As4()
		p.Add(ip.t, b[:])
	}
	u32(rfc2866.AcctInputOctets_Type, uint32(a.InputOctets))
	u32(rfc2869.AcctInputGigawords_Type, uint32(a.InputOctets>>32))
	u32(rfc2866.AcctOutputOctets_Type, uint32(a.OutputOctets))
	u32(rfc2869.AcctOutputGigawords_Type, uint32(a.OutputOctets>>32))
	u32(rfc2866.AcctInputPackets_Type, a.InputPackets)
	u32(rfc2866.AcctOutputPackets_Type, a.OutputPackets)
	u32(rfc2866.AcctSessionTime_Type, a.SessionTime)
	u32(rfc2866.AcctTerminateCause_Type, uint32(a.TerminateCause))
	u32(rfc2866.AcctDelayTime_Type, a.DelayTime)
	if !a.EventTime.IsZero() {
		ts, err := radius.NewDate(a.EventTime)
		if err != nil {
			return fmt.Errorf("radiustest: EventTime: %w", err)
		}
		p.Add(rfc2869.EventTimestamp_Type, ts)
	}
	for _, pfx := range []struct {
		t    radius.Type
		name string
		v    netip.Prefix
	}{
		{rfc3162.FramedIPv6Prefix_Type, "IPv6Prefix", a.IPv6Prefix},
		{rfc4818.DelegatedIPv6Prefix_Type, "DelegatedPrefix", a.DelegatedPrefix},
	} {
		if !pfx.v.IsValid() {
			continue
		}
		if !pfx.v.Addr().Is6() {
			return fmt.Errorf("radiustest: %s %v is not IPv6", pfx.name, pfx.v)
		}
		p.Add(pfx.t, IPv6Prefix(pfx.v))
	}
	if a.IPv6Address.IsValid() {
		if !a.IPv6Address.Is6() {
			return fmt.Errorf("radiustest: IPv6Address %v is not IPv6", a.IPv6Address)
		}
		b := a.IPv6Address.As16()
		p.Add(rfc6911.FramedIPv6Address_Type, b[:])
	}
	p.Attributes = append(p.Attributes, a.Extra...)
	return nil
}

// IPv6Prefix encodes a prefix as RFC 3162 does: a reserved octet, the prefix
// length and the prefix, all 16 octets of it (as most NAS send it).
func IPv6Prefix(p netip.Prefix) radius.Attribute {
	b := p.Masked().Addr().As16()
	return append(radius.Attribute{0, byte(p.Bits())}, b[:]...)
}

// VSA encodes a vendor-specific attribute value (type 26) holding one
// sub-attribute in RFC 2865's suggested format.
func VSA(vendor uint32, typ byte, value []byte) radius.Attribute {
	a := make(radius.Attribute, 4, 6+len(value))
	binary.BigEndian.PutUint32(a, vendor)
	return append(append(a, typ, byte(2+len(value))), value...)
}
