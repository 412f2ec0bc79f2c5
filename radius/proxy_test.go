package radius_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2868"
	"layeh.com/radius/rfc2869"

	authradius "authwatch/radius"
	"authwatch/radius/radiustest"
	"authwatch/watcher"
)

// passwordServer accepts users whose password is "pw-" + login, the way a
// real server would check it: after decrypting User-Password with its own
// secret and the Request Authenticator it received.
func passwordServer(req *radius.Packet, _ []byte) []byte {
	user := rfc2865.UserName_GetString(req)
	pw := rfc2865.UserPassword_GetString(req)
	if pw == "pw-"+user {
		return reply(req, radius.CodeAccessAccept,
			avp(rfc2865.FramedIPAddress_Type, []byte{100, 64, 0, 9}),
			avp(rfc2865.ReplyMessage_Type, []byte("bem-vindo")))
	}
	if user == "silent-reject" {
		return reply(req, radius.CodeAccessReject)
	}
	return reply(req, radius.CodeAccessReject, avp(rfc2865.ReplyMessage_Type, []byte("senha incorreta")))
}

func TestProxyPAP(t *testing.T) {
	t.Parallel()
	up := newFakeUpstream(t, passwordServer)
	h := startProxy(t, proxyNAS, proxyConfig(time.Second, 0, up), authradius.ProxyOptions{})
	nas := h.nas(h.addr, radiustest.ClientOptions{Tries: 1, Retry: 2 * time.Second})
	ctx := context.Background()

	long := strings.Repeat("x", 128-len("pw-")-len("long"))
	for _, tc := range []struct {
		login, password string
		want            radius.Code
		reason          string
	}{
		{"alice", "pw-alice", radius.CodeAccessAccept, "bem-vindo"},
		{"bob", "wrong", radius.CodeAccessReject, "senha incorreta"},
		{"silent-reject", "x", radius.CodeAccessReject, "rejected by server"},
		{"long" + long, "pw-long" + long, radius.CodeAccessAccept, "bem-vindo"},       // 128 octets: 8 blocks
		{"seventeen12345", "pw-seventeen12345", radius.CodeAccessAccept, "bem-vindo"}, // 17 octets: 2 blocks
	} {
		req := accessPacket(t, radiustest.Access{User: tc.login, Password: tc.password, MAC: "aa-bb-cc-00-00-01", NASPortID: "ether2.100",
			Extra: radius.Attributes{avp(rfc2865.ProxyState_Type, []byte("nas-side-proxy"))}})
		raw, err := nas.ExchangeRaw(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", tc.login, err)
		}
		if radius.Code(raw[0]) != tc.want {
			t.Fatalf("%s: answer %v, want %v", tc.login, radius.Code(raw[0]), tc.want)
		}
		if !radiustest.ReplyMessageAuthenticatorOK(raw, req.Authenticator, testSecret) {
			t.Errorf("%s: the reply's Message-Authenticator does not verify with the NAS's secret", tc.login)
		}
		resp, err := radius.Parse(raw, testSecret)
		if err != nil {
			t.Fatal(err)
		}
		// Ours removed, the NAS-side proxy's kept.
		if states := resp.Attributes; len(states) == 0 || fmt.Sprint(proxyStateValues(resp)) != "[nas-side-proxy]" {
			t.Errorf("%s: Proxy-States in the reply: %q", tc.login, proxyStateValues(resp))
		}
		evs := h.events(t, tc.login, 1)
		ev := evs[0]
		wantKind := watcher.AuthAccept
		if tc.want == radius.CodeAccessReject {
			wantKind = watcher.AuthReject
		}
		if ev.Kind != wantKind || ev.Reason != tc.reason || ev.Source != "proxy" || ev.NAS != "bras-centro" ||
			ev.MAC != "AA:BB:CC:00:00:01" || ev.Detail == nil || ev.Detail.NASPortID != "ether2.100" {
			t.Errorf("%s: event %+v %+v", tc.login, ev, ev.Detail)
		}
		if wantKind == watcher.AuthAccept && ev.Detail.Attributes["Framed-IP-Address"] != "100.64.0.9" {
			t.Errorf("%s: the reply's attributes are not in the event: %v", tc.login, ev.Detail.Attributes)
		}
		if _, ok := ev.Detail.Attributes["User-Password"]; ok {
			t.Errorf("%s: a password in the event", tc.login)
		}
	}
	st := h.waitStats("the replies", func(s authradius.ProxyStats) bool {
		return s.Replies["Access-Accept"] == 3 && s.Replies["Access-Reject"] == 2
	})
	if st.Forwarded != 5 || st.Upstreams[0].Auth.Requests != 5 || st.Upstreams[0].Auth.Latency.Count != 5 || st.NAS["bras-centro"].Acked != 5 {
		t.Errorf("stats %+v, upstream %+v", st, st.Upstreams[0].Auth)
	}
	for reason, n := range st.Dropped {
		if n != 0 {
			t.Errorf("dropped[%s] = %d", reason, n)
		}
	}
}

