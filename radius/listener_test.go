package radius_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"

	authradius "authwatch/radius"
	"authwatch/radius/radiustest"
	"authwatch/watcher"
)

// quiet is how long a test waits to be sure no answer comes. Answers on
// loopback take well under a millisecond; the store's commit a few.
const quiet = 300 * time.Millisecond

func TestListenerRecordsAndAcks(t *testing.T) {
	t.Parallel()
	h := startListener(t, localNAS, authradius.Options{})
	c := h.client(radiustest.ClientOptions{Retry: 2 * time.Second, Tries: 1})
	ctx := context.Background()

	steps := []struct {
		acct radiustest.Acct
		want watcher.Event // the fields to compare; Detail partly
	}{
		{radiustest.Acct{Status: rfc2866.AcctStatusType_Value_AccountingOn, NASIP: netip.MustParseAddr("10.0.0.1")},
			watcher.Event{Kind: watcher.NASUp, Reason: "Accounting-On"}},
		{radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "alice", SessionID: "s1", MAC: "aa:bb:cc:dd:ee:01",
			IP: netip.MustParseAddr("100.64.0.1"), DelegatedPrefix: netip.MustParsePrefix("2804:db8:1::/56")},
			watcher.Event{Kind: watcher.SessionStart, Login: "alice", SessionID: "s1", MAC: "AA:BB:CC:DD:EE:01", IP: "100.64.0.1"}},
		{radiustest.Acct{Status: rfc2866.AcctStatusType_Value_InterimUpdate, User: "alice", SessionID: "s1", InputOctets: 1<<32 + 7},
			watcher.Event{Kind: watcher.SessionUpdate, Login: "alice", SessionID: "s1"}},
		{radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Stop, User: "alice", SessionID: "s1", TerminateCause: rfc2866.AcctTerminateCause_Value_UserRequest},
			watcher.Event{Kind: watcher.SessionStop, Login: "alice", SessionID: "s1", Reason: "User-Request"}},
		{radiustest.Acct{Status: rfc2866.AcctStatusType_Value_AccountingOff},
			watcher.Event{Kind: watcher.NASDown, Reason: "Accounting-Off"}},
	}
	for i, s := range steps {
		p, err := s.acct.Packet(testSecret)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Exchange(ctx, p)
		if err != nil {
			t.Fatalf("step %d (%v): %v", i, s.want.Kind, err)
		}
		if resp.Code != radius.CodeAccountingResponse {
			t.Fatalf("step %d: answer %v", i, resp.Code)
		}
		// The answer came, so the event must already be in the store.
		evs := h.events("")
		if len(evs) != i+1 {
			t.Fatalf("step %d: acked with %d events stored, want %d", i, len(evs), i+1)
		}
		got := evs[i]
		if got.Kind != s.want.Kind || got.Login != s.want.Login || got.SessionID != s.want.SessionID ||
			got.MAC != s.want.MAC || got.IP != s.want.IP || got.Reason != s.want.Reason ||
			got.Source != "radius" || got.NAS != "bras-centro" {
			t.Errorf("step %d: stored %+v, want %+v", i, got, s.want)
		}
	}
	alice := h.events("alice")
	if d := alice[0].Detail; d == nil || d.DelegatedPrefix != "2804:db8:1::/56" {
		t.Errorf("start detail = %+v", d)
	}
	if d := alice[1].Detail; d == nil || d.InputOctets != 1<<32+7 {
		t.Errorf("interim detail = %+v", d)
	}
	// Counters move just after the answer is sent.
	st := h.waitStats("the last ack", func(s authradius.Stats) bool { return s.Acked == 5 })
	if st.Acked != 5 || st.Recorded != 5 || st.Received != 5 || st.NAS["bras-centro"].Acked != 5 ||
		st.NAS["bras-centro"].Packets["Accounting-Request"] != 5 {
		t.Errorf("stats = %+v", st)
	}
	if ns := st.NAS["bras-centro"]; time.Since(ns.LastPacket) > time.Minute || time.Since(ns.LastAcked) > time.Minute || ns.LastAcked.Before(ns.LastPacket) {
		t.Errorf("bras-centro last packet %v, last acked %v", ns.LastPacket, ns.LastAcked)
	}
	for reason, n := range st.Dropped {
		if n != 0 {
			t.Errorf("dropped[%s] = %d", reason, n)
		}
	}
}

