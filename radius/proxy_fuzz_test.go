package radius

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2868"
	"layeh.com/radius/rfc2869"

	"authwatch/radius/radiustest"
)

var (
	fuzzNASSecret = []byte("nas-secret")
	fuzzUpSecret  = []byte("upstream-secret")
	fuzzState     = []byte("PSTATE01")
)

// fuzzSeeds are Access-Requests as NAS send them: PAP, CHAP with and
// without CHAP-Challenge, MS-CHAPv2, EAP, behind another proxy, the longest
// password, no Message-Authenticator.
func fuzzSeeds(t testing.TB) [][]byte {
	msChapV2 := radius.Attributes{
		{Type: rfc2865.VendorSpecific_Type, Attribute: radiustest.VSA(311, 11, bytes.Repeat([]byte{1}, 16))},
		{Type: rfc2865.VendorSpecific_Type, Attribute: radiustest.VSA(311, 25, bytes.Repeat([]byte{2}, 50))},
	}
	var out [][]byte
	for _, a := range []radiustest.Access{
		{User: "alice", Password: "alice-pass", MAC: "AA:BB:CC:DD:EE:FF", NASPortID: "ether1"},
		{User: "bob", CHAP: "bob-pass"},
		{User: "bob", CHAP: "bob-pass", CHAPChallenge: []byte("challenge-0123456")},
		{User: "carol", Extra: msChapV2},
		{User: "dave", Extra: radius.Attributes{{Type: rfc2869.EAPMessage_Type, Attribute: []byte{2, 1, 0, 10, 1, 'd', 'a', 'v', 'e', 0}}}},
		{User: "erin", Password: string(bytes.Repeat([]byte{'p'}, 128)), Extra: radius.Attributes{{Type: rfc2865.ProxyState_Type, Attribute: []byte("other-proxy")}}},
		{User: "frank", Password: "x", NoMessageAuthenticator: true},
	} {
		p, err := a.Packet(fuzzNASSecret)
		if err != nil {
			t.Fatal(err)
		}
		b, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		fixMA(b, fuzzNASSecret, nil)
		out = append(out, b)
	}
	return out
}

// fixMA signs b's Message-Authenticator, if it has a well-formed one, so
// that mutated packets still get past the check.
func fixMA(b, secret []byte, auth *[16]byte) {
	off := -1
	if eachAttribute(b, func(o int, t byte, v []byte) {
		if radius.Type(t) == rfc2869.MessageAuthenticator_Type && len(v) == 16 && off < 0 {
			off = o + attrHeader
		}
	}) != nil || off < 0 {
		return
	}
	ma := messageAuthenticator(b, off, auth, secret)
	copy(b[off:], ma[:])
}

