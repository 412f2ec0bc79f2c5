package radius

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2868"
	"layeh.com/radius/rfc2869"
)

// What proxying changes in a packet, and nothing else (RFC 2865 §2.3, RFC
// 3579 §3.2, RFC 5080 §2.1.1): the Identifier and Request Authenticator
// (the upstream hop has its own), the hidden attributes that are encrypted
// with the secret and the Request Authenticator (User-Password one way;
// Tunnel-Password and Microsoft's MPPE keys the other), the
// Message-Authenticator (recomputed, placed first as the BlastRADIUS
// mitigation recommends) and one Proxy-State of our own, added on the way
// up and removed on the way down. CHAP and MS-CHAP attributes are not
// touched: their proofs do not depend on the secret. CHAP's one dependency
// on the packet is that, without a CHAP-Challenge, the Request Authenticator
// is the challenge (RFC 2865 §2.2), so the original one is added as a
// CHAP-Challenge before the authenticator is replaced.

const (
	attrHeader   = 2
	maAttrLen    = 2 + 16
	maxHiddenLen = 128 // User-Password's maximum (RFC 2865 §5.2)

	vendorMicrosoftMPPEKeys    = 12 // MS-CHAP-MPPE-Keys, hidden like User-Password (RFC 2548 §2.4.1)
	vendorMicrosoftMPPESendKey = 16 // salted like Tunnel-Password (RFC 2548 §2.4.2)
	vendorMicrosoftMPPERecvKey = 17
)

var (
	errAttributeFraming = errors.New("attribute overruns the packet or has a length under 2")
	errTooLarge         = fmt.Errorf("proxied packet would exceed %d octets", radius.MaxPacketLength)
)

// eachAttribute calls fn with the offset, type and value of every attribute
// of the packet p (cut to its Length), and reports bad framing.
func eachAttribute(p []byte, fn func(off int, t byte, v []byte)) error {
	for off := 20; off < len(p); {
		if off+attrHeader > len(p) {
			return errAttributeFraming
		}
		l := int(p[off+1])
		if l < attrHeader || off+l > len(p) {
			return errAttributeFraming
		}
		fn(off, p[off], p[off+attrHeader:off+l])
		off += l
	}
	return nil
}

// accessRequest is what the proxy learns from a NAS's Access-Request before
// forwarding it.
type accessRequest struct {
	maOff    int  // offset of the Message-Authenticator's value, -1 when absent
	maBad    bool // one with a length other than 16, or more than one
	password int  // number of User-Password attributes
	pwBad    bool // one whose length is not 16..128 in steps of 16
	chap     bool // CHAP-Password present
	chapChal bool // CHAP-Challenge present

	login, callingStationID, nasIP, nasPortID, calledStationID []byte
}

// scanAccessRequest checks the framing of an Access-Request and reads what
// the proxy needs from it.
func scanAccessRequest(p []byte) (accessRequest, error) {
	r := accessRequest{maOff: -1}
	err := eachAttribute(p, func(off int, t byte, v []byte) {
		switch radius.Type(t) {
		case rfc2869.MessageAuthenticator_Type:
			if r.maOff >= 0 || len(v) != 16 {
				r.maBad = true
			}
			r.maOff = off + attrHeader
		case rfc2865.UserPassword_Type:
			r.password++
			if len(v) < 16 || len(v) > maxHiddenLen || len(v)%16 != 0 {
				r.pwBad = true
			}
		case rfc2865.CHAPPassword_Type:
			r.chap = true
		case rfc2865.CHAPChallenge_Type:
			r.chapChal = true
		case rfc2865.UserName_Type:
			r.login = first(r.login, v)
		case rfc2865.CallingStationID_Type:
			r.callingStationID = first(r.callingStationID, v)
		case rfc2865.NASIPAddress_Type:
			r.nasIP = first(r.nasIP, v)
		case rfc2869.NASPortID_Type:
			r.nasPortID = first(r.nasPortID, v)
		case rfc2865.CalledStationID_Type:
			r.calledStationID = first(r.calledStationID, v)
		}
	})
	if err != nil {
		return r, err
	}
	switch {
	case r.maBad:
		return r, errors.New("Message-Authenticator repeated or not 16 octets")
	case r.password > 1:
		return r, errors.New("more than one User-Password")
	case r.pwBad:
		return r, errors.New("User-Password length is not 16 to 128 octets in steps of 16")
	}
	return r, nil
}

func first(have, v []byte) []byte {
	if have != nil {
		return have
	}
	return v
}

