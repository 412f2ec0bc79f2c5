package radius

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2868"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/rfc3162"
	_ "layeh.com/radius/rfc3580" // registers Acct-Terminate-Cause 19-22 in rfc2866's names
	"layeh.com/radius/rfc4818"
	"layeh.com/radius/rfc6911"
)

// How Detail.Attributes shows a value.
type valueKind uint8

const (
	valueOctets valueKind = iota // text when printable, else hex
	valueText
	valueInteger
	valueIPv4
	valueIPv6
	valueIPv6Prefix
	valueDate
	valueSecret // never shown: passwords, challenges, keys
)

type attrInfo struct {
	name string
	kind valueKind
	enum func(uint32) string // names of integer values, when the RFC gives them
}

// attrInfos names the attributes a NAS commonly sends in accounting. The rest
// appear in Detail.Attributes under their number.
var attrInfos = map[radius.Type]attrInfo{
	rfc2865.UserName_Type:                {name: "User-Name", kind: valueText},
	rfc2865.UserPassword_Type:            {name: "User-Password", kind: valueSecret},
	rfc2865.CHAPPassword_Type:            {name: "CHAP-Password", kind: valueSecret},
	rfc2865.NASIPAddress_Type:            {name: "NAS-IP-Address", kind: valueIPv4},
	rfc2865.NASPort_Type:                 {name: "NAS-Port", kind: valueInteger},
	rfc2865.ServiceType_Type:             {name: "Service-Type", kind: valueInteger, enum: enumNames(rfc2865.ServiceType_Strings)},
	rfc2865.FramedProtocol_Type:          {name: "Framed-Protocol", kind: valueInteger, enum: enumNames(rfc2865.FramedProtocol_Strings)},
	rfc2865.FramedIPAddress_Type:         {name: "Framed-IP-Address", kind: valueIPv4},
	rfc2865.FramedIPNetmask_Type:         {name: "Framed-IP-Netmask", kind: valueIPv4},
	rfc2865.FramedRouting_Type:           {name: "Framed-Routing", kind: valueInteger},
	rfc2865.FilterID_Type:                {name: "Filter-Id", kind: valueText},
	rfc2865.FramedMTU_Type:               {name: "Framed-MTU", kind: valueInteger},
	rfc2865.FramedCompression_Type:       {name: "Framed-Compression", kind: valueInteger},
	rfc2865.ReplyMessage_Type:            {name: "Reply-Message", kind: valueText},
	rfc2865.FramedRoute_Type:             {name: "Framed-Route", kind: valueText},
	rfc2865.State_Type:                   {name: "State", kind: valueOctets},
	rfc2865.Class_Type:                   {name: "Class", kind: valueOctets},
	rfc2865.SessionTimeout_Type:          {name: "Session-Timeout", kind: valueInteger},
	rfc2865.IdleTimeout_Type:             {name: "Idle-Timeout", kind: valueInteger},
	rfc2865.CalledStationID_Type:         {name: "Called-Station-Id", kind: valueText},
	rfc2865.CallingStationID_Type:        {name: "Calling-Station-Id", kind: valueText},
	rfc2865.NASIdentifier_Type:           {name: "NAS-Identifier", kind: valueText},
	rfc2865.ProxyState_Type:              {name: "Proxy-State", kind: valueOctets},
	rfc2865.CHAPChallenge_Type:           {name: "CHAP-Challenge", kind: valueSecret},
	rfc2865.NASPortType_Type:             {name: "NAS-Port-Type", kind: valueInteger, enum: enumNames(rfc2865.NASPortType_Strings)},
	rfc2866.AcctStatusType_Type:          {name: "Acct-Status-Type", kind: valueInteger, enum: enumNames(rfc2866.AcctStatusType_Strings)},
	rfc2866.AcctDelayTime_Type:           {name: "Acct-Delay-Time", kind: valueInteger},
	rfc2866.AcctInputOctets_Type:         {name: "Acct-Input-Octets", kind: valueInteger},
	rfc2866.AcctOutputOctets_Type:        {name: "Acct-Output-Octets", kind: valueInteger},
	rfc2866.AcctSessionID_Type:           {name: "Acct-Session-Id", kind: valueText},
	rfc2866.AcctAuthentic_Type:           {name: "Acct-Authentic", kind: valueInteger, enum: enumNames(rfc2866.AcctAuthentic_Strings)},
	rfc2866.AcctSessionTime_Type:         {name: "Acct-Session-Time", kind: valueInteger},
	rfc2866.AcctInputPackets_Type:        {name: "Acct-Input-Packets", kind: valueInteger},
	rfc2866.AcctOutputPackets_Type:       {name: "Acct-Output-Packets", kind: valueInteger},
	rfc2866.AcctTerminateCause_Type:      {name: "Acct-Terminate-Cause", kind: valueInteger, enum: enumNames(rfc2866.AcctTerminateCause_Strings)},
	rfc2866.AcctMultiSessionID_Type:      {name: "Acct-Multi-Session-Id", kind: valueText},
	rfc2866.AcctLinkCount_Type:           {name: "Acct-Link-Count", kind: valueInteger},
	rfc2869.AcctInputGigawords_Type:      {name: "Acct-Input-Gigawords", kind: valueInteger},
	rfc2869.AcctOutputGigawords_Type:     {name: "Acct-Output-Gigawords", kind: valueInteger},
	rfc2869.EventTimestamp_Type:          {name: "Event-Timestamp", kind: valueDate},
	rfc2868.TunnelPassword_Type:          {name: "Tunnel-Password", kind: valueSecret},
	rfc2869.ARAPPassword_Type:            {name: "ARAP-Password", kind: valueSecret},
	rfc2869.ConnectInfo_Type:             {name: "Connect-Info", kind: valueText},
	rfc2869.EAPMessage_Type:              {name: "EAP-Message", kind: valueSecret},
	rfc2869.MessageAuthenticator_Type:    {name: "Message-Authenticator", kind: valueSecret},
	rfc2869.AcctInterimInterval_Type:     {name: "Acct-Interim-Interval", kind: valueInteger},
	rfc2869.NASPortID_Type:               {name: "NAS-Port-Id", kind: valueText},
	rfc2869.FramedPool_Type:              {name: "Framed-Pool", kind: valueText},
	rfc3162.NASIPv6Address_Type:          {name: "NAS-IPv6-Address", kind: valueIPv6},
	rfc3162.FramedInterfaceID_Type:       {name: "Framed-Interface-Id", kind: valueOctets},
	rfc3162.FramedIPv6Prefix_Type:        {name: "Framed-IPv6-Prefix", kind: valueIPv6Prefix},
	rfc3162.FramedIPv6Route_Type:         {name: "Framed-IPv6-Route", kind: valueText},
	rfc3162.FramedIPv6Pool_Type:          {name: "Framed-IPv6-Pool", kind: valueText},
	rfc4818.DelegatedIPv6Prefix_Type:     {name: "Delegated-IPv6-Prefix", kind: valueIPv6Prefix},
	rfc6911.FramedIPv6Address_Type:       {name: "Framed-IPv6-Address", kind: valueIPv6},
	rfc6911.DelegatedIPv6PrefixPool_Type: {name: "Delegated-IPv6-Prefix-Pool", kind: valueText},
	rfc6911.DNSServerIPv6Address_Type:    {name: "DNS-Server-IPv6-Address", kind: valueIPv6},
	rfc6911.StatefulIPv6AddressPool_Type: {name: "Stateful-IPv6-Address-Pool", kind: valueText},
}

