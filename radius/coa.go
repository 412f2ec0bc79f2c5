package radius

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/rfc3162"
)

// Dynamic authorization (RFC 5176): authwatch as the Dynamic Authorization
// Client that asks a NAS to end a session, when an agent presses "End
// session" for a customer whose stale session blocks the new login.

// DefaultCoAPort is the NAS's dynamic-authorization port (RFC 5176 §3).
const DefaultCoAPort = 3799

// Results of a Disconnect-Request, as the API and the page show them.
const (
	ResultDone    = "done"    // Disconnect-ACK: the NAS ended the session
	ResultRefused = "refused" // Disconnect-NAK: the NAS would not (Error-Cause says why)
	ResultTimeout = "timeout" // no verified answer after every try
)

// Defaults of DisconnectOptions: three tries two seconds apart, six seconds
// at most, which an agent on the phone can wait for.
const (
	DefaultDisconnectTimeout = 2 * time.Second
	DefaultDisconnectTries   = 3
)

// Attribute types RFC 5176 adds.
const errorCauseType = radius.Type(101)

// errorCauseNames are the Error-Cause values of RFC 5176 §3.6, named as
// its table names them, words joined by hyphens as dictionaries write values
// (FreeRADIUS's differs for 201, 502 and 505: Residual-Context-Removed,
// Proxy-Request-Not-Routable, Proxy-Processing-Error).
var errorCauseNames = map[int]string{
	201: "Residual-Session-Context-Removed",
	202: "Invalid-EAP-Packet",
	401: "Unsupported-Attribute",
	402: "Missing-Attribute",
	403: "NAS-Identification-Mismatch",
	404: "Invalid-Request",
	405: "Unsupported-Service",
	406: "Unsupported-Extension",
	407: "Invalid-Attribute-Value",
	501: "Administratively-Prohibited",
	502: "Request-Not-Routable",
	503: "Session-Context-Not-Found",
	504: "Session-Context-Not-Removable",
	505: "Other-Proxy-Processing-Error",
	506: "Resources-Unavailable",
	507: "Request-Initiated",
	508: "Multiple-Session-Selection-Unsupported",
}

// ErrorCauseName returns the RFC 5176 name of an Error-Cause value
// ("Session-Context-Not-Found" for 503), or "" for one the RFC does not
// list.
func ErrorCauseName(v int) string { return errorCauseNames[v] }

// DisconnectRequest is a session to end and the NAS to ask. Zero fields are
// not sent; at least one of UserName, AcctSessionID and FramedIP must be set
// to say which session.
type DisconnectRequest struct {
	// NAS is the host:port of the NAS's dynamic-authorization server
	// (port 3799 unless configured otherwise).
	NAS string
	// Secret is shared with the NAS for dynamic authorization (often its
	// accounting secret). It is never printed.
	Secret Secret

	UserName      string     // User-Name
	AcctSessionID string     // Acct-Session-Id
	FramedIP      netip.Addr // Framed-IP-Address (IPv4 only)
	NASIP         netip.Addr // NAS-IP-Address, or NAS-IPv6-Address for IPv6
}

// String describes the request as sent, for the action event and the audit
// log: the NAS address and the session attributes, never the secret.
func (r DisconnectRequest) String() string {
	var b strings.Builder
	b.WriteString("Disconnect-Request to ")
	b.WriteString(r.NAS)
	if r.UserName != "" {
		fmt.Fprintf(&b, " User-Name=%q", r.UserName)
	}
	if r.AcctSessionID != "" {
		fmt.Fprintf(&b, " Acct-Session-Id=%q", r.AcctSessionID)
	}
	if r.FramedIP.IsValid() {
		b.WriteString(" Framed-IP-Address=" + r.FramedIP.String())
	}
	if r.NASIP.IsValid() {
		if r.NASIP.Unmap().Is4() {
			b.WriteString(" NAS-IP-Address=" + r.NASIP.Unmap().String())
		} else {
			b.WriteString(" NAS-IPv6-Address=" + r.NASIP.String())
		}
	}
	return b.String()
}

// DisconnectOptions tune the exchange; zero values pick the defaults.
type DisconnectOptions struct {
	Timeout time.Duration // wait per try before sending again (default 2s)
	Tries   int           // times the request is sent in all (default 3)
}