// messageAuthenticator computes the HMAC-MD5 of RFC 3579 §3.2 over p, with
// the 16 octets at maOff taken as zero and, when auth is not nil, auth in
// place of p's authenticator field (replies are signed with the request's).
func messageAuthenticator(p []byte, maOff int, auth *[16]byte, secret []byte) [16]byte {
	mac := hmac.New(md5.New, secret)
	mac.Write(p[:4])
	if auth != nil {
		mac.Write(auth[:])
	} else {
		mac.Write(p[4:20])
	}
	var zero [16]byte
	mac.Write(p[20:maOff])
	mac.Write(zero[:])
	mac.Write(p[maOff+16:])
	var sum [16]byte
	mac.Sum(sum[:0])
	return sum
}

// rekey re-encrypts in place a value hidden with RFC 2865 §5.2's scheme
// (User-Password, MS-CHAP-MPPE-Keys) or its salted variant (Tunnel-Password,
// MS-MPPE-Send-Key and -Recv-Key: RFC 2868 §3.5, RFC 2548 §2.4.2): blocks
// c(i) = p(i) xor b(i), b(1) = MD5(S + R + salt), b(i) = MD5(S + c(i-1)),
// from one secret and authenticator to another. Each block is turned into
// the new ciphertext in one xor of both key streams, so the plaintext (a
// password, a session key) never sits in memory. len(c) is a multiple of 16.
func rekey(c, salt, oldSecret, oldAuth, newSecret, newAuth []byte) {
	h := md5.New()
	var oldPrev, bo, bn [16]byte
	for i := 0; i < len(c); i += 16 {
		if i == 0 {
			md5Of(h, &bo, oldSecret, oldAuth, salt)
			md5Of(h, &bn, newSecret, newAuth, salt)
		} else {
			md5Of(h, &bo, oldSecret, oldPrev[:], nil)
			md5Of(h, &bn, newSecret, c[i-16:i], nil) // already re-encrypted
		}
		copy(oldPrev[:], c[i:i+16])
		for j := range 16 {
			c[i+j] ^= bo[j] ^ bn[j]
		}
	}
}

func md5Of(h hash.Hash, out *[16]byte, a, b, c []byte) {
	h.Reset()
	h.Write(a)
	h.Write(b)
	h.Write(c)
	h.Sum(out[:0])
}

// proxyAccessRequest rewrites a NAS's Access-Request req (verified and
// scanned) for an upstream: Identifier id, Request Authenticator auth,
// User-Password re-encrypted from nasSecret to upSecret, a CHAP-Challenge
// when CHAP relied on the old authenticator, the Message-Authenticator first
// and recomputed, and state appended as a Proxy-State.
func proxyAccessRequest(req []byte, info *accessRequest, nasSecret []byte, id byte, auth [16]byte, upSecret, state []byte) ([]byte, error) {
	size := 20 + maAttrLen + len(req) - 20 + attrHeader + len(state)
	if info.maOff >= 0 {
		size -= maAttrLen
	}
	addChallenge := info.chap && !info.chapChal
	if addChallenge {
		size += attrHeader + 16
	}
	if size > radius.MaxPacketLength {
		return nil, errTooLarge
	}
	out := make([]byte, 20, size)
	out[0], out[1] = byte(radius.CodeAccessRequest), id
	binary.BigEndian.PutUint16(out[2:4], uint16(size))
	copy(out[4:20], auth[:])
	out = append(out, byte(rfc2869.MessageAuthenticator_Type), maAttrLen)
	out = append(out, make([]byte, 16)...)
	err := eachAttribute(req, func(off int, t byte, v []byte) {
		switch radius.Type(t) {
		case rfc2869.MessageAuthenticator_Type:
			return
		case rfc2865.UserPassword_Type:
			start := len(out) + attrHeader
			out = append(out, req[off:off+attrHeader+len(v)]...)
			rekey(out[start:], nil, nasSecret, req[4:20], upSecret, auth[:])
			return
		}
		out = append(out, req[off:off+attrHeader+len(v)]...)
	})
	if err != nil {
		return nil, err
	}
	if addChallenge {
		out = append(out, byte(rfc2865.CHAPChallenge_Type), attrHeader+16)
		out = append(out, req[4:20]...)
	}
	out = append(out, byte(rfc2865.ProxyState_Type), byte(attrHeader+len(state)))
	out = append(out, state...)
	ma := messageAuthenticator(out, 20+attrHeader, nil, upSecret)
	copy(out[20+attrHeader:], ma[:])
	return out, nil
}