// While the commit is held back, the NAS hears nothing; the answer comes
// once the commit is done, and the event is there.
func TestListenerAcksOnlyAfterCommit(t *testing.T) {
	t.Parallel()
	h := startListener(t, localNAS, authradius.Options{})
	peer := dialPeer(t, "127.0.0.1", h.addr)
	req := encode(t, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "bob", SessionID: "b1"}, testSecret)

	h.store.hold()
	peer.send(req)
	h.waitStats("the request to reach the store", func(authradius.Stats) bool { return h.store.appends.Load() > 0 })
	if resp := peer.recv(quiet); resp != nil {
		t.Fatalf("answered before the commit: % x", resp)
	}
	h.store.release()
	resp := peer.recv(5 * time.Second)
	if resp == nil {
		t.Fatal("no answer after the commit")
	}
	if !radius.IsAuthenticResponse(resp, req, testSecret) || radius.Code(resp[0]) != radius.CodeAccountingResponse {
		t.Fatalf("bad answer % x", resp)
	}
	if evs := h.events("bob"); len(evs) != 1 {
		t.Fatalf("stored %d events, want 1", len(evs))
	}
}

// RFC 5080: a retransmission is answered again, from the cache, and stored
// once; while the first copy is being committed, copies are dropped.
func TestListenerDuplicates(t *testing.T) {
	t.Parallel()
	h := startListener(t, localNAS, authradius.Options{})
	peer := dialPeer(t, "127.0.0.1", h.addr)
	req := encode(t, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "carol", SessionID: "c1",
		Extra: radius.Attributes{{Type: 33, Attribute: radius.Attribute("via-proxy")}}}, testSecret) // Proxy-State

	// In flight: the store is held, so the copies find the first pending.
	h.store.hold()
	peer.send(req)
	h.waitStats("the request to be recorded", func(s authradius.Stats) bool { return s.Recorded == 1 })
	peer.send(req)
	peer.send(req)
	h.waitStats("the copies to be dropped", func(s authradius.Stats) bool { return s.Dropped[authradius.DropDuplicateInflight] == 2 })
	h.store.release()
	first := peer.recv(5 * time.Second)
	if first == nil || !radius.IsAuthenticResponse(first, req, testSecret) {
		t.Fatalf("first answer = % x", first)
	}
	if extra := peer.recv(quiet); extra != nil {
		t.Fatalf("copies in flight were answered: % x", extra)
	}
	if !bytes.Contains(first, []byte("via-proxy")) {
		t.Errorf("the answer does not carry the request's Proxy-State: % x", first)
	}

	// Answered: the retransmission gets the same answer again.
	for i := range 2 {
		peer.send(req)
		again := peer.recv(5 * time.Second)
		if !bytes.Equal(again, first) {
			t.Fatalf("retransmission %d answered % x, want % x", i, again, first)
		}
	}
	if evs := h.events("carol"); len(evs) != 1 {
		t.Fatalf("stored %d events, want 1", len(evs))
	}
	st := h.waitStats("the counters", func(s authradius.Stats) bool { return s.DuplicatesAnswered == 2 })
	if st.DuplicatesAnswered != 2 || st.Acked != 1 || st.Recorded != 1 {
		t.Errorf("stats = %+v", st)
	}

	// Another request with the same Identifier but new content is new.
	other := encode(t, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Stop, User: "carol", SessionID: "c1"}, testSecret)
	other[1] = req[1]
	fixAuthenticator(other, testSecret)
	peer.send(other)
	if resp := peer.recv(5 * time.Second); !radius.IsAuthenticResponse(resp, other, testSecret) {
		t.Fatalf("answer to a new request with a reused Identifier = % x", resp)
	}
	if evs := h.events("carol"); len(evs) != 2 {
		t.Fatalf("stored %d events, want 2", len(evs))
	}
}

