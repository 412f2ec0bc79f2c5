package radius

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"
)

// accountingResponse encodes the Accounting-Response to a request (RFC 2866
// §3): no attributes of its own, the request's Proxy-State attributes copied
// in order (RFC 2865 §5.33, for proxies in the path), and the Response
// Authenticator MD5(Code | Identifier | Length | Request Authenticator |
// Attributes | Secret).
//
// The answer is a pure function of the request and the secret, so a
// retransmission, which has the same bytes, gets byte-for-byte the same
// answer without the duplicate cache holding it. Answers are encoded at the
// commit rate on the Recorder's goroutine, so this avoids radius.Packet's
// allocations; tests compare it with radius.Packet.Encode.
func accountingResponse(id byte, reqAuth [16]byte, proxyState, secret []byte) []byte {
	size := 20 + len(proxyState)
	p := make([]byte, size)
	p[0] = byte(radius.CodeAccountingResponse)
	p[1] = id
	binary.BigEndian.PutUint16(p[2:4], uint16(size))
	copy(p[20:], proxyState)

	var stack [256]byte // the hash input stays on the stack for usual sizes
	h := append(stack[:0], p[:4]...)
	h = append(h, reqAuth[:]...)
	h = append(h, proxyState...)
	h = append(h, secret...)
	sum := md5.Sum(h)
	copy(p[4:20], sum[:])
	return p
}

// proxyStates returns the Proxy-State attributes of a request, still encoded
// and in order, or nil (the usual case, without allocating). req must have a
// valid length.
func proxyStates(req []byte) []byte {
	var out []byte
	for off := 20; off+2 <= len(req); {
		l := int(req[off+1])
		if l < 2 || off+l > len(req) {
			return out
		}
		if radius.Type(req[off]) == rfc2865.ProxyState_Type {
			out = append(out, req[off:off+l]...)
		}
		off += l
	}
	return out
}

// messageAuthenticatorOK verifies the Message-Authenticator (RFC 3579 §3.2)
// of a request: HMAC-MD5 keyed with the secret over the packet with the
// attribute's value zeroed. It is false when the attribute is missing, which
// RFC 5997 forbids for Status-Server.
func messageAuthenticatorOK(req, secret []byte) bool {
	off := findAttribute(req, rfc2869.MessageAuthenticator_Type, 16)
	if off < 0 {
		return false
	}
	got := req[off : off+16]
	mac := hmac.New(md5.New, secret)
	mac.Write(req[:off])
	var zero [16]byte
	mac.Write(zero[:])
	mac.Write(req[off+16:])
	return hmac.Equal(mac.Sum(nil), got)
}

// findAttribute returns the offset of the value of the first attribute of
// type t whose value is n octets long, or -1. req must have a valid length.
func findAttribute(req []byte, t radius.Type, n int) int {
	for off := 20; off+2 <= len(req); {
		l := int(req[off+1])
		if l < 2 || off+l > len(req) {
			return -1
		}
		if radius.Type(req[off]) == t && l == n+2 {
			return off + 2
		}
		off += l
	}
	return -1
}

// statusResponse answers a Status-Server (RFC 5997 §3) with code: an
// Accounting-Response on the accounting port, an Access-Accept on the
// authentication port. It carries a Message-Authenticator, which is computed
// over the packet with the Request Authenticator in place, before the
// Response Authenticator is.
func statusResponse(code radius.Code, req, secret []byte) []byte {
	const size = 20 + 18
	p := make([]byte, size)
	p[0] = byte(code)
	p[1] = req[1]
	binary.BigEndian.PutUint16(p[2:4], size)
	copy(p[4:20], req[4:20])
	p[20] = byte(rfc2869.MessageAuthenticator_Type)
	p[21] = 18
	mac := hmac.New(md5.New, secret)
	mac.Write(p)
	mac.Sum(p[22:22])

	h := md5.New()
	h.Write(p)
	h.Write(secret)
	h.Sum(p[4:4])
	return p
}