// Vendor-specific attributes that carry secrets: Microsoft's MS-CHAP
// challenges and responses and the MPPE keys (RFC 2548).
const vendorMicrosoft = 311

var secretVSAs = map[uint8]bool{1: true, 2: true, 11: true, 12: true, 16: true, 17: true, 25: true, 26: true}

func enumNames[T ~uint32](m map[T]string) func(uint32) string {
	return func(v uint32) string { return m[T(v)] }
}

// maxAttributes caps Detail.Attributes: a 4 KiB packet of empty attributes
// should not become two thousand map entries in the store.
const maxAttributes = 100

// attributeMap renders the packet's attributes for Detail.Attributes: names
// for the well-known ones, "26:VENDOR:TYPE" for vendor ones, the number for
// the rest; repeated attributes are joined with ", "; secrets are left out.
func attributeMap(attrs radius.Attributes) map[string]string {
	m := make(map[string]string, len(attrs))
	add := func(k, v string) {
		if old, ok := m[k]; ok {
			m[k] = old + ", " + v
			return
		}
		if len(m) < maxAttributes {
			m[k] = v
		}
	}
	for _, avp := range attrs {
		if avp.Type == rfc2865.VendorSpecific_Type {
			addVendor(add, avp.Attribute)
			continue
		}
		info, known := attrInfos[avp.Type]
		if !known {
			add(strconv.Itoa(int(avp.Type)), octetsText(avp.Attribute))
			continue
		}
		if info.kind == valueSecret {
			continue
		}
		add(info.name, formatValue(info, avp.Attribute))
	}
	return m
}

