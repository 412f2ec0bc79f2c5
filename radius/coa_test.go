package radius_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authradius "authwatch/radius"
)

// The NAS side of RFC 5176, written from the RFC and nothing else of
// authwatch's, so that a mistake in the client's encoder cannot hide behind
// the same mistake here:
//
//   - Disconnect-Request is code 40; Disconnect-ACK 41, Disconnect-NAK 42
//     (§3); Error-Cause is attribute 101, an integer (§3.6).
//   - The Request Authenticator is MD5(Code + Identifier + Length + 16 zero
//     octets + request attributes + shared secret) (§3.5, as RFC 2866 for
//     accounting).
//   - Message-Authenticator (attribute 80, RFC 3579 §3.2) of a
//     Disconnect-Request is HMAC-MD5 keyed with the secret over the packet
//     with the attribute's value and the authenticator field as zeros
//     (§3.5: "the Request Authenticator ... set to zero").
//   - The Response Authenticator is MD5(Code + Identifier + Length + Request
//     Authenticator + response attributes + secret); a Message-Authenticator
//     in a response is computed with the Request Authenticator in the
//     authenticator field.

const (
	rfcDisconnectRequest = 40
	rfcDisconnectACK     = 41
	rfcDisconnectNAK     = 42
	rfcMessageAuth       = 80
	rfcErrorCause        = 101
)

// rfcAttr is one attribute of a packet as the stand-in reads it.
type rfcAttr struct {
	typ   byte
	value []byte
}

func rfcAttributes(p []byte) ([]rfcAttr, error) {
	var out []rfcAttr
	for rest := p[20:]; len(rest) > 0; {
		if len(rest) < 2 || rest[1] < 2 || int(rest[1]) > len(rest) {
			return nil, errors.New("bad attribute framing")
		}
		out = append(out, rfcAttr{rest[0], rest[2:rest[1]]})
		rest = rest[rest[1]:]
	}
	return out, nil
}

// rfcVerifyRequest checks a Disconnect-Request the way a NAS must before
// acting on it, and returns its attributes.
func rfcVerifyRequest(p, secret []byte) ([]rfcAttr, error) {
	if len(p) < 20 || int(binary.BigEndian.Uint16(p[2:4])) != len(p) {
		return nil, errors.New("length field does not match the datagram")
	}
	if p[0] != rfcDisconnectRequest {
		return nil, fmt.Errorf("code %d, not Disconnect-Request", p[0])
	}
	attrs, err := rfcAttributes(p)
	if err != nil {
		return nil, err
	}
	zeroed := bytes.Clone(p)
	clear(zeroed[4:20])
	sum := md5.Sum(append(bytes.Clone(zeroed), secret...))
	if !bytes.Equal(sum[:], p[4:20]) {
		return nil, errors.New("Request Authenticator does not verify")
	}
	found := 0
	off := 20
	for _, a := range attrs {
		if a.typ == rfcMessageAuth {
			found++
			if len(a.value) != 16 {
				return nil, errors.New("Message-Authenticator is not 16 octets")
			}
			clear(zeroed[off+2 : off+18])
			mac := hmac.New(md5.New, secret)
			mac.Write(zeroed)
			if !hmac.Equal(mac.Sum(nil), a.value) {
				return nil, errors.New("Message-Authenticator does not verify")
			}
		}
		off += 2 + len(a.value)
	}
	if found != 1 {
		return nil, fmt.Errorf("%d Message-Authenticators, want 1", found)
	}
	return attrs, nil
}