// DisconnectResult is the NAS's answer.
type DisconnectResult struct {
	Result string `json:"result"` // ResultDone, ResultRefused or ResultTimeout
	// Detail says it in words: "Disconnect-ACK", "503
	// Session-Context-Not-Found", "no answer from 10.0.0.1:3799 after 3
	// tries".
	Detail string `json:"detail"`
	// ErrorCause is the Disconnect-NAK's Error-Cause (0 when it had none),
	// ErrorCauseName its RFC 5176 name ("" when the RFC lists no such
	// value).
	ErrorCause     int    `json:"error_cause,omitempty"`
	ErrorCauseName string `json:"error_cause_name,omitempty"`
	// ReplyMessage is the answer's Reply-Message, when it has one.
	ReplyMessage string `json:"reply_message,omitempty"`
	// Tries is how many times the request was sent.
	Tries int `json:"tries"`
	// Ignored counts datagrams that arrived but were no answer to this
	// request (wrong Identifier or code, bad framing, an authenticator
	// that does not verify).
	Ignored int `json:"ignored,omitempty"`
}

// Disconnect sends an RFC 5176 Disconnect-Request for one session and waits
// for the NAS's answer. The request carries a Message-Authenticator (first,
// as the BlastRADIUS mitigations recommend), computed over the packet with
// the authenticator field zeroed, and then the Request Authenticator MD5(Code
// | Identifier | Length | 16 zero octets | Attributes | Secret) of RFC 5176
// §3.5, which covers it. Without an answer it is sent again, the same bytes
// with the same Identifier, every Timeout, Tries times in all.
//
// An answer counts only when it has the request's Identifier, is a
// Disconnect-ACK or Disconnect-NAK, and its Response Authenticator (and
// Message-Authenticator, when present) verifies with the secret; anything
// else is ignored, as if nothing had arrived. Disconnect-ACK is ResultDone;
// Disconnect-NAK is ResultRefused with its Error-Cause; silence is
// ResultTimeout, which is not an error.
//
// The error is for requests that cannot be sent (no NAS address or secret,
// nothing naming the session, a socket that cannot be opened) and for ctx
// ending, in which case the result is ResultTimeout with what was tried.
func Disconnect(ctx context.Context, r DisconnectRequest, o DisconnectOptions) (DisconnectResult, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultDisconnectTimeout
	}
	if o.Tries <= 0 {
		o.Tries = DefaultDisconnectTries
	}
	secret := []byte(r.Secret)
	if len(secret) == 0 {
		return DisconnectResult{}, errors.New("radius: disconnect: no secret")
	}
	id := byte(rand.N(256))
	req, auth, err := encodeDisconnect(r, id, secret)
	if err != nil {
		return DisconnectResult{}, fmt.Errorf("radius: disconnect: %w", err)
	}
	if host, port, err := net.SplitHostPort(r.NAS); err != nil || host == "" || port == "" {
		return DisconnectResult{}, fmt.Errorf("radius: disconnect: NAS address %q is not host:port", r.NAS)
	}
	raddr, err := net.ResolveUDPAddr("udp", r.NAS)
	if err != nil {
		return DisconnectResult{}, fmt.Errorf("radius: disconnect: NAS address: %w", err)
	}
	// A connected socket of its own: the kernel delivers only the NAS's
	// datagrams, and the Identifier needs no bookkeeping.
	conn, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return DisconnectResult{}, fmt.Errorf("radius: disconnect: %w", err)
	}
	defer conn.Close()
	// Ending ctx wakes the read below.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	var res DisconnectResult
	buf := make([]byte, radius.MaxPacketLength+1)
	refused := false // ICMP port unreachable seen
	for res.Tries < o.Tries {
		if _, err := conn.Write(req); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			return DisconnectResult{}, fmt.Errorf("radius: disconnect: send to %s: %w", r.NAS, err)
		}
		res.Tries++
		_ = conn.SetReadDeadline(time.Now().Add(o.Timeout))
		if ctx.Err() != nil {
			break
		}
		for {
			n, err := conn.Read(buf)
			if err != nil {
				if errors.Is(err, syscall.ECONNREFUSED) {
					refused = true
					continue // an ICMP error from an earlier try: keep waiting
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return DisconnectResult{}, fmt.Errorf("radius: disconnect: read from %s: %w", r.NAS, err)
			}
			if answer, ok := disconnectAnswer(buf[:n], id, auth, secret); ok {
				answer.Tries, answer.Ignored = res.Tries, res.Ignored
				return answer, nil
			}
			res.Ignored++
		}
		if ctx.Err() != nil {
			break
		}
	}
	res.Result = ResultTimeout
	res.Detail = fmt.Sprintf("no answer from %s after %d tries", r.NAS, res.Tries)
	if refused {
		res.Detail += " (port unreachable: is dynamic authorization enabled on the NAS?)"
	}
	if res.Ignored > 0 {
		res.Detail += fmt.Sprintf("; %d datagrams ignored (wrong secret?)", res.Ignored)
	}
	if err := ctx.Err(); err != nil {
		res.Detail = fmt.Sprintf("gave up waiting for %s after %d tries: %v", r.NAS, res.Tries, err)
		return res, err
	}
	return res, nil
}