// cut applies the header checks of front.admit: nil when the datagram would
// be dropped there.
func cut(b []byte) []byte {
	if len(b) < 20 {
		return nil
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n < 20 || n > len(b) || n > radius.MaxPacketLength {
		return nil
	}
	return b[:n]
}

// FuzzProxyRequest feeds arbitrary datagrams to the request path: the real
// Proxy's handle (from a configured NAS, its Message-Authenticator fixed up
// so that mutations get past it) against an upstream on loopback, and the
// rewrite for the upstream, whose output must be a well-formed request that
// keeps everything but what re-signing changes.
func FuzzProxyRequest(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	p := fuzzProxy(f)
	src := netip.MustParseAddrPort("127.0.0.1:9") // discard: answers go nowhere
	f.Fuzz(func(t *testing.T, b []byte) {
		b = bytes.Clone(b)
		if len(b) > 0 {
			b[0] = byte(radius.CodeAccessRequest)
		}
		if c := cut(b); c != nil {
			fixMA(c, fuzzNASSecret, nil)
		}
		p.handle(context.Background(), bytes.Clone(b), src, time.Now())

		req := cut(b)
		if req == nil {
			return
		}
		info, err := scanAccessRequest(req)
		if err != nil {
			return
		}
		auth := [16]byte{0x42, 1, 2, 3}
		out, err := proxyAccessRequest(req, &info, fuzzNASSecret, 7, auth, fuzzUpSecret, fuzzState)
		if errors.Is(err, errTooLarge) {
			return
		}
		if err != nil {
			t.Fatalf("rewrite of a scanned request failed: %v", err)
		}
		checkProxiedRequest(t, req, &info, out, auth)
	})
}

func checkProxiedRequest(t *testing.T, req []byte, info *accessRequest, out []byte, auth [16]byte) {
	if int(binary.BigEndian.Uint16(out[2:4])) != len(out) || len(out) > radius.MaxPacketLength {
		t.Fatalf("length field %d, packet %d", binary.BigEndian.Uint16(out[2:4]), len(out))
	}
	if out[0] != byte(radius.CodeAccessRequest) || out[1] != 7 || !bytes.Equal(out[4:20], auth[:]) {
		t.Fatalf("header % x", out[:20])
	}
	outInfo, err := scanAccessRequest(out)
	if err != nil {
		t.Fatalf("rewritten request does not scan: %v", err)
	}
	if outInfo.maOff != 22 {
		t.Fatalf("Message-Authenticator not first: at %d", outInfo.maOff)
	}
	if ma := messageAuthenticator(out, 22, nil, fuzzUpSecret); !bytes.Equal(ma[:], out[22:38]) {
		t.Fatal("Message-Authenticator does not verify with the upstream secret")
	}
	in, err := radius.ParseAttributes(req[20:])
	if err != nil {
		t.Fatal(err)
	}
	got, err := radius.ParseAttributes(out[20:])
	if err != nil {
		t.Fatal(err)
	}
	last := got[len(got)-1]
	if last.Type != rfc2865.ProxyState_Type || !bytes.Equal(last.Attribute, fuzzState) {
		t.Fatalf("last attribute %v % x, want our Proxy-State", last.Type, last.Attribute)
	}
	got = got[1 : len(got)-1] // without our Message-Authenticator and Proxy-State
	if info.chap && !info.chapChal {
		chal := got[len(got)-1]
		if chal.Type != rfc2865.CHAPChallenge_Type || !bytes.Equal(chal.Attribute, req[4:20]) {
			t.Fatalf("CHAP-Challenge %v % x, want the NAS's authenticator", chal.Type, chal.Attribute)
		}
		got = got[:len(got)-1]
	}
	var kept radius.Attributes
	for _, a := range in {
		if a.Type != rfc2869.MessageAuthenticator_Type {
			kept = append(kept, a)
		}
	}
	if len(kept) != len(got) {
		t.Fatalf("%d attributes forwarded, want %d", len(got), len(kept))
	}
	for i := range kept {
		a, b := kept[i], got[i]
		if a.Type != b.Type || len(a.Attribute) != len(b.Attribute) {
			t.Fatalf("attribute %d: %v/%d became %v/%d", i, a.Type, len(a.Attribute), b.Type, len(b.Attribute))
		}
		if a.Type == rfc2865.UserPassword_Type {
			was, err1 := radius.UserPassword(a.Attribute, fuzzNASSecret, req[4:20])
			now, err2 := radius.UserPassword(b.Attribute, fuzzUpSecret, auth[:])
			if err1 != nil || err2 != nil || !bytes.Equal(was, now) {
				t.Fatalf("User-Password changed in re-encryption (%v, %v)", err1, err2)
			}
			continue
		}
		if !bytes.Equal(a.Attribute, b.Attribute) {
			t.Fatalf("attribute %v changed: % x → % x", a.Type, a.Attribute, b.Attribute)
		}
	}
}

// FuzzProxyReply feeds arbitrary upstream answers (correctly signed, so
// that they get past verification) to the reply path: the relayed answer
// must verify with the NAS's secret, lose exactly our Proxy-State, and keep
// hidden attributes decryptable by the NAS.
func FuzzProxyReply(f *testing.F) {
	upAuth := [16]byte{9, 8, 7}
	nasAuth := [16]byte{1, 2, 3}
	tp, _ := radius.NewTunnelPassword([]byte("tunnel"), []byte{0x80, 1}, fuzzUpSecret, upAuth[:])
	for _, attrs := range []radius.Attributes{
		{{Type: rfc2865.ReplyMessage_Type, Attribute: []byte("senha incorreta")}, {Type: rfc2865.ProxyState_Type, Attribute: fuzzState}},
		{{Type: rfc2869.MessageAuthenticator_Type, Attribute: make([]byte, 16)}, {Type: rfc2865.FramedIPAddress_Type, Attribute: []byte{100, 64, 0, 1}},
			{Type: rfc2865.ProxyState_Type, Attribute: []byte("nas-side")}, {Type: rfc2865.ProxyState_Type, Attribute: fuzzState}},
		{{Type: rfc2868.TunnelPassword_Type, Attribute: append([]byte{0}, tp...)},
			{Type: rfc2865.VendorSpecific_Type, Attribute: radiustest.VSA(311, 16, append([]byte{0x81, 2}, make([]byte, 32)...))},
			{Type: rfc2865.VendorSpecific_Type, Attribute: radiustest.VSA(311, 12, make([]byte, 32))}},
	} {
		p := &radius.Packet{Code: radius.CodeAccessAccept, Identifier: 5, Attributes: attrs}
		b, err := p.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		up := cut(bytes.Clone(b))
		if up == nil {
			return
		}
		up[0] = byte(radius.CodeAccessAccept) + up[0]%2 // Accept or Reject
		fixMA(up, fuzzUpSecret, &upAuth)
		h := newMD5(up[:4], upAuth[:], up[20:], fuzzUpSecret)
		copy(up[4:20], h[:])
		if err := verifyReply(up, upAuth, fuzzUpSecret, false); err != nil {
			return // e.g. bad framing, two Message-Authenticators
		}
		out, dropped, err := proxyReply(up, upAuth, fuzzUpSecret, 33, nasAuth, fuzzNASSecret, fuzzState)
		if errors.Is(err, errTooLarge) {
			return
		}
		if err != nil {
			t.Fatalf("relay of a verified answer failed: %v", err)
		}
		if out[1] != 33 || int(binary.BigEndian.Uint16(out[2:4])) != len(out) {
			t.Fatalf("header % x, %d octets", out[:20], len(out))
		}
		if err := verifyReply(out, nasAuth, fuzzNASSecret, true); err != nil {
			t.Fatalf("relayed answer does not verify with the NAS's secret: %v", err)
		}
		countState := func(p []byte) (n int) {
			_ = eachAttribute(p, func(_ int, t byte, v []byte) {
				if radius.Type(t) == rfc2865.ProxyState_Type && bytes.Equal(v, fuzzState) {
					n++
				}
			})
			return n
		}
		if in, got := countState(up), countState(out); got != max(in-1, 0) {
			t.Fatalf("our Proxy-State: %d in the answer, %d relayed", in, got)
		}
		if dropped < 0 {
			t.Fatal("negative drop count")
		}
		if r := replyMessages(out); !utf8.ValidString(r) || len(r) > 1024 {
			t.Fatalf("reason %q", r)
		}
	})
}