// rfcResponse encodes an answer to req. withMA adds a Message-Authenticator;
// badMA spoils it while keeping the Response Authenticator valid.
func rfcResponse(req []byte, code byte, attrs []rfcAttr, secret []byte, withMA, badMA bool) []byte {
	p := make([]byte, 20)
	p[0], p[1] = code, req[1]
	copy(p[4:20], req[4:20]) // the Request Authenticator, for the HMAC
	maOff := -1
	if withMA {
		maOff = len(p) + 2
		p = append(p, rfcMessageAuth, 18)
		p = append(p, make([]byte, 16)...)
	}
	for _, a := range attrs {
		p = append(p, a.typ, byte(2+len(a.value)))
		p = append(p, a.value...)
	}
	binary.BigEndian.PutUint16(p[2:4], uint16(len(p)))
	if withMA {
		mac := hmac.New(md5.New, secret)
		mac.Write(p)
		copy(p[maOff:], mac.Sum(nil))
		if badMA {
			p[maOff] ^= 0xff
		}
	}
	sum := md5.Sum(append(bytes.Clone(p), secret...))
	copy(p[4:20], sum[:])
	return p
}

func errorCause(v uint32) rfcAttr {
	return rfcAttr{rfcErrorCause, binary.BigEndian.AppendUint32(nil, v)}
}

// nasStandIn is a NAS's dynamic-authorization server on loopback. answer
// decides, for the n-th request received (from 1), what to send back (nil:
// nothing).
type nasStandIn struct {
	t      *testing.T
	conn   *net.UDPConn
	secret []byte
	answer func(n int, req []byte) []byte

	mu       sync.Mutex
	received [][]byte
	attrs    []rfcAttr // of the last request that verified
	errs     []error   // requests that did not verify
}

func startNAS(t *testing.T, secret string, answer func(n int, req []byte) []byte) *nasStandIn {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &nasStandIn{t: t, conn: conn, secret: []byte(secret), answer: answer}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, src, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			req := bytes.Clone(buf[:n])
			attrs, verr := rfcVerifyRequest(req, s.secret)
			s.mu.Lock()
			s.received = append(s.received, req)
			count := len(s.received)
			if verr != nil {
				s.errs = append(s.errs, verr)
			} else {
				s.attrs = attrs
			}
			s.mu.Unlock()
			if verr != nil {
				continue // a NAS drops what does not verify
			}
			if resp := s.answer(count, req); resp != nil {
				conn.WriteToUDP(resp, src)
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, err := range s.errs {
			t.Errorf("the NAS stand-in refused a request: %v", err)
		}
	})
	return s
}

func (s *nasStandIn) addr() string { return s.conn.LocalAddr().String() }

func (s *nasStandIn) requests() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.received)
}

func (s *nasStandIn) lastAttrs() []rfcAttr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attrs
}

const coaSecret = "coa-secret"

func disconnectFor(nas string) authradius.DisconnectRequest {
	return authradius.DisconnectRequest{
		NAS: nas, Secret: coaSecret, UserName: "joao", AcctSessionID: "81a00003",
		FramedIP: netip.MustParseAddr("100.64.0.7"), NASIP: netip.MustParseAddr("10.0.0.1"),
	}
}

var fast = authradius.DisconnectOptions{Timeout: 100 * time.Millisecond, Tries: 3}

func TestDisconnectACK(t *testing.T) {
	t.Parallel()
	nas := startNAS(t, coaSecret, func(_ int, req []byte) []byte {
		return rfcResponse(req, rfcDisconnectACK, nil, []byte(coaSecret), true, false)
	})
	res, err := authradius.Disconnect(context.Background(), disconnectFor(nas.addr()), fast)
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != authradius.ResultDone || res.Detail != "Disconnect-ACK" || res.Tries != 1 {
		t.Errorf("result %+v", res)
	}
	// The request as the NAS read it: Message-Authenticator first, then
	// the session's attributes.
	want := []rfcAttr{
		{rfcMessageAuth, nil},
		{1, []byte("joao")},
		{44, []byte("81a00003")},
		{8, []byte{100, 64, 0, 7}},
		{4, []byte{10, 0, 0, 1}},
	}
	got := nas.lastAttrs()
	if len(got) != len(want) {
		t.Fatalf("attributes %v", got)
	}
	for i, w := range want {
		if got[i].typ != w.typ || (w.value != nil && !bytes.Equal(got[i].value, w.value)) {
			t.Errorf("attribute %d: %d=%q, want %d=%q", i, got[i].typ, got[i].value, w.typ, w.value)
		}
	}
}