func proxyStateValues(p *radius.Packet) []string {
	var out []string
	for _, a := range p.Attributes {
		if a.Type == rfc2865.ProxyState_Type {
			out = append(out, string(a.Attribute))
		}
	}
	return out
}

// CHAP's proof is forwarded untouched; without a CHAP-Challenge the NAS's
// Request Authenticator was the challenge, so it travels as one.
func TestProxyCHAP(t *testing.T) {
	t.Parallel()
	var checked atomic.Int64
	up := newFakeUpstream(t, func(req *radius.Packet, raw []byte) []byte {
		chap := rfc2865.CHAPPassword_Get(req)
		challenge := rfc2865.CHAPChallenge_Get(req)
		if n := len(attrsOf(req, rfc2865.CHAPChallenge_Type)); n != 1 {
			t.Errorf("%d CHAP-Challenge attributes", n)
		}
		if len(chap) != 17 || !bytes.Equal(radiustest.CHAPPassword(chap[0], "chap-secret", challenge), chap) {
			return reply(req, radius.CodeAccessReject)
		}
		checked.Add(1)
		return reply(req, radius.CodeAccessAccept)
	})
	h := startProxy(t, proxyNAS, proxyConfig(time.Second, 0, up), authradius.ProxyOptions{})
	nas := h.nas(h.addr, radiustest.ClientOptions{Tries: 1})
	for _, challenge := range [][]byte{nil, []byte("explicit-challenge")} {
		resp, err := nas.Exchange(context.Background(), accessPacket(t, radiustest.Access{User: "carol", CHAP: "chap-secret", CHAPChallenge: challenge}))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Code != radius.CodeAccessAccept {
			t.Errorf("challenge %q: %v", challenge, resp.Code)
		}
	}
	if checked.Load() != 2 {
		t.Errorf("upstream verified %d CHAP proofs, want 2", checked.Load())
	}
	h.events(t, "carol", 2)
}

func attrsOf(p *radius.Packet, t radius.Type) []radius.Attribute {
	var out []radius.Attribute
	for _, a := range p.Attributes {
		if a.Type == t {
			out = append(out, a.Attribute)
		}
	}
	return out
}

// BlastRADIUS: an Access-Request without a Message-Authenticator, or with
// one that does not verify, never reaches the upstream; a NAS allowed to
// omit it is still checked when it sends one.
func TestProxyMessageAuthenticator(t *testing.T) {
	t.Parallel()
	up := newFakeUpstream(t, passwordServer)
	legacy := authradius.Client{Name: "old-routeros", Prefix: netip.MustParsePrefix("127.0.0.2/32"), Secret: testSecret, AllowMissingMessageAuthenticator: true}
	h := startProxy(t, append([]authradius.Client{legacy}, proxyNAS...), proxyConfig(time.Second, 0, up), authradius.ProxyOptions{})
	target := udpAddr(t, h.addr)

	send := func(from string, a radiustest.Access, edit func([]byte)) []byte {
		t.Helper()
		p := accessPacket(t, a)
		b := encodeAccess(t, p)
		if edit != nil {
			edit(b)
		}
		peer := dialPeer(t, from, target)
		peer.send(b)
		return peer.recv(quiet)
	}
	good := radiustest.Access{User: "dave", Password: "pw-dave"}
	noMA := radiustest.Access{User: "dave", Password: "pw-dave", NoMessageAuthenticator: true}

	if send("127.0.0.1", noMA, nil) != nil {
		t.Error("answered an Access-Request without Message-Authenticator")
	}
	if send("127.0.0.1", good, func(b []byte) { b[len(b)-1] ^= 1 }) != nil { // tampered after signing
		t.Error("answered an Access-Request whose Message-Authenticator does not verify")
	}
	if send("127.0.0.1", good, func(b []byte) { b[22] ^= 1 }) != nil { // the MAC itself
		t.Error("answered an Access-Request with a forged Message-Authenticator")
	}
	if up.received.Load() != 0 {
		t.Fatalf("upstream received %d refused requests", up.received.Load())
	}
	if send("127.0.0.1", good, nil) == nil {
		t.Error("a valid request went unanswered")
	}
	if send("127.0.0.2", noMA, nil) == nil {
		t.Error("the NAS allowed to omit the Message-Authenticator went unanswered")
	}
	if send("127.0.0.2", good, func(b []byte) { b[22] ^= 1 }) != nil {
		t.Error("a bad Message-Authenticator was accepted from the NAS allowed to omit it")
	}
	st := h.p.Stats()
	if st.Dropped[authradius.DropMissingMessageAuthenticator] != 1 || st.Dropped[authradius.DropBadAuthenticator] != 3 ||
		st.NAS["bras-centro"].Dropped[authradius.DropMissingMessageAuthenticator] != 1 || up.received.Load() != 2 {
		t.Errorf("dropped %v (upstream received %d)", st.Dropped, up.received.Load())
	}
	if n := strings.Count(h.logs.String(), "without Message-Authenticator"); n != 1 {
		t.Errorf("%d warnings about the missing Message-Authenticator, want 1", n)
	}
}

