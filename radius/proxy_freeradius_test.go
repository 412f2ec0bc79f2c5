package radius_test

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	authradius "authwatch/radius"
	"authwatch/radius/radiustest"
	"authwatch/watcher"
)

// authwatch in front of two real FreeRADIUS servers, as deployed: the NAS
// sends Access-Requests to the proxy and accounting to the Listener, which
// stores and forwards it. One pair of servers is shared by the steps, which
// run in order: the last ones kill the servers.
func TestProxyFreeRADIUS(t *testing.T) {
	t.Parallel()
	fr1 := startFreeRADIUS(t, "fr-1", true)
	fr2 := startFreeRADIUS(t, "fr-2", true)

	cfg := authradius.DefaultProxyConfig()
	cfg.Listen, cfg.ForwardAccounting = "127.0.0.1:0", true
	cfg.Timeout, cfg.Retries, cfg.DeadAfter = 300*time.Millisecond, 1, 1
	for _, f := range []*freeRADIUS{fr1, fr2} {
		cfg.Upstreams = append(cfg.Upstreams, authradius.Upstream{Name: f.name, Address: f.auth, AcctAddress: f.acct, Secret: authradius.Secret(f.secret)})
	}
	// One socket per upstream port: the 1000 requests below wait for
	// Identifiers.
	h := startProxy(t, proxyNAS, cfg, authradius.ProxyOptions{UpstreamSockets: 1})
	nas := h.nas(h.addr, radiustest.ClientOptions{Sockets: 4, Tries: 1, Retry: 3 * time.Second})
	ctx := context.Background()

	exchange := func(t *testing.T, a radiustest.Access) *radius.Packet {
		t.Helper()
		req := accessPacket(t, a)
		raw, err := nas.ExchangeRaw(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", a.User, err)
		}
		if !radiustest.ReplyMessageAuthenticatorOK(raw, req.Authenticator, testSecret) {
			t.Errorf("%s: reply without a valid Message-Authenticator", a.User)
		}
		resp, err := radius.Parse(raw, testSecret)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	lastEvent := func(t *testing.T, login string, n int) watcher.Event {
		t.Helper()
		return h.events(t, login, n)[n-1]
	}

	t.Run("PAP accept", func(t *testing.T) {
		resp := exchange(t, radiustest.Access{User: "alice", Password: "alice-pass", MAC: "aa-bb-cc-00-00-10", NASPortID: "ether2.100"})
		if resp.Code != radius.CodeAccessAccept || rfc2865.FramedIPAddress_Get(resp).String() != "100.64.0.10" {
			t.Fatalf("answer %v %v", resp.Code, resp.Attributes)
		}
		ev := lastEvent(t, "alice", 1)
		if ev.Kind != watcher.AuthAccept || ev.NAS != "bras-centro" || ev.MAC != "AA:BB:CC:00:00:10" || ev.Source != "proxy" ||
			ev.Detail.Attributes["Framed-IP-Address"] != "100.64.0.10" || ev.Detail.Attributes["Framed-Pool"] != "clientes" {
			t.Errorf("event %+v %+v", ev, ev.Detail)
		}
	})
	t.Run("PAP reject with the server's Reply-Message", func(t *testing.T) {
		resp := exchange(t, radiustest.Access{User: "alice", Password: "wrong"})
		if resp.Code != radius.CodeAccessReject {
			t.Fatalf("answer %v", resp.Code)
		}
		if ev := lastEvent(t, "alice", 2); ev.Kind != watcher.AuthReject || ev.Reason != "senha incorreta" {
			t.Errorf("event %+v", ev)
		}
		exchange(t, radiustest.Access{User: "blocked", Password: "blocked-pass"})
		if ev := lastEvent(t, "blocked", 1); ev.Kind != watcher.AuthReject || ev.Reason != "cliente bloqueado" {
			t.Errorf("event %+v", ev)
		}
	})
	t.Run("accept into the provider's block: blocked and plan", func(t *testing.T) {
		h.state.SetBlockPolicy(watcher.BlockPolicy{AddressLists: []string{"bloqueados"}, ReducedRateLimits: []string{"1M/1M"}})
		resp := exchange(t, radiustest.Access{User: "devedor", Password: "devedor-pass", MAC: "aa:bb:cc:00:00:66"})
		if resp.Code != radius.CodeAccessAccept {
			t.Fatalf("answer %v", resp.Code)
		}
		ev := lastEvent(t, "devedor", 1)
		if ev.Kind != watcher.AuthAccept || ev.Detail.Attributes["26:14988:19"] != "bloqueados" || ev.Detail.Attributes["26:14988:8"] != "1M/1M 2M/2M 1M/1M 8/8" {
			t.Fatalf("event %+v %+v", ev, ev.Detail)
		}
		// The state applies the event just after it is stored, on the
		// recorder's own goroutine: wait for it.
		c, _ := h.state.Customer("devedor")
		for deadline := time.Now().Add(5 * time.Second); c.Blocked == nil && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
			c, _ = h.state.Customer("devedor")
		}
		if c.Blocked == nil || c.Blocked.By != "address-list bloqueados" || c.Blocked.Source != "proxy" ||
			c.Plan != "1M/1M" || c.Reduced == nil || c.Reduced.By != "rate-limit 1M/1M" {
			t.Errorf("state: plan %q blocked %+v reduced %+v", c.Plan, c.Blocked, c.Reduced)
		}
	})
	t.Run("CHAP", func(t *testing.T) {
		for i, challenge := range [][]byte{nil, []byte("0123456789abcdef")} {
			if resp := exchange(t, radiustest.Access{User: "chap-user", CHAP: "chap-user-pass", CHAPChallenge: challenge}); resp.Code != radius.CodeAccessAccept {
				t.Errorf("challenge %q: %v", challenge, resp.Code)
			}
			if ev := lastEvent(t, "chap-user", i+1); ev.Kind != watcher.AuthAccept {
				t.Errorf("event %+v", ev)
			}
		}
		if resp := exchange(t, radiustest.Access{User: "chap-user", CHAP: "wrong"}); resp.Code != radius.CodeAccessReject {
			t.Errorf("wrong CHAP password: %v", resp.Code)
		}
	})
	t.Run("radclient as the NAS", func(t *testing.T) {
		radclient := radiustest.NeedCommand(t, "radclient")
		run := func(addr, secret, attrs string) string {
			t.Helper()
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, radclient, "-x", "-r", "1", "-t", "1", addr, "auth", secret)
			cmd.Stdin = strings.NewReader(attrs)
			out, _ := cmd.CombinedOutput() // exits 1 on a reject or no answer
			return string(out)
		}
		out := run(h.addr, string(testSecret), "User-Name = \"rc-user\"\nUser-Password = \"rc-user-pass\"\nMessage-Authenticator = 0x00\n")
		if !strings.Contains(out, "Received Access-Accept") {
			t.Errorf("radclient PAP:\n%s", out)
		}
		// MS-CHAP is forwarded untouched; the MPPE keys in the answer are
		// encrypted for the hop, so radclient decrypts the same keys
		// through the proxy as straight from the server.
		mschap := "User-Name = \"rc-user\"\nMS-CHAP-Password = \"rc-user-pass\"\nMessage-Authenticator = 0x00\n"
		keys := regexp.MustCompile(`MS-CHAP-MPPE-Keys = 0x[0-9a-f]+`)
		direct, proxied := run(fr1.auth, fr1.secret, mschap), run(h.addr, string(testSecret), mschap)
		if k := keys.FindString(direct); k == "" || k != keys.FindString(proxied) {
			t.Errorf("MS-CHAP keys differ through the proxy:\ndirect:\n%s\nproxied:\n%s", direct, proxied)
		}
		if !strings.Contains(proxied, "Received Access-Accept") {
			t.Errorf("radclient MS-CHAP:\n%s", proxied)
		}
		// Without a Message-Authenticator the proxy does not answer.
		before := h.p.Stats().Dropped[authradius.DropMissingMessageAuthenticator]
		out = run(h.addr, string(testSecret), "User-Name = \"rc-user\"\nUser-Password = \"rc-user-pass\"\n")
		if strings.Contains(out, "Received Access") {
			t.Errorf("answered radclient without Message-Authenticator:\n%s", out)
		}
		if got := h.p.Stats().Dropped[authradius.DropMissingMessageAuthenticator]; got < before+1 {
			t.Errorf("refusal not counted: %d", got)
		}
		if evs := h.events(t, "rc-user", 2); evs[0].Kind != watcher.AuthAccept || evs[1].Kind != watcher.AuthAccept {
			t.Errorf("events %+v", evs)
		}
	})
	t.Run("accounting reaches FreeRADIUS and the store", func(t *testing.T) {
		acct := h.nas(h.acct, radiustest.ClientOptions{Tries: 1, Retry: 3 * time.Second})
		p, err := radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "acct-user", SessionID: "fr-session-1", MAC: "aa:bb:cc:00:00:10"}.Packet(testSecret)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := acct.Exchange(ctx, p); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(fr1.detail(), `Acct-Session-Id = "fr-session-1"`) {
			t.Errorf("not in FreeRADIUS's detail file:\n%s", fr1.detail())
		}
		if ev := lastEvent(t, "acct-user", 1); ev.Kind != watcher.SessionStart || ev.SessionID != "fr-session-1" {
			t.Errorf("stored %+v", ev)
		}
	})
	t.Run("1000 concurrent requests", func(t *testing.T) {
		const n = 1000
		var wg sync.WaitGroup
		var wrong, failed atomic.Int64
		for i := range n {
			wg.Go(func() {
				user, pw, want := fmt.Sprintf("c%04d", i), fmt.Sprintf("c%04d-pass", i), radius.CodeAccessAccept
				if i%2 == 1 {
					pw, want = "nope", radius.CodeAccessReject
				}
				resp, err := nas.Exchange(ctx, accessPacket(t, radiustest.Access{User: user, Password: pw}))
				if err != nil {
					failed.Add(1)
					return
				}
				if resp.Code != want {
					wrong.Add(1)
				}
			})
		}
		wg.Wait()
		if failed.Load() != 0 || wrong.Load() != 0 {
			t.Fatalf("%d unanswered, %d wrong answers", failed.Load(), wrong.Load())
		}
	})
	t.Run("failover when the primary dies", func(t *testing.T) {
		fr1.kill()
		resp := exchange(t, radiustest.Access{User: "alice", Password: "alice-pass"})
		if resp.Code != radius.CodeAccessAccept {
			t.Fatalf("answer %v", resp.Code)
		}
		st := h.p.Stats()
		if st.Upstreams[0].Auth.Timeouts != 1 || !st.Upstreams[0].Auth.Dead {
			t.Errorf("primary %+v", st.Upstreams[0].Auth)
		}
		acct := h.nas(h.acct, radiustest.ClientOptions{Tries: 1, Retry: 3 * time.Second})
		p, err := radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Stop, User: "acct-user", SessionID: "fr-session-1", TerminateCause: rfc2866.AcctTerminateCause_Value_LostCarrier}.Packet(testSecret)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := acct.Exchange(ctx, p); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(fr2.detail(), `Acct-Session-Id = "fr-session-1"`) {
			t.Errorf("the Stop is not in the secondary's detail file:\n%s", fr2.detail())
		}
	})
	t.Run("both dead: timeout event", func(t *testing.T) {
		fr2.kill()
		// fr-1 is skipped (dead), fr-2 tried twice: 600 ms.
		patient := h.nas(h.addr, radiustest.ClientOptions{Tries: 1, Retry: time.Second})
		req := accessPacket(t, radiustest.Access{User: "zoe", Password: "zoe-pass", MAC: "aa:bb:cc:00:00:99"})
		if _, err := patient.Exchange(ctx, req); err == nil {
			t.Fatal("answered with both servers down")
		}
		ev := lastEvent(t, "zoe", 1)
		if ev.Kind != watcher.Log || ev.Reason != "upstream timeout — no answer from fr-1, fr-2" || ev.MAC != "AA:BB:CC:00:00:99" {
			t.Errorf("event %+v", ev)
		}
	})
}