// The duplicate window is honoured: after it, the same bytes are a new
// request.
func TestListenerDuplicateWindow(t *testing.T) {
	t.Parallel()
	h := startListener(t, localNAS, authradius.Options{DuplicateWindow: 100 * time.Millisecond})
	peer := dialPeer(t, "127.0.0.1", h.addr)
	req := encode(t, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "dave"}, testSecret)
	peer.send(req)
	if peer.recv(5*time.Second) == nil {
		t.Fatal("no answer")
	}
	time.Sleep(150 * time.Millisecond)
	peer.send(req)
	if peer.recv(5*time.Second) == nil {
		t.Fatal("no answer after the window")
	}
	if evs := h.events("dave"); len(evs) != 2 {
		t.Fatalf("stored %d events, want 2 (the window expired)", len(evs))
	}
}

// No ack before commit: when the store fails, nothing is answered; the
// NAS's retransmission after the store recovers is stored and answered.
func TestListenerStoreFailureSendsNoAnswer(t *testing.T) {
	t.Parallel()
	h := startListener(t, localNAS, authradius.Options{})
	peer := dialPeer(t, "127.0.0.1", h.addr)
	req := encode(t, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Stop, User: "erin", SessionID: "e1"}, testSecret)

	h.store.fail.Store(true)
	peer.send(req)
	h.waitStats("the store failure", func(s authradius.Stats) bool { return s.Dropped[authradius.DropStoreError] == 1 })
	if resp := peer.recv(quiet); resp != nil {
		t.Fatalf("answered although the store failed: % x", resp)
	}
	peer.send(req) // the NAS retransmits; the store is still down
	h.waitStats("the second store failure", func(s authradius.Stats) bool { return s.Dropped[authradius.DropStoreError] == 2 })
	if resp := peer.recv(quiet); resp != nil {
		t.Fatalf("answered although the store failed: % x", resp)
	}
	if st := h.l.Stats(); st.Acked != 0 {
		t.Fatalf("acked %d", st.Acked)
	}

	h.store.fail.Store(false)
	peer.send(req)
	if resp := peer.recv(5 * time.Second); !radius.IsAuthenticResponse(resp, req, testSecret) {
		t.Fatalf("answer after recovery = % x", resp)
	}
	if evs := h.events("erin"); len(evs) != 1 {
		t.Fatalf("stored %d events, want 1", len(evs))
	}
}