// addVendor splits a Vendor-Specific attribute into its sub-attributes when
// it follows RFC 2865's suggested format, and keeps it whole otherwise.
func addVendor(add func(k, v string), a radius.Attribute) {
	if len(a) < 4 {
		add("26", octetsText(a))
		return
	}
	vendor := binary.BigEndian.Uint32(a)
	prefix := "26:" + strconv.FormatUint(uint64(vendor), 10)
	rest := a[4:]
	if !wellFormedVSA(rest) {
		add(prefix, octetsText(rest))
		return
	}
	for len(rest) > 0 {
		typ, n := rest[0], int(rest[1])
		v := rest[2:n]
		rest = rest[n:]
		if vendor == vendorMicrosoft && secretVSAs[typ] {
			continue
		}
		add(prefix+":"+strconv.Itoa(int(typ)), vendorValue(v))
	}
}

func wellFormedVSA(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for len(b) > 0 {
		if len(b) < 2 || b[1] < 2 || int(b[1]) > len(b) {
			return false
		}
		b = b[b[1]:]
	}
	return true
}

// vendorValue guesses the type of a value we have no dictionary for: text
// when printable, a number when it has an integer's size, hex otherwise.
func vendorValue(v []byte) string {
	if s, ok := printable(v); ok {
		return s
	}
	if len(v) == 4 {
		return strconv.FormatUint(uint64(binary.BigEndian.Uint32(v)), 10)
	}
	return hexText(v)
}

func formatValue(info attrInfo, a radius.Attribute) string {
	switch info.kind {
	case valueText:
		return text(a)
	case valueInteger:
		if len(a) != 4 {
			break
		}
		v := binary.BigEndian.Uint32(a)
		if info.enum != nil {
			if name := info.enum(v); name != "" {
				return name
			}
		}
		return strconv.FormatUint(uint64(v), 10)
	case valueIPv4:
		if len(a) == 4 {
			return netip.AddrFrom4([4]byte(a)).String()
		}
	case valueIPv6:
		if len(a) == 16 {
			return netip.AddrFrom16([16]byte(a)).String()
		}
	case valueIPv6Prefix:
		if p, err := ipv6Prefix(a); err == nil {
			return p.String()
		}
	case valueDate:
		if len(a) == 4 {
			return time.Unix(int64(binary.BigEndian.Uint32(a)), 0).UTC().Format(time.RFC3339)
		}
	}
	return octetsText(a)
}

// octetsText shows bytes as text when they are printable and as 0x-hex when
// they are not, so that binary values survive the trip through JSON.
func octetsText(b []byte) string {
	if s, ok := printable(b); ok {
		return s
	}
	return hexText(b)
}

func hexText(b []byte) string { return "0x" + hex.EncodeToString(b) }

func printable(b []byte) (string, bool) {
	b = trimNUL(b)
	if len(b) == 0 || !utf8.Valid(b) {
		return "", false
	}
	for _, r := range string(b) {
		if r < 0x20 || r == 0x7f {
			return "", false
		}
	}
	return string(b), true
}

// maxText is the store's limit for login, session id and the other short
// fields (watcher.Event.Validate).
const maxText = 253

// text returns a string attribute as valid UTF-8 of at most maxText bytes.
// Some NAS pad strings with NULs; invalid bytes become U+FFFD rather than
// making the whole event unstorable.
func text(b []byte) string {
	b = trimNUL(b)
	s := string(b)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) > maxText {
		cut := maxText
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

func trimNUL(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

var (
	errIPv6PrefixLength = errors.New("attribute length must be 4 to 20 octets")
	errIPv6PrefixShort  = errors.New("prefix field shorter than the prefix length")
)

// ipv6Prefix decodes RFC 3162's Framed-IPv6-Prefix format, shared by
// Delegated-IPv6-Prefix (RFC 4818): a reserved octet, the prefix length, and
// as many prefix octets as the length needs (up to 16). Bits beyond the prefix
// length are cleared rather than refused: the prefix is what matters.
func ipv6Prefix(a []byte) (netip.Prefix, error) {
	if len(a) < 2 || len(a) > 18 {
		return netip.Prefix{}, fmt.Errorf("%w, not %d", errIPv6PrefixLength, len(a)+2)
	}
	bits := int(a[1])
	if bits > 128 {
		return netip.Prefix{}, fmt.Errorf("prefix length %d is more than 128", bits)
	}
	if len(a)-2 < (bits+7)/8 {
		return netip.Prefix{}, fmt.Errorf("%w (/%d in %d octets)", errIPv6PrefixShort, bits, len(a)-2)
	}
	var b [16]byte
	copy(b[:], a[2:])
	return netip.PrefixFrom(netip.AddrFrom16(b), bits).Masked(), nil
}