func TestDisconnectNAK(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		attrs  []rfcAttr
		withMA bool
		cause  int
		detail string
	}{
		{"503 with Message-Authenticator", []rfcAttr{errorCause(503)}, true, 503, "503 Session-Context-Not-Found"},
		{"503 without", []rfcAttr{errorCause(503)}, false, 503, "503 Session-Context-Not-Found"},
		{"504 with Reply-Message", []rfcAttr{errorCause(504), {18, []byte("session is static")}}, true, 504, "504 Session-Context-Not-Removable: session is static"},
		{"unlisted cause", []rfcAttr{errorCause(599)}, false, 599, "599 unknown Error-Cause"},
		{"no cause", nil, false, 0, "Disconnect-NAK without Error-Cause"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nas := startNAS(t, coaSecret, func(_ int, req []byte) []byte {
				return rfcResponse(req, rfcDisconnectNAK, tc.attrs, []byte(coaSecret), tc.withMA, false)
			})
			res, err := authradius.Disconnect(context.Background(), disconnectFor(nas.addr()), fast)
			if err != nil {
				t.Fatal(err)
			}
			if res.Result != authradius.ResultRefused || res.ErrorCause != tc.cause || res.Detail != tc.detail {
				t.Errorf("result %+v", res)
			}
			if tc.cause == 503 && res.ErrorCauseName != "Session-Context-Not-Found" {
				t.Errorf("name %q", res.ErrorCauseName)
			}
		})
	}
}

// Silence: the request goes Tries times, the same bytes each time (same
// Identifier and authenticator: one request, retransmitted), then timeout.
func TestDisconnectTimeout(t *testing.T) {
	t.Parallel()
	nas := startNAS(t, coaSecret, func(int, []byte) []byte { return nil })
	start := time.Now()
	res, err := authradius.Disconnect(context.Background(), disconnectFor(nas.addr()), fast)
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != authradius.ResultTimeout || res.Tries != 3 || !strings.Contains(res.Detail, "no answer from "+nas.addr()+" after 3 tries") {
		t.Errorf("result %+v", res)
	}
	if took := time.Since(start); took < 300*time.Millisecond || took > 2*time.Second {
		t.Errorf("took %v, want about 3 × 100ms", took)
	}
	reqs := nas.requests()
	if len(reqs) != 3 {
		t.Fatalf("NAS received %d requests, want 3", len(reqs))
	}
	for _, r := range reqs[1:] {
		if !bytes.Equal(r, reqs[0]) {
			t.Error("a retransmission differs from the first request")
		}
	}
}

// An answer that does not verify is no answer.
func TestDisconnectUnverifiedAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		answer func(req []byte) []byte
	}{
		{"wrong secret", func(req []byte) []byte {
			return rfcResponse(req, rfcDisconnectACK, nil, []byte("not-the-secret"), false, false)
		}},
		{"bad Message-Authenticator", func(req []byte) []byte {
			return rfcResponse(req, rfcDisconnectACK, nil, []byte(coaSecret), true, true)
		}},
		{"other Identifier", func(req []byte) []byte {
			r := bytes.Clone(req)
			r[1]++
			return rfcResponse(r, rfcDisconnectACK, nil, []byte(coaSecret), false, false)
		}},
		{"not a Disconnect answer", func(req []byte) []byte {
			return rfcResponse(req, 44 /* CoA-ACK */, nil, []byte(coaSecret), false, false)
		}},
		{"truncated", func(req []byte) []byte {
			return rfcResponse(req, rfcDisconnectACK, nil, []byte(coaSecret), false, false)[:19]
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nas := startNAS(t, coaSecret, func(_ int, req []byte) []byte { return tc.answer(req) })
			res, err := authradius.Disconnect(context.Background(), disconnectFor(nas.addr()), fast)
			if err != nil {
				t.Fatal(err)
			}
			if res.Result != authradius.ResultTimeout || res.Ignored != 3 {
				t.Errorf("result %+v", res)
			}
		})
	}
}