// encodeDisconnect builds the Disconnect-Request and returns it with its
// Request Authenticator.
func encodeDisconnect(r DisconnectRequest, id byte, secret []byte) ([]byte, [16]byte, error) {
	var auth [16]byte
	if r.UserName == "" && r.AcctSessionID == "" && !r.FramedIP.IsValid() {
		return nil, auth, errors.New("nothing names the session (User-Name, Acct-Session-Id or Framed-IP-Address)")
	}
	p := make([]byte, 20, 128)
	p[0], p[1] = byte(radius.CodeDisconnectRequest), id
	p = append(p, byte(rfc2869.MessageAuthenticator_Type), maAttrLen)
	p = append(p, make([]byte, 16)...)
	add := func(t radius.Type, name string, v []byte) error {
		if len(v) == 0 || len(v) > 253 {
			return fmt.Errorf("%s must be 1 to 253 octets, not %d", name, len(v))
		}
		p = append(p, byte(t), byte(attrHeader+len(v)))
		p = append(p, v...)
		return nil
	}
	if r.UserName != "" {
		if err := add(rfc2865.UserName_Type, "User-Name", []byte(r.UserName)); err != nil {
			return nil, auth, err
		}
	}
	if r.AcctSessionID != "" {
		if err := add(rfc2866.AcctSessionID_Type, "Acct-Session-Id", []byte(r.AcctSessionID)); err != nil {
			return nil, auth, err
		}
	}
	if r.FramedIP.IsValid() {
		a := r.FramedIP.Unmap()
		if !a.Is4() {
			return nil, auth, fmt.Errorf("Framed-IP-Address %v is not IPv4", r.FramedIP)
		}
		v := a.As4()
		_ = add(rfc2865.FramedIPAddress_Type, "", v[:])
	}
	if r.NASIP.IsValid() {
		if a := r.NASIP.Unmap(); a.Is4() {
			v := a.As4()
			_ = add(rfc2865.NASIPAddress_Type, "", v[:])
		} else {
			v := a.As16()
			_ = add(rfc3162.NASIPv6Address_Type, "", v[:])
		}
	}
	binary.BigEndian.PutUint16(p[2:4], uint16(len(p)))
	// Message-Authenticator first, over the packet whose authenticator
	// field is still zero (RFC 5176 §3.5, RFC 3579 §3.2); then the Request
	// Authenticator over the packet holding it.
	ma := messageAuthenticator(p, 20+attrHeader, nil, secret)
	copy(p[20+attrHeader:], ma[:])
	h := md5.New()
	h.Write(p)
	h.Write(secret)
	h.Sum(auth[:0])
	copy(p[4:20], auth[:])
	return p, auth, nil
}

// disconnectAnswer reads a datagram as the answer to the request with
// Identifier id and authenticator auth; ok is false when it is none.
func disconnectAnswer(b []byte, id byte, auth [16]byte, secret []byte) (DisconnectResult, bool) {
	if len(b) < 20 || b[1] != id {
		return DisconnectResult{}, false
	}
	length := int(binary.BigEndian.Uint16(b[2:4]))
	if length < 20 || length > len(b) {
		return DisconnectResult{}, false
	}
	b = b[:length]
	code := radius.Code(b[0])
	if code != radius.CodeDisconnectACK && code != radius.CodeDisconnectNAK {
		return DisconnectResult{}, false
	}
	if verifyReply(b, auth, secret, false) != nil {
		return DisconnectResult{}, false
	}
	var res DisconnectResult
	_ = eachAttribute(b, func(_ int, t byte, v []byte) {
		switch radius.Type(t) {
		case errorCauseType:
			if len(v) == 4 && res.ErrorCause == 0 {
				res.ErrorCause = int(binary.BigEndian.Uint32(v))
			}
		case rfc2865.ReplyMessage_Type:
			if res.ReplyMessage == "" {
				res.ReplyMessage = text(v)
			}
		}
	})
	if code == radius.CodeDisconnectACK {
		res.Result, res.Detail = ResultDone, "Disconnect-ACK"
		return res, true
	}
	res.Result = ResultRefused
	switch {
	case res.ErrorCause == 0:
		res.Detail = "Disconnect-NAK without Error-Cause"
	default:
		res.ErrorCauseName = ErrorCauseName(res.ErrorCause)
		name := res.ErrorCauseName
		if name == "" {
			name = "unknown Error-Cause"
		}
		res.Detail = strconv.Itoa(res.ErrorCause) + " " + name
	}
	if res.ReplyMessage != "" {
		res.Detail += ": " + res.ReplyMessage
	}
	return res, true
}