// proxyAccountingRequest rewrites a NAS's Accounting-Request for an
// upstream: Identifier id, state appended as a Proxy-State, a
// Message-Authenticator recomputed when the NAS sent one, and the Request
// Authenticator computed with upSecret (RFC 2866 §3). It returns the packet
// and its authenticator.
func proxyAccountingRequest(req []byte, id byte, upSecret, state []byte) ([]byte, [16]byte, error) {
	var auth [16]byte
	hasMA := false
	size := len(req) + attrHeader + len(state)
	if err := eachAttribute(req, func(_ int, t byte, v []byte) {
		if radius.Type(t) == rfc2869.MessageAuthenticator_Type && !hasMA {
			hasMA = true
			size -= attrHeader + len(v)
		}
	}); err != nil {
		return nil, auth, err
	}
	if hasMA {
		size += maAttrLen
	}
	if size > radius.MaxPacketLength {
		return nil, auth, errTooLarge
	}
	out := make([]byte, 20, size)
	out[0], out[1] = byte(radius.CodeAccountingRequest), id
	binary.BigEndian.PutUint16(out[2:4], uint16(size))
	if hasMA {
		out = append(out, byte(rfc2869.MessageAuthenticator_Type), maAttrLen)
		out = append(out, make([]byte, 16)...)
	}
	_ = eachAttribute(req, func(off int, t byte, v []byte) {
		if radius.Type(t) != rfc2869.MessageAuthenticator_Type {
			out = append(out, req[off:off+attrHeader+len(v)]...)
		}
	})
	out = append(out, byte(rfc2865.ProxyState_Type), byte(attrHeader+len(state)))
	out = append(out, state...)
	if hasMA {
		// Signed with the authenticator field zero, which the Request
		// Authenticator below then covers (as FreeRADIUS does).
		ma := messageAuthenticator(out, 20+attrHeader, nil, upSecret)
		copy(out[20+attrHeader:], ma[:])
	}
	h := md5.New()
	h.Write(out)
	h.Write(upSecret)
	h.Sum(auth[:0])
	copy(out[4:20], auth[:])
	return out, auth, nil
}

// Errors of verifyReply: an upstream datagram that fails them is not an
// answer.
var (
	errReplyAuthenticator = errors.New("the Response Authenticator does not verify")
	errReplyMA            = errors.New("Message-Authenticator does not verify")
	errReplyNoMA          = errors.New("no Message-Authenticator, and the upstream must send one")
)

// verifyReply checks an upstream's reply p (cut to its Length) to a request
// whose authenticator was reqAuth: the Response Authenticator, and the
// Message-Authenticator when present or required.
func verifyReply(p []byte, reqAuth [16]byte, secret []byte, requireMA bool) error {
	h := md5.New()
	h.Write(p[:4])
	h.Write(reqAuth[:])
	h.Write(p[20:])
	h.Write(secret)
	var sum [16]byte
	if subtle.ConstantTimeCompare(h.Sum(sum[:0]), p[4:20]) != 1 {
		return errReplyAuthenticator
	}
	maOff, n := -1, 0
	if err := eachAttribute(p, func(off int, t byte, v []byte) {
		if radius.Type(t) == rfc2869.MessageAuthenticator_Type {
			n++
			if len(v) == 16 {
				maOff = off + attrHeader
			}
		}
	}); err != nil {
		return err
	}
	if n == 0 {
		if requireMA {
			return errReplyNoMA
		}
		return nil
	}
	if n != 1 || maOff < 0 {
		return errReplyMA
	}
	want := messageAuthenticator(p, maOff, &reqAuth, secret)
	if !hmac.Equal(want[:], p[maOff:maOff+16]) {
		return errReplyMA
	}
	return nil
}