// Everything that cannot be verified is dropped unanswered and counted.
func TestListenerDropsUnverified(t *testing.T) {
	t.Parallel()
	h := startListener(t, localNAS, authradius.Options{})
	good := radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "frank"}
	wrongSecret := []byte("not-the-secret")
	access := radius.New(radius.CodeAccessRequest, testSecret)
	accessReq, err := access.Encode()
	if err != nil {
		t.Fatal(err)
	}
	noStatus := encode(t, radiustest.Acct{User: "frank"}, testSecret)
	badAttrs := encode(t, good, testSecret)
	badAttrs = append(badAttrs, 1, 9) // an attribute longer than the packet
	badAttrs[3] += 2
	fixAuthenticator(badAttrs, testSecret)
	badStatus := radiustest.StatusServer()
	badStatus.Secret = testSecret
	badStatusReq, err := badStatus.Encode() // Message-Authenticator left zero
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		from   string
		req    []byte
		reason string
	}{
		{"unknown source", "127.0.0.2", encode(t, good, testSecret), authradius.DropUnknownClient},
		{"wrong secret", "127.0.0.1", encode(t, good, wrongSecret), authradius.DropBadAuthenticator},
		{"tampered", "127.0.0.1", tamper(encode(t, good, testSecret)), authradius.DropBadAuthenticator},
		{"status-server without valid Message-Authenticator", "127.0.0.1", badStatusReq, authradius.DropBadAuthenticator},
		{"short", "127.0.0.1", []byte{4, 1, 0}, authradius.DropMalformed},
		{"length beyond the datagram", "127.0.0.1", encode(t, good, testSecret)[:25], authradius.DropMalformed},
		{"bad attribute framing", "127.0.0.1", badAttrs, authradius.DropMalformed},
		{"no Acct-Status-Type", "127.0.0.1", noStatus, authradius.DropMalformed},
		{"access-request", "127.0.0.1", accessReq, authradius.DropUnsupportedCode},
	}
	want := map[string]int64{}
	var peers []*udpPeer
	for _, tt := range tests {
		p := dialPeer(t, tt.from, h.addr)
		p.send(tt.req)
		peers = append(peers, p)
		want[tt.reason]++
	}
	h.waitStats("every packet", func(s authradius.Stats) bool { return s.Received == int64(len(tests)) })
	for i, p := range peers {
		if resp := p.recv(quiet / 3); resp != nil {
			t.Errorf("%s: answered % x", tests[i].name, resp)
		}
	}
	st := h.l.Stats()
	for reason, n := range st.Dropped {
		if n != want[reason] {
			t.Errorf("dropped[%s] = %d, want %d", reason, n, want[reason])
		}
	}
	if st.Acked != 0 || st.Recorded != 0 {
		t.Errorf("stats = %+v", st)
	}
	if got := st.NAS["bras-centro"].Dropped[authradius.DropBadAuthenticator]; got != 3 {
		t.Errorf("bras-centro bad authenticators = %d, want 3", got)
	}
	// It sends, and is never answered: the wrong secret, as an operator sees it.
	if ns := st.NAS["bras-centro"]; ns.LastPacket.IsZero() || !ns.LastAcked.IsZero() {
		t.Errorf("bras-centro last packet %v, last acked %v", ns.LastPacket, ns.LastAcked)
	}
	logs := h.logs.String()
	for _, want := range []string{"unknown source", "bad Request Authenticator", "malformed"} {
		if !strings.Contains(logs, want) {
			t.Errorf("no %q warning in the log:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, string(testSecret)) || strings.Contains(logs, string(wrongSecret)) {
		t.Errorf("a secret is in the log:\n%s", logs)
	}
}

// A NAS with a wrong secret floods the log with one line a minute, not one
// per packet.
func TestListenerRateLimitsWarnings(t *testing.T) {
	t.Parallel()
	h := startListener(t, localNAS, authradius.Options{})
	peer := dialPeer(t, "127.0.0.1", h.addr)
	for i := range 20 {
		peer.send(encode(t, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: fmt.Sprint("u", i)}, []byte("wrong")))
	}
	h.waitStats("the packets", func(s authradius.Stats) bool { return s.Dropped[authradius.DropBadAuthenticator] == 20 })
	if n := strings.Count(h.logs.String(), "bad Request Authenticator"); n != 1 {
		t.Errorf("%d warnings for 20 bad packets, want 1:\n%s", n, h.logs)
	}
}