// The first copy is lost; the retransmission is answered.
func TestDisconnectRetransmission(t *testing.T) {
	t.Parallel()
	nas := startNAS(t, coaSecret, func(n int, req []byte) []byte {
		if n == 1 {
			return nil
		}
		return rfcResponse(req, rfcDisconnectACK, nil, []byte(coaSecret), false, false)
	})
	res, err := authradius.Disconnect(context.Background(), disconnectFor(nas.addr()), fast)
	if err != nil || res.Result != authradius.ResultDone || res.Tries != 2 {
		t.Fatalf("result %+v, %v", res, err)
	}
}

func TestDisconnectPortUnreachable(t *testing.T) {
	t.Parallel()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close() // nobody listens there now
	res, err := authradius.Disconnect(context.Background(), disconnectFor(addr), authradius.DisconnectOptions{Timeout: 50 * time.Millisecond, Tries: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != authradius.ResultTimeout || !strings.Contains(res.Detail, "port unreachable") {
		t.Errorf("result %+v", res)
	}
}

func TestDisconnectContext(t *testing.T) {
	t.Parallel()
	nas := startNAS(t, coaSecret, func(int, []byte) []byte { return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := authradius.Disconnect(ctx, disconnectFor(nas.addr()), authradius.DisconnectOptions{Timeout: time.Minute})
	if !errors.Is(err, context.DeadlineExceeded) || res.Result != authradius.ResultTimeout {
		t.Fatalf("result %+v, err %v", res, err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %v after the context ended", took)
	}
}

func TestDisconnectRefusesToSend(t *testing.T) {
	t.Parallel()
	for name, r := range map[string]authradius.DisconnectRequest{
		"no secret":         {NAS: "127.0.0.1:3799", UserName: "joao"},
		"no session":        {NAS: "127.0.0.1:3799", Secret: "s", NASIP: netip.MustParseAddr("10.0.0.1")},
		"IPv6 Framed-IP":    {NAS: "127.0.0.1:3799", Secret: "s", FramedIP: netip.MustParseAddr("2001:db8::1")},
		"long User-Name":    {NAS: "127.0.0.1:3799", Secret: "s", UserName: strings.Repeat("x", 254)},
		"bad NAS address":   {NAS: "127.0.0.1", Secret: "s", UserName: "joao"},
		"empty NAS address": {Secret: "s", UserName: "joao"},
	} {
		if _, err := authradius.Disconnect(context.Background(), r, fast); err == nil {
			t.Errorf("%s: sent", name)
		}
	}
}

func TestDisconnectRequestStringHidesSecret(t *testing.T) {
	r := disconnectFor("10.0.0.1:3799")
	s := r.String()
	want := `Disconnect-Request to 10.0.0.1:3799 User-Name="joao" Acct-Session-Id="81a00003" Framed-IP-Address=100.64.0.7 NAS-IP-Address=10.0.0.1`
	if s != want || strings.Contains(fmt.Sprintf("%v %+v", r, r), coaSecret) {
		t.Errorf("String() = %s", s)
	}
}

func TestErrorCauseNames(t *testing.T) {
	for v, want := range map[int]string{
		201: "Residual-Session-Context-Removed", 202: "Invalid-EAP-Packet", 401: "Unsupported-Attribute",
		402: "Missing-Attribute", 403: "NAS-Identification-Mismatch", 404: "Invalid-Request",
		405: "Unsupported-Service", 406: "Unsupported-Extension", 407: "Invalid-Attribute-Value",
		501: "Administratively-Prohibited", 502: "Request-Not-Routable", 503: "Session-Context-Not-Found",
		504: "Session-Context-Not-Removable", 505: "Other-Proxy-Processing-Error", 506: "Resources-Unavailable",
		507: "Request-Initiated", 508: "Multiple-Session-Selection-Unsupported", 200: "", 509: "",
	} {
		if got := authradius.ErrorCauseName(v); got != want {
			t.Errorf("%d: %q, want %q", v, got, want)
		}
	}
}
