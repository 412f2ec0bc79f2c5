package radiustest

import (
	"crypto/hmac"
	"crypto/md5"
	"fmt"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"
)

// Access describes an Access-Request as a NAS sends it for a PPPoE login.
// Zero fields are not sent.
type Access struct {
	User     string // User-Name
	Password string // PAP: User-Password, encrypted with the secret
	CHAP     string // CHAP: the password the CHAP-Password proves
	// CHAPChallenge is sent as CHAP-Challenge when set; otherwise the
	// Request Authenticator is the challenge (RFC 2865 §2.2), as most NAS
	// do.
	CHAPChallenge []byte
	MAC           string // Calling-Station-Id, as written
	NASPortID     string // NAS-Port-Id
	Service       string // Called-Station-Id
	// NoMessageAuthenticator leaves out the Message-Authenticator that a
	// NAS safe from BlastRADIUS sends (Client.Exchange fills it in).
	NoMessageAuthenticator bool
	// Extra attributes are appended as they are.
	Extra radius.Attributes
}

// Packet returns the request with a random Identifier and Request
// Authenticator. The User-Password and CHAP-Password are computed for that
// authenticator and secret: send it as it is (Client.Exchange keeps the
// authenticator of Access-Requests).
func (a Access) Packet(secret []byte) (*radius.Packet, error) {
	p := radius.New(radius.CodeAccessRequest, secret)
	if !a.NoMessageAuthenticator {
		// First, as the BlastRADIUS mitigations recommend.
		p.Add(rfc2869.MessageAuthenticator_Type, make(radius.Attribute, 16))
	}
	if a.User != "" {
		if err := rfc2865.UserName_SetString(p, a.User); err != nil {
			return nil, fmt.Errorf("radiustest: User: %w", err)
		}
	}
	if a.Password != "" {
		v, err := radius.NewUserPassword([]byte(a.Password), secret, p.Authenticator[:])
		if err != nil {
			return nil, fmt.Errorf("radiustest: Password: %w", err)
		}
		p.Add(rfc2865.UserPassword_Type, v)
	}
	if a.CHAP != "" {
		challenge := a.CHAPChallenge
		if challenge != nil {
			p.Add(rfc2865.CHAPChallenge_Type, challenge)
		} else {
			challenge = p.Authenticator[:]
		}
		p.Add(rfc2865.CHAPPassword_Type, CHAPPassword(p.Identifier, a.CHAP, challenge))
	}
	for _, s := range []struct {
		t radius.Type
		v string
	}{
		{rfc2865.CallingStationID_Type, a.MAC},
		{rfc2869.NASPortID_Type, a.NASPortID},
		{rfc2865.CalledStationID_Type, a.Service},
	} {
		if s.v != "" {
			p.Add(s.t, radius.Attribute(s.v))
		}
	}
	p.Attributes = append(p.Attributes, a.Extra...)
	return p, nil
}

// CHAPPassword is the CHAP-Password value (RFC 1994, RFC 2865 §5.3): the CHAP
// Identifier and MD5(Identifier + password + challenge). The NAS's CHAP
// Identifier is its own; using the packet's, as here, is what radclient does.
func CHAPPassword(ident byte, password string, challenge []byte) radius.Attribute {
	h := md5.New()
	h.Write([]byte{ident})
	h.Write([]byte(password))
	h.Write(challenge)
	return append(radius.Attribute{ident}, h.Sum(nil)...)
}

// ReplyMessageAuthenticatorOK reports whether an answer carries a
// Message-Authenticator that verifies (RFC 3579 §3.2: over the answer with
// the request's authenticator in place and the attribute zeroed).
func ReplyMessageAuthenticatorOK(reply []byte, requestAuth [16]byte, secret []byte) bool {
	off := 20
	for off+2 <= len(reply) {
		l := int(reply[off+1])
		if l < 2 || off+l > len(reply) {
			return false
		}
		if radius.Type(reply[off]) == rfc2869.MessageAuthenticator_Type && l == 18 {
			check := append([]byte(nil), reply...)
			copy(check[4:20], requestAuth[:])
			clear(check[off+2 : off+18])
			mac := hmac.New(md5.New, secret)
			mac.Write(check)
			return hmac.Equal(mac.Sum(nil), reply[off+2:off+18])
		}
		off += l
	}
	return false
}