// proxyReply turns an upstream's verified reply up, to a request with
// authenticator upAuth, into the reply to the NAS's request (Identifier id,
// authenticator nasAuth): our Proxy-State removed, hidden attributes
// re-encrypted for the NAS, a Message-Authenticator first, and the Response
// Authenticator computed with nasSecret. Hidden attributes too malformed to
// re-encrypt are left out and counted in dropped, since passing them on
// would hand the NAS garbage keyed for another hop.
func proxyReply(up []byte, upAuth [16]byte, upSecret []byte, id byte, nasAuth [16]byte, nasSecret, state []byte) (out []byte, dropped int, err error) {
	out = make([]byte, 20, len(up)+maAttrLen)
	out[0], out[1] = up[0], id
	out = append(out, byte(rfc2869.MessageAuthenticator_Type), maAttrLen)
	out = append(out, make([]byte, 16)...)
	stateSeen := false
	err = eachAttribute(up, func(off int, t byte, v []byte) {
		raw := up[off : off+attrHeader+len(v)]
		switch radius.Type(t) {
		case rfc2869.MessageAuthenticator_Type:
			return
		case rfc2865.ProxyState_Type:
			if !stateSeen && subtle.ConstantTimeCompare(v, state) == 1 {
				stateSeen = true
				return
			}
		case rfc2868.TunnelPassword_Type:
			// A tag octet, a two-octet salt, then the ciphertext.
			if len(v) < 3+16 || (len(v)-3)%16 != 0 {
				dropped++
				return
			}
			start := len(out)
			out = append(out, raw...)
			nv := out[start+attrHeader:]
			rekey(nv[3:], nv[1:3], upSecret, upAuth[:], nasSecret, nasAuth[:])
			return
		case rfc2865.VendorSpecific_Type:
			if len(v) >= 4 && binary.BigEndian.Uint32(v) == vendorMicrosoft {
				start := len(out)
				out = append(out, raw...)
				if !rekeyMicrosoft(out[start+attrHeader+4:], upSecret, upAuth[:], nasSecret, nasAuth[:]) {
					out = out[:start]
					dropped++
				}
				return
			}
		}
		out = append(out, raw...)
	})
	if err != nil {
		return nil, dropped, err
	}
	if len(out) > radius.MaxPacketLength {
		return nil, dropped, errTooLarge
	}
	binary.BigEndian.PutUint16(out[2:4], uint16(len(out)))
	ma := messageAuthenticator(out, 20+attrHeader, &nasAuth, nasSecret)
	copy(out[20+attrHeader:], ma[:])
	h := md5.New()
	h.Write(out[:4])
	h.Write(nasAuth[:])
	h.Write(out[20:])
	h.Write(nasSecret)
	h.Sum(out[4:4])
	return out, dropped, nil
}

// rekeyMicrosoft re-encrypts the MPPE keys among the sub-attributes of a
// Microsoft Vendor-Specific attribute (RFC 2548), in place. It is false when
// a key attribute is malformed; sub-attributes that do not follow RFC 2865's
// suggested format are copied as they are.
func rekeyMicrosoft(subs, oldSecret, oldAuth, newSecret, newAuth []byte) bool {
	if !wellFormedVSA(subs) {
		return true
	}
	for len(subs) > 0 {
		typ, n := subs[0], int(subs[1])
		v := subs[2:n]
		subs = subs[n:]
		switch typ {
		case vendorMicrosoftMPPEKeys:
			if len(v) < 16 || len(v)%16 != 0 {
				return false
			}
			rekey(v, nil, oldSecret, oldAuth, newSecret, newAuth)
		case vendorMicrosoftMPPESendKey, vendorMicrosoftMPPERecvKey:
			if len(v) < 2+16 || (len(v)-2)%16 != 0 {
				return false
			}
			rekey(v[2:], v[:2], oldSecret, oldAuth, newSecret, newAuth)
		}
	}
	return true
}

// replyMessages joins the Reply-Message attributes of a reply, in order.
func replyMessages(p []byte) string {
	var msg []byte
	_ = eachAttribute(p, func(_ int, t byte, v []byte) {
		if radius.Type(t) == rfc2865.ReplyMessage_Type {
			if len(msg) > 0 {
				msg = append(msg, ' ')
			}
			msg = append(msg, trimNUL(v)...)
		}
	})
	return reasonText(msg)
}

// statusServerRequest builds an RFC 5997 Status-Server: a random Request
// Authenticator and the Message-Authenticator the RFC requires, nothing
// else. The server answers it on either port when it is up (FreeRADIUS: an
// Access-Accept on the authentication port, an Accounting-Response on the
// accounting port).
func statusServerRequest(id byte, secret []byte) ([]byte, [16]byte, error) {
	var auth [16]byte
	if _, err := rand.Read(auth[:]); err != nil {
		return nil, auth, err
	}
	p := make([]byte, 20, 20+maAttrLen)
	p[0], p[1] = byte(radius.CodeStatusServer), id
	copy(p[4:20], auth[:])
	p = append(p, byte(rfc2869.MessageAuthenticator_Type), maAttrLen)
	p = append(p, make([]byte, 16)...)
	binary.BigEndian.PutUint16(p[2:4], uint16(len(p)))
	ma := messageAuthenticator(p, 20+attrHeader, nil, secret)
	copy(p[20+attrHeader:], ma[:])
	return p, auth, nil
}