func newMD5(parts ...[]byte) [16]byte {
	h := md5.New()
	for _, p := range parts {
		h.Write(p)
	}
	var s [16]byte
	h.Sum(s[:0])
	return s
}

// fuzzProxy is a Proxy running on loopback in front of an upstream that
// accepts everything, for the fuzz target to hand datagrams to.
func fuzzProxy(f *testing.F) *Proxy {
	up, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 4096)
		for {
			n, src, err := up.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			req, err := radius.Parse(buf[:n], fuzzUpSecret)
			if err != nil {
				continue
			}
			resp := req.Response(radius.CodeAccessAccept)
			for _, a := range req.Attributes {
				if a.Type == rfc2865.ProxyState_Type {
					resp.Attributes = append(resp.Attributes, a)
				}
			}
			if b, err := resp.Encode(); err == nil {
				up.WriteToUDPAddrPort(b, src)
			}
		}
	})
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	cfg := DefaultProxyConfig()
	cfg.Listen, cfg.Timeout, cfg.Retries = "127.0.0.1:0", 100*time.Millisecond, 0
	cfg.Upstreams = []Upstream{{Address: up.LocalAddr().String(), Secret: Secret(fuzzUpSecret)}}
	p, err := NewProxy(conn, []Client{{
		Name: "fuzz-nas", Prefix: netip.MustParsePrefix("127.0.0.1/32"), Secret: fuzzNASSecret,
		AllowMissingMessageAuthenticator: true, // reach further without one
	}}, nil, cfg, ProxyOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), UpstreamSockets: 1})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	f.Cleanup(func() {
		cancel()
		<-done
		conn.Close()
		up.Close()
		wg.Wait()
	})
	return p
}