// Malformed IPv6 attributes are left out, but the record is stored and acked.
func TestListenerStoresDespiteBadAttribute(t *testing.T) {
	t.Parallel()
	h := startListener(t, localNAS, authradius.Options{})
	c := h.client(radiustest.ClientOptions{Tries: 1})
	p, err := radiustest.Acct{
		Status: rfc2866.AcctStatusType_Value_Start, User: "gina", SessionID: "g1",
		IP:    netip.MustParseAddr("100.64.0.7"),
		Extra: radius.Attributes{{Type: 123, Attribute: radius.Attribute{0, 200, 1}}}, // Delegated-IPv6-Prefix /200
	}.Packet(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exchange(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	evs := h.events("gina")
	if len(evs) != 1 || evs[0].IP != "100.64.0.7" || evs[0].Detail.DelegatedPrefix != "" {
		t.Fatalf("stored %+v", evs)
	}
	if st := h.l.Stats(); st.BadAttributes != 1 {
		t.Errorf("bad attributes = %d, want 1", st.BadAttributes)
	}
	if !strings.Contains(h.logs.String(), "Delegated-IPv6-Prefix") {
		t.Errorf("no warning about the attribute:\n%s", h.logs)
	}
}

func TestListenerStatusServer(t *testing.T) {
	t.Parallel()
	h := startListener(t, localNAS, authradius.Options{})
	c := h.client(radiustest.ClientOptions{Tries: 1})
	status := radiustest.StatusServer()
	raw, err := c.ExchangeRaw(context.Background(), status)
	if err != nil {
		t.Fatal(err)
	}
	if radius.Code(raw[0]) != radius.CodeAccountingResponse {
		t.Fatalf("answer code %v", radius.Code(raw[0]))
	}
	resp, err := radius.Parse(raw, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	req, err := status.MarshalBinary() // as sent: Exchange filled it in
	if err != nil {
		t.Fatal(err)
	}
	ma, ok := resp.Lookup(rfc2869.MessageAuthenticator_Type)
	if !ok || len(ma) != 16 {
		t.Fatalf("no Message-Authenticator in % x", raw)
	}
	// RFC 3579 §3.2: HMAC-MD5 over the answer with the Request
	// Authenticator in place and the attribute zeroed.
	check := bytes.Clone(raw)
	copy(check[4:20], req[4:20])
	clear(check[len(check)-16:])
	mac := hmac.New(md5.New, testSecret)
	mac.Write(check)
	if !hmac.Equal(mac.Sum(nil), ma) {
		t.Errorf("Message-Authenticator does not verify")
	}
	h.waitStats("the Status-Server count", func(s authradius.Stats) bool { return s.StatusServer == 1 })
	if evs := h.events(""); len(evs) != 0 {
		t.Errorf("Status-Server stored %d events", len(evs))
	}
}

// Longest prefix wins; SetClients swaps the list while running.
func TestListenerClients(t *testing.T) {
	t.Parallel()
	netSecret, hostSecret := []byte("net-secret"), []byte("host-secret")
	h := startListener(t, []authradius.Client{
		{Name: "pop-net", Prefix: netip.MustParsePrefix("127.0.0.0/8"), Secret: netSecret},
		{Name: "bras-host", Prefix: netip.MustParsePrefix("127.0.0.1/32"), Secret: hostSecret},
		{Name: "shadowed", Prefix: netip.MustParsePrefix("127.0.0.0/8"), Secret: []byte("x")},
	}, authradius.Options{})

	exchange := func(from string, secret []byte, user string) []byte {
		t.Helper()
		peer := dialPeer(t, from, h.addr)
		req := encode(t, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: user}, secret)
		peer.send(req)
		resp := peer.recv(quiet)
		if resp != nil && !radius.IsAuthenticResponse(resp, req, secret) {
			t.Fatalf("unverifiable answer % x", resp)
		}
		return resp
	}
	if exchange("127.0.0.1", hostSecret, "h1") == nil {
		t.Error("host client not answered")
	}
	if exchange("127.0.0.2", netSecret, "n1") == nil {
		t.Error("network client not answered")
	}
	if exchange("127.0.0.1", netSecret, "h2") != nil {
		t.Error("network secret accepted from the host that has its own")
	}
	for login, nas := range map[string]string{"h1": "bras-host", "n1": "pop-net"} {
		if evs := h.events(login); len(evs) != 1 || evs[0].NAS != nas {
			t.Errorf("%s: %+v, want NAS %s", login, evs, nas)
		}
	}

	if err := h.l.SetClients([]authradius.Client{{Name: "bras-host", Prefix: netip.MustParsePrefix("127.0.0.1/32"), Secret: []byte("rotated")}}); err != nil {
		t.Fatal(err)
	}
	if exchange("127.0.0.1", hostSecret, "h3") != nil {
		t.Error("old secret accepted after SetClients")
	}
	if exchange("127.0.0.1", []byte("rotated"), "h4") == nil {
		t.Error("new secret refused after SetClients")
	}
	if exchange("127.0.0.2", netSecret, "n2") != nil {
		t.Error("removed client answered")
	}
	st := h.waitStats("the counters", func(s authradius.Stats) bool { return s.Acked == 3 })
	if st.NAS["bras-host"].Acked != 2 || st.NAS["pop-net"].Acked != 1 {
		t.Errorf("per-NAS stats survive SetClients: %+v", st.NAS)
	}
	if err := h.l.SetClients([]authradius.Client{{Name: "no-secret", Prefix: netip.MustParsePrefix("10.0.0.1/32")}}); err == nil {
		t.Error("SetClients accepted a client without a secret")
	}
	if exchange("127.0.0.1", []byte("rotated"), "h5") == nil {
		t.Error("a refused SetClients changed the clients")
	}
}

// On stop, requests already handed to the Recorder are still answered
// before Run returns; Run gives up after StopTimeout.
func TestListenerGracefulStop(t *testing.T) {
	t.Parallel()
	h := startListener(t, localNAS, authradius.Options{StopTimeout: 3 * time.Second})
	peer := dialPeer(t, "127.0.0.1", h.addr)
	const n = 10
	h.store.hold()
	for i := range n {
		req := encode(t, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: fmt.Sprint("stop", i)}, testSecret)
		peer.send(req)
	}
	h.waitStats("the requests to be recorded", func(s authradius.Stats) bool { return s.Recorded == n })

	stopped := make(chan error, 1)
	go func() { stopped <- h.stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Run returned with answers outstanding: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	h.store.release()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	got := 0
	for peer.recv(quiet) != nil {
		got++
	}
	if got != n {
		t.Fatalf("%d answers, want %d", got, n)
	}
	// Stopped: nothing is read any more.
	peer.send(encode(t, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "late"}, testSecret))
	if resp := peer.recv(quiet / 3); resp != nil {
		t.Fatal("answered after stop")
	}
}

func TestListenerStopTimeout(t *testing.T) {
	t.Parallel()
	h := startListener(t, localNAS, authradius.Options{StopTimeout: 200 * time.Millisecond})
	peer := dialPeer(t, "127.0.0.1", h.addr)
	h.store.hold() // never released before Run returns
	peer.send(encode(t, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "stuck"}, testSecret))
	h.waitStats("the request to be recorded", func(s authradius.Stats) bool { return s.Recorded == 1 })
	start := time.Now()
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 200*time.Millisecond || took > 2*time.Second {
		t.Errorf("Run took %v to give up, want about 200ms", took)
	}
	if !strings.Contains(h.logs.String(), "uncommitted") {
		t.Errorf("no warning about the pending request:\n%s", h.logs)
	}
}