func udpAddr(t testing.TB, s string) *net.UDPAddr {
	t.Helper()
	a, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// encodeAccess is what radiustest.Client sends: the packet with its
// Message-Authenticator filled in.
func encodeAccess(t testing.TB, p *radius.Packet) []byte {
	t.Helper()
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for off := 20; off+2 <= len(b); off += int(b[off+1]) {
		if radius.Type(b[off]) == rfc2869.MessageAuthenticator_Type {
			clear(b[off+2 : off+18])
			mac := hmac.New(md5.New, p.Secret)
			mac.Write(b)
			mac.Sum(b[off+2 : off+2])
			break
		}
	}
	return b
}

// A retransmission while the upstream thinks is not forwarded again; once
// answered, it is answered from the cache with the same bytes.
func TestProxyDuplicates(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	up := newFakeUpstream(t, func(req *radius.Packet, raw []byte) []byte {
		<-gate
		return passwordServer(req, raw)
	})
	h := startProxy(t, proxyNAS, proxyConfig(5*time.Second, 0, up), authradius.ProxyOptions{})
	peer := dialPeer(t, "127.0.0.1", udpAddr(t, h.addr))
	req := encodeAccess(t, accessPacket(t, radiustest.Access{User: "erin", Password: "pw-erin"}))
	for range 3 {
		peer.send(req)
	}
	h.waitStats("the copies dropped", func(s authradius.ProxyStats) bool { return s.Dropped[authradius.DropDuplicateInflight] == 2 })
	close(gate)
	first := peer.recv(2 * time.Second)
	if first == nil || radius.Code(first[0]) != radius.CodeAccessAccept {
		t.Fatalf("answer % x", first)
	}
	peer.send(req)
	again := peer.recv(time.Second)
	if !bytes.Equal(first, again) {
		t.Errorf("cached answer differs:\n% x\n% x", first, again)
	}
	if n := up.received.Load(); n != 1 {
		t.Errorf("upstream received %d copies, want 1", n)
	}
	h.waitStats("the cached answer count", func(s authradius.ProxyStats) bool { return s.DuplicatesAnswered == 1 })
	h.events(t, "erin", 1)
}

// More requests in flight than one socket has Identifiers: each gets its
// own answer (the upstream echoes the login), and no two requests in flight
// ever share an Identifier on the upstream side.
func TestProxyConcurrent(t *testing.T) {
	t.Parallel()
	const n = 1000
	var (
		mu         sync.Mutex
		inFlight   = map[byte]bool{}
		collisions atomic.Int64
		maxIDs     atomic.Int64
	)
	up := newFakeUpstream(t, func(req *radius.Packet, raw []byte) []byte {
		mu.Lock()
		if inFlight[req.Identifier] {
			collisions.Add(1)
		}
		inFlight[req.Identifier] = true
		if k := int64(len(inFlight)); k > maxIDs.Load() {
			maxIDs.Store(k)
		}
		mu.Unlock()
		time.Sleep(20 * time.Millisecond) // keep them overlapping
		mu.Lock()
		delete(inFlight, req.Identifier) // before answering: the proxy may reuse it at once
		mu.Unlock()
		return reply(req, radius.CodeAccessAccept, avp(rfc2865.ReplyMessage_Type, []byte(rfc2865.UserName_GetString(req))))
	})
	// One upstream socket: 256 Identifiers for 1000 requests.
	h := startProxy(t, proxyNAS, proxyConfig(5*time.Second, 0, up), authradius.ProxyOptions{UpstreamSockets: 1})
	nas := h.nas(h.addr, radiustest.ClientOptions{Sockets: 4, Tries: 1, Retry: 10 * time.Second})

	var wg sync.WaitGroup
	var wrong, failed atomic.Int64
	for i := range n {
		wg.Go(func() {
			user := fmt.Sprintf("user%04d", i)
			resp, err := nas.Exchange(context.Background(), accessPacket(t, radiustest.Access{User: user, Password: "x"}))
			if err != nil {
				failed.Add(1)
				return
			}
			if rfc2865.ReplyMessage_GetString(resp) != user {
				wrong.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 || wrong.Load() != 0 || collisions.Load() != 0 {
		t.Fatalf("%d unanswered, %d wrong answers, %d Identifier collisions", failed.Load(), wrong.Load(), collisions.Load())
	}
	if maxIDs.Load() < 200 {
		t.Errorf("at most %d requests were in flight upstream; the test did not fill the Identifier space", maxIDs.Load())
	}
	if got := up.received.Load(); got != n {
		t.Errorf("upstream received %d requests, want %d (retransmissions?)", got, n)
	}
	st := h.waitStats("the events", func(s authradius.ProxyStats) bool { return s.Events == n })
	if st.Upstreams[0].Auth.Retransmits != 0 || st.Upstreams[0].Auth.Timeouts != 0 {
		t.Errorf("upstream stats %+v", st.Upstreams[0].Auth)
	}
}

// The primary does not answer: the secondary does, after one timeout; after
// dead_after such requests the primary is skipped. Both down: the NAS hears
// nothing and the agent sees an upstream timeout event.
func TestProxyFailover(t *testing.T) {
	t.Parallel()
	var primaryUp atomic.Bool
	primary := newFakeUpstream(t, func(req *radius.Packet, raw []byte) []byte {
		if !primaryUp.Load() {
			return nil
		}
		return passwordServer(req, raw)
	})
	var secondaryUp atomic.Bool
	secondaryUp.Store(true)
	secondary := newFakeUpstream(t, func(req *radius.Packet, raw []byte) []byte {
		if !secondaryUp.Load() {
			return nil
		}
		return passwordServer(req, raw)
	})
	cfg := proxyConfig(100*time.Millisecond, 1, primary, secondary)
	cfg.DeadAfter, cfg.DeadTime = 2, time.Hour
	h := startProxy(t, proxyNAS, cfg, authradius.ProxyOptions{})
	// The NAS waits longer than the proxy may take (two upstreams × two
	// tries × 100 ms), no longer.
	nas := h.nas(h.addr, radiustest.ClientOptions{Tries: 1, Retry: 700 * time.Millisecond})
	ask := func(user string) (radius.Code, time.Duration, error) {
		start := time.Now()
		resp, err := nas.Exchange(context.Background(), accessPacket(t, radiustest.Access{User: user, Password: "pw-" + user}))
		if err != nil {
			return 0, time.Since(start), err
		}
		return resp.Code, time.Since(start), nil
	}

	for i := range 2 {
		code, took, err := ask(fmt.Sprint("frank", i))
		if err != nil || code != radius.CodeAccessAccept || took < 200*time.Millisecond {
			t.Fatalf("request %d: %v %v after %v; want an accept after the primary's two tries", i, code, err, took)
		}
	}
	if got := primary.received.Load(); got != 4 {
		t.Errorf("primary received %d datagrams, want 2 tries × 2 requests", got)
	}
	st := h.p.Stats()
	if a := st.Upstreams[0].Auth; !a.Dead || a.Timeouts != 2 || a.Retransmits != 2 || a.MarkedDead != 1 {
		t.Errorf("primary stats %+v", a)
	}
	// Dead: skipped, so the answer comes without waiting.
	code, took, err := ask("frank-fast")
	if err != nil || code != radius.CodeAccessAccept || took > 90*time.Millisecond {
		t.Errorf("with the primary dead: %v %v after %v", code, err, took)
	}
	if got := primary.received.Load(); got != 4 {
		t.Errorf("dead primary received more requests: %d", got)
	}
	h.events(t, "frank-fast", 1)

	// Both down: every upstream is tried (the primary too: all are dead
	// or failing), then nothing goes back to the NAS.
	secondaryUp.Store(false)
	if _, _, err := ask("grace"); err == nil {
		t.Fatal("answered with every upstream down")
	}
	evs := h.events(t, "grace", 1)
	if evs[0].Kind != watcher.Log || evs[0].Reason != "upstream timeout — no answer from up1, up2" || evs[0].Source != "proxy" || evs[0].NAS != "bras-centro" {
		t.Errorf("event %+v", evs[0])
	}
	// Retries of the same login within the minute add no event.
	if _, _, err := ask("grace"); err == nil {
		t.Fatal("answered with every upstream down")
	}
	h.waitStats("the second failure", func(s authradius.ProxyStats) bool { return s.Dropped[authradius.DropUpstreamFailed] == 2 })
	h.events(t, "grace", 1)

	// The primary recovers: it is tried (everything is dead) and revived.
	primaryUp.Store(true)
	if code, _, err := ask("heidi"); err != nil || code != radius.CodeAccessAccept {
		t.Fatalf("after recovery: %v %v", code, err)
	}
	if a := h.p.Stats().Upstreams[0].Auth; a.Dead {
		t.Errorf("primary still dead after answering: %+v", a)
	}
	if !strings.Contains(h.logs.String(), "upstream marked dead") || !strings.Contains(h.logs.String(), "upstream answers again") {
		t.Errorf("no log of the primary's death and recovery:\n%s", h.logs)
	}
}

// Answers that do not verify are not answers: a server with another secret
// (or, when required, without a Message-Authenticator) is failed over.
func TestProxyUnverifiedUpstreamReplies(t *testing.T) {
	t.Parallel()
	wrongSecret := newFakeUpstream(t, func(req *radius.Packet, raw []byte) []byte {
		req.Secret = []byte("not-the-secret")
		return reply(req, radius.CodeAccessAccept)
	})
	noMA := newFakeUpstream(t, func(req *radius.Packet, raw []byte) []byte {
		return reply(req, radius.CodeAccessAccept) // layeh adds none
	})
	good := newFakeUpstream(t, func(req *radius.Packet, raw []byte) []byte {
		return reply(req, radius.CodeAccessReject, avp(rfc2865.ReplyMessage_Type, []byte("from the good one")))
	})
	cfg := proxyConfig(100*time.Millisecond, 0, wrongSecret, noMA, good)
	cfg.Upstreams[1].RequireMessageAuthenticator = true
	h := startProxy(t, proxyNAS, cfg, authradius.ProxyOptions{})
	nas := h.nas(h.addr, radiustest.ClientOptions{Tries: 1, Retry: 2 * time.Second})
	resp, err := nas.Exchange(context.Background(), accessPacket(t, radiustest.Access{User: "ivan", Password: "x"}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != radius.CodeAccessReject || rfc2865.ReplyMessage_GetString(resp) != "from the good one" {
		t.Fatalf("answer %v %q", resp.Code, rfc2865.ReplyMessage_GetString(resp))
	}
	st := h.p.Stats()
	if st.Upstreams[0].Auth.BadReplies != 1 || st.Upstreams[1].Auth.BadReplies != 1 || st.Upstreams[0].Auth.Timeouts != 1 {
		t.Errorf("upstream stats %+v %+v", st.Upstreams[0].Auth, st.Upstreams[1].Auth)
	}
	if !strings.Contains(h.logs.String(), "is the upstream's secret the configured one?") {
		t.Errorf("no warning about the unverified answer:\n%s", h.logs)
	}
}

// Tunnel-Password and Microsoft's MPPE keys are encrypted with the secret
// and the Request Authenticator of the hop: the NAS must get them decryptable
// with its own.
func TestProxyReencryptsHiddenReplyAttributes(t *testing.T) {
	t.Parallel()
	tunnelPW := []byte("tunnel-password")
	sendKey := bytes.Repeat([]byte{0xA5}, 32) // 1 length octet + key + padding
	mppeKeys := bytes.Repeat([]byte{0x3C}, 32)
	up := newFakeUpstream(t, func(req *radius.Packet, raw []byte) []byte {
		tp, err := radius.NewTunnelPassword(tunnelPW, []byte{0x80, 0x01}, upstreamSecret, req.Authenticator[:])
		if err != nil {
			panic(err)
		}
		send := append([]byte{0x81, 0x02}, saltEncrypt(sendKey, []byte{0x81, 0x02}, upstreamSecret, req.Authenticator[:])...)
		keys := saltEncrypt(mppeKeys, nil, upstreamSecret, req.Authenticator[:])
		ms := append(radiustest.VSA(311, 16, send), radiustest.VSA(311, 12, keys)[4:]...) // two sub-attributes in one VSA
		return reply(req, radius.CodeAccessAccept,
			avp(rfc2868.TunnelPassword_Type, append([]byte{0x01}, tp...)),
			avp(rfc2865.VendorSpecific_Type, ms))
	})
	h := startProxy(t, proxyNAS, proxyConfig(time.Second, 0, up), authradius.ProxyOptions{})
	nas := h.nas(h.addr, radiustest.ClientOptions{Tries: 1})
	req := accessPacket(t, radiustest.Access{User: "judy", Password: "x"})
	resp, err := nas.Exchange(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	tp := resp.Get(rfc2868.TunnelPassword_Type)
	if len(tp) < 1 {
		t.Fatal("no Tunnel-Password relayed")
	}
	got, _, err := radius.TunnelPassword(tp[1:], testSecret, req.Authenticator[:])
	if err != nil || !bytes.Equal(got, tunnelPW) {
		t.Errorf("Tunnel-Password decrypts to %q (%v) with the NAS's secret", got, err)
	}
	vsa := resp.Get(rfc2865.VendorSpecific_Type)
	if len(vsa) < 4+2+2+32+2+32 || binary.BigEndian.Uint32(vsa) != 311 {
		t.Fatalf("Microsoft VSA % x", vsa)
	}
	subs := vsa[4:]
	if subs[0] != 16 || !bytes.Equal(saltDecrypt(subs[4:subs[1]], subs[2:4], testSecret, req.Authenticator[:]), sendKey) {
		t.Errorf("MS-MPPE-Send-Key does not decrypt with the NAS's secret")
	}
	subs = subs[subs[1]:]
	if subs[0] != 12 || !bytes.Equal(saltDecrypt(subs[2:subs[1]], nil, testSecret, req.Authenticator[:]), mppeKeys) {
		t.Errorf("MS-CHAP-MPPE-Keys does not decrypt with the NAS's secret")
	}
	ev := h.events(t, "judy", 1)[0]
	for k, v := range ev.Detail.Attributes {
		if strings.HasPrefix(k, "26:311") || k == "Tunnel-Password" || strings.Contains(v, string(tunnelPW)) {
			t.Errorf("a hidden attribute in the event: %s = %s", k, v)
		}
	}
}

// saltEncrypt and saltDecrypt are RFC 2868 §3.5's scheme (without salt, RFC
// 2865 §5.2's), written out independently of the code under test.
func saltEncrypt(plain, salt, secret, auth []byte) []byte {
	out := make([]byte, len(plain))
	prev := append(append([]byte(nil), auth...), salt...)
	for i := 0; i < len(plain); i += 16 {
		b := md5.Sum(append(append([]byte(nil), secret...), prev...))
		for j := range 16 {
			out[i+j] = plain[i+j] ^ b[j]
		}
		prev = out[i : i+16]
	}
	return out
}

func saltDecrypt(c, salt, secret, auth []byte) []byte {
	out := make([]byte, len(c))
	prev := append(append([]byte(nil), auth...), salt...)
	for i := 0; i+16 <= len(c); i += 16 {
		b := md5.Sum(append(append([]byte(nil), secret...), prev...))
		for j := range 16 {
			out[i+j] = c[i+j] ^ b[j]
		}
		prev = c[i : i+16]
	}
	return out
}

// Status-Server on the authentication port is answered by the proxy itself
// (RFC 5997: an Access-Accept), never forwarded.
func TestProxyStatusServer(t *testing.T) {
	t.Parallel()
	up := newFakeUpstream(t, passwordServer)
	h := startProxy(t, proxyNAS, proxyConfig(time.Second, 0, up), authradius.ProxyOptions{})
	nas := h.nas(h.addr, radiustest.ClientOptions{Tries: 1})
	status := radiustest.StatusServer()
	raw, err := nas.ExchangeRaw(context.Background(), status)
	if err != nil {
		t.Fatal(err)
	}
	if radius.Code(raw[0]) != radius.CodeAccessAccept || !radiustest.ReplyMessageAuthenticatorOK(raw, status.Authenticator, testSecret) {
		t.Errorf("answer % x", raw)
	}
	// The counter moves just after the answer is sent.
	h.waitStats("the Status-Server count", func(s authradius.ProxyStats) bool { return s.StatusServer == 1 })
	if up.received.Load() != 0 {
		t.Errorf("Status-Server forwarded upstream")
	}
	// The accounting port's code is not served here.
	peer := dialPeer(t, "127.0.0.1", udpAddr(t, h.addr))
	peer.send(encode(t, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "x"}, testSecret))
	if peer.recv(quiet) != nil {
		t.Error("an Accounting-Request was answered on the authentication port")
	}
	if st := h.p.Stats(); st.Dropped[authradius.DropUnsupportedCode] != 1 {
		t.Errorf("dropped %v", st.Dropped)
	}
}

// Secrets and passwords appear nowhere in the logs, even at debug level and
// on every failure path.
func TestProxyLogsNoSecrets(t *testing.T) {
	t.Parallel()
	const password = "Very-Secret-Password-42"
	up := newFakeUpstream(t, func(req *radius.Packet, raw []byte) []byte {
		if rfc2865.UserName_GetString(req) == "timeout" {
			return nil
		}
		if rfc2865.UserName_GetString(req) == "garbage" {
			req.Secret = []byte("other")
		}
		return passwordServer(req, raw)
	})
	cfg := proxyConfig(100*time.Millisecond, 0, up)
	h := startProxy(t, proxyNAS, cfg, authradius.ProxyOptions{})
	nas := h.nas(h.addr, radiustest.ClientOptions{Tries: 1, Retry: 500 * time.Millisecond})
	for _, user := range []string{"kim", "timeout", "garbage"} {
		nas.Exchange(context.Background(), accessPacket(t, radiustest.Access{User: user, Password: password, CHAP: password}))
	}
	peer := dialPeer(t, "127.0.0.1", udpAddr(t, h.addr))
	peer.send(encodeAccess(t, accessPacket(t, radiustest.Access{User: "nomac", Password: password, NoMessageAuthenticator: true})))
	h.waitStats("the refusal", func(s authradius.ProxyStats) bool { return s.Dropped[authradius.DropMissingMessageAuthenticator] == 1 })
	h.shutdown()
	logs := h.logs.String()
	for _, secret := range []string{password, string(testSecret), string(upstreamSecret)} {
		if strings.Contains(logs, secret) {
			t.Errorf("%q is in the log:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, "login=kim") {
		t.Errorf("the debug log does not show the relayed answer:\n%s", logs)
	}
}

// A request in flight when Run is asked to stop still gets its answer.
func TestProxyGracefulStop(t *testing.T) {
	t.Parallel()
	up := newFakeUpstream(t, func(req *radius.Packet, raw []byte) []byte {
		time.Sleep(200 * time.Millisecond)
		return passwordServer(req, raw)
	})
	h := startProxy(t, proxyNAS, proxyConfig(time.Second, 0, up), authradius.ProxyOptions{})
	nas := h.nas(h.addr, radiustest.ClientOptions{Tries: 1, Retry: 2 * time.Second})
	errc := make(chan error, 1)
	go func() {
		_, err := nas.Exchange(context.Background(), accessPacket(t, radiustest.Access{User: "leo", Password: "pw-leo"}))
		errc <- err
	}()
	h.waitStats("the request to be in flight", func(s authradius.ProxyStats) bool { return s.Forwarded == 1 })
	if err := h.shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("the request in flight was not answered: %v", err)
	}
}

// An answer after the timeout is counted late: not taken for another
// request's answer, and not mistaken for a wrong secret.
func TestProxyLateAnswer(t *testing.T) {
	t.Parallel()
	slow := newFakeUpstream(t, func(req *radius.Packet, raw []byte) []byte {
		time.Sleep(250 * time.Millisecond)
		return passwordServer(req, raw)
	})
	fast := newFakeUpstream(t, passwordServer)
	h := startProxy(t, proxyNAS, proxyConfig(100*time.Millisecond, 0, slow, fast), authradius.ProxyOptions{})
	nas := h.nas(h.addr, radiustest.ClientOptions{Tries: 1, Retry: 2 * time.Second})
	resp, err := nas.Exchange(context.Background(), accessPacket(t, radiustest.Access{User: "mike", Password: "pw-mike"}))
	if err != nil || resp.Code != radius.CodeAccessAccept {
		t.Fatalf("answer %v %v", resp, err)
	}
	st := h.waitStats("the late answer", func(s authradius.ProxyStats) bool { return s.Upstreams[0].Auth.Late == 1 })
	if a := st.Upstreams[0].Auth; a.BadReplies != 0 || a.Timeouts != 1 {
		t.Errorf("slow upstream %+v", a)
	}
	if strings.Contains(h.logs.String(), "is the upstream's secret") {
		t.Errorf("a late answer was blamed on the secret:\n%s", h.logs)
	}
}

// A dead upstream is probed with Status-Server and revived as soon as it
// answers one, with no customer's request spent on finding out; once it has
// answered them, probes it leaves unanswered keep it dead past dead_time, so
// that customers' requests never wait on it.
func TestProxyProbesDeadUpstreams(t *testing.T) {
	t.Parallel()
	var primaryUp atomic.Bool
	var accessToPrimary, statusToPrimary atomic.Int64
	primary := newFakeUpstream(t, func(req *radius.Packet, raw []byte) []byte {
		if req.Code == radius.CodeStatusServer {
			if !requestMAOK(raw, upstreamSecret) {
				t.Errorf("Status-Server without a valid Message-Authenticator: % x", raw)
			}
			statusToPrimary.Add(1)
			if primaryUp.Load() {
				return reply(req, radius.CodeAccessAccept)
			}
			return nil
		}
		accessToPrimary.Add(1)
		if !primaryUp.Load() {
			return nil
		}
		return passwordServer(req, raw)
	})
	secondary := newFakeUpstream(t, passwordServer)
	cfg := proxyConfig(100*time.Millisecond, 0, primary, secondary)
	cfg.DeadAfter, cfg.DeadTime, cfg.StatusInterval = 1, time.Second, 30*time.Millisecond
	h := startProxy(t, proxyNAS, cfg, authradius.ProxyOptions{})
	nas := h.nas(h.addr, radiustest.ClientOptions{Tries: 1, Retry: 700 * time.Millisecond})
	ask := func(user string) time.Duration {
		t.Helper()
		start := time.Now()
		resp, err := nas.Exchange(context.Background(), accessPacket(t, radiustest.Access{User: user, Password: "pw-" + user}))
		if err != nil || resp.Code != radius.CodeAccessAccept {
			t.Fatalf("%s: %v %v", user, resp, err)
		}
		return time.Since(start)
	}
	primaryState := func() authradius.PoolStats { return *h.p.Stats().Upstreams[0].Auth }

	// The primary does not answer: one request waits for it, then it is dead.
	if took := ask("ana"); took < 100*time.Millisecond {
		t.Fatalf("first request answered after %v, before the primary's timeout", took)
	}
	h.waitStats("probes of the dead primary", func(s authradius.ProxyStats) bool { return s.Upstreams[0].Auth.StatusProbes >= 3 })
	if st := primaryState(); !st.Dead || st.StatusAnswered || st.Requests != 1 {
		t.Fatalf("primary %+v", st)
	}

	// It comes back: a probe finds out, and the next request goes to it.
	primaryUp.Store(true)
	h.waitStats("the primary revived", func(s authradius.ProxyStats) bool {
		return !s.Upstreams[0].Auth.Dead && s.Upstreams[0].Auth.StatusAnswered
	})
	before := accessToPrimary.Load()
	if took := ask("bia"); took > 90*time.Millisecond || accessToPrimary.Load() != before+1 {
		t.Fatalf("after the revival: answered in %v, primary got %d requests", took, accessToPrimary.Load()-before)
	}

	// Down again: marked dead by the request that waited for it, and,
	// having answered Status-Server before, kept dead past dead_time (1 s)
	// until it answers one: requests over the next 1.5 s never wait for it.
	primaryUp.Store(false)
	ask("caio")
	before = accessToPrimary.Load()
	for i := range 6 {
		time.Sleep(250 * time.Millisecond)
		if took := ask(fmt.Sprint("davi", i)); took > 90*time.Millisecond {
			t.Fatalf("request %d waited %v for the dead primary", i, took)
		}
	}
	if got := accessToPrimary.Load() - before; got != 0 {
		t.Errorf("the dead primary got %d customers' requests", got)
	}
	if st := primaryState(); st.MarkedDead != 2 || statusToPrimary.Load() < 10 {
		t.Errorf("primary %+v, %d probes", st, statusToPrimary.Load())
	}
	if !strings.Contains(h.logs.String(), "upstream answers again") {
		t.Errorf("no log of the revival:\n%s", h.logs)
	}
}