// A real FreeRADIUS that stops answering (SIGSTOP) is marked dead, probed
// with Status-Server, and revived by its answer to one once it runs again
// (SIGCONT): dead_time is an hour here, so nothing else could revive it.
func TestProxyProbesFreeRADIUS(t *testing.T) {
	t.Parallel()
	fr1 := startFreeRADIUS(t, "fr-1", false)
	fr2 := startFreeRADIUS(t, "fr-2", false)
	cfg := authradius.DefaultProxyConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Timeout, cfg.Retries, cfg.DeadAfter, cfg.DeadTime = 300*time.Millisecond, 0, 1, time.Hour
	cfg.StatusInterval = 50 * time.Millisecond
	for _, f := range []*freeRADIUS{fr1, fr2} {
		cfg.Upstreams = append(cfg.Upstreams, authradius.Upstream{Name: f.name, Address: f.auth, Secret: authradius.Secret(f.secret)})
	}
	h := startProxy(t, proxyNAS, cfg, authradius.ProxyOptions{})
	nas := h.nas(h.addr, radiustest.ClientOptions{Tries: 1, Retry: 3 * time.Second})
	accept := func(user string) {
		t.Helper()
		resp, err := nas.Exchange(context.Background(), accessPacket(t, radiustest.Access{User: user, Password: user + "-pass"}))
		if err != nil || resp.Code != radius.CodeAccessAccept {
			t.Fatalf("%s: %v %v", user, resp, err)
		}
	}
	accepts := func(i int) int64 { return h.p.Stats().Upstreams[i].Auth.Replies["Access-Accept"] }

	accept("alice")
	if accepts(0) != 1 {
		t.Fatalf("fr-1 accepts %d", accepts(0))
	}
	if err := fr1.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	accept("alice") // fr-1 times out, fr-2 answers
	h.waitStats("probes of the stopped fr-1", func(s authradius.ProxyStats) bool {
		return s.Upstreams[0].Auth.Dead && s.Upstreams[0].Auth.StatusProbes >= 2
	})
	if accepts(1) != 1 {
		t.Fatalf("fr-2 accepts %d", accepts(1))
	}
	if err := fr1.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	h.waitStats("fr-1 revived by Status-Server", func(s authradius.ProxyStats) bool {
		return !s.Upstreams[0].Auth.Dead && s.Upstreams[0].Auth.StatusAnswered
	})
	accept("alice")
	if accepts(0) != 2 || accepts(1) != 1 {
		t.Errorf("after the revival: fr-1 accepts %d, fr-2 %d", accepts(0), accepts(1))
	}
}