func TestListenerRunTwice(t *testing.T) {
	t.Parallel()
	h := startListener(t, localNAS, authradius.Options{})
	// An answered Status-Server proves the first Run is reading.
	if _, err := h.client(radiustest.ClientOptions{}).ExchangeRaw(context.Background(), radiustest.StatusServer()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := h.l.Run(ctx); err == nil {
		t.Fatal("second Run did not fail")
	}
}

// The listener's Run returns the socket's error when the socket is closed
// under it, rather than spinning.
func TestListenerClosedSocket(t *testing.T) {
	t.Parallel()
	h := startListener(t, localNAS, authradius.Options{Workers: 2})
	h.stopOnce.Do(func() {}) // this test consumes Run's result itself
	h.conn.Close()
	select {
	case err := <-h.listenerDone:
		if err == nil {
			t.Fatal("Run returned nil after the socket closed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the socket closed")
	}
	h.stopListener()
}

// fixAuthenticator recomputes the Request Authenticator of an edited
// Accounting-Request.
func fixAuthenticator(b, secret []byte) {
	clear(b[4:20])
	h := md5.New()
	h.Write(b)
	h.Write(secret)
	h.Sum(b[4:4])
}

// tamper changes a byte of the last attribute, after the authenticator was
// computed.
func tamper(b []byte) []byte {
	b[len(b)-1] ^= 0xff
	return b
}
