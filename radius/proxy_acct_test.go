package radius_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	authradius "authwatch/radius"
	"authwatch/radius/radiustest"
)

// With forward_accounting the NAS's Accounting-Response waits for both the
// local commit and the upstream's answer; an upstream that does not answer
// gets the record again when the NAS retransmits, and the store keeps it
// once.
func TestProxyForwardsAccounting(t *testing.T) {
	t.Parallel()
	var (
		mode atomic.Int32 // 0 answer, 1 hold, 2 silent
		gate = make(chan struct{})
	)
	up := newFakeUpstream(t, func(req *radius.Packet, raw []byte) []byte {
		switch mode.Load() {
		case 1:
			<-gate
		case 2:
			return nil
		}
		return reply(req, radius.CodeAccountingResponse)
	})
	// Longer than quiet, so that holding the upstream for quiet is slow,
	// not dead.
	cfg := proxyConfig(600*time.Millisecond, 0, up)
	cfg.Listen, cfg.ForwardAccounting = "", true
	h := startProxy(t, proxyNAS, cfg, authradius.ProxyOptions{})
	peer := dialPeer(t, "127.0.0.1", udpAddr(t, h.acct))
	start := func(user string) []byte {
		return encode(t, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: user, SessionID: user + "-1",
			Extra: radius.Attributes{avp(rfc2865.ProxyState_Type, []byte("nas-side"))}}, testSecret)
	}
	acked := func(req, resp []byte) bool {
		return resp != nil && radius.IsAuthenticResponse(resp, req, testSecret) && radius.Code(resp[0]) == radius.CodeAccountingResponse
	}

	// Plain: stored, forwarded, acked.
	req := start("mallory")
	peer.send(req)
	if resp := peer.recv(2 * time.Second); !acked(req, resp) {
		t.Fatalf("no ack: % x", resp)
	}
	h.events(t, "mallory", 1)
	fwd, err := radius.Parse(up.lastRequest(), upstreamSecret)
	if err != nil {
		t.Fatal(err)
	}
	if rfc2865.UserName_GetString(fwd) != "mallory" || rfc2866.AcctSessionID_GetString(fwd) != "mallory-1" {
		t.Errorf("forwarded %+v", fwd.Attributes)
	}
	if states := proxyStateValues(fwd); len(states) != 2 || states[0] != "nas-side" {
		t.Errorf("forwarded Proxy-States %q: want the NAS's, then ours", states)
	}

	// Upstream slow: committed already, but no ack until it answers.
	mode.Store(1)
	req = start("niaj")
	peer.send(req)
	if resp := peer.recv(quiet); resp != nil {
		t.Fatal("acked before the upstream answered")
	}
	h.events(t, "niaj", 1)
	close(gate)
	if resp := peer.recv(2 * time.Second); !acked(req, resp) {
		t.Fatalf("no ack once the upstream answered: % x", resp)
	}

	// Upstream down: stored, not acked. It comes back: the NAS's
	// retransmission is forwarded and acked, not stored again.
	mode.Store(2)
	req = start("olivia")
	peer.send(req)
	if resp := peer.recv(time.Second); resp != nil {
		t.Fatal("acked although the upstream never answered")
	}
	h.events(t, "olivia", 1)
	listenerStats := func(what string, cond func(authradius.Stats) bool) authradius.Stats {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			st := h.l.Stats()
			if cond(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: %+v", what, st)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	listenerStats("the forwarding failure", func(s authradius.Stats) bool { return s.Dropped[authradius.DropUpstreamFailed] == 1 })
	mode.Store(0)
	peer.send(req)
	if resp := peer.recv(2 * time.Second); !acked(req, resp) {
		t.Fatalf("retransmission not acked after the upstream recovered: % x", resp)
	}
	h.events(t, "olivia", 1)
	received := up.received.Load()
	peer.send(req) // answered: from the cache, without the upstream
	if resp := peer.recv(time.Second); !acked(req, resp) {
		t.Fatalf("retransmission after the ack not answered: % x", resp)
	}
	if up.received.Load() != received {
		t.Error("a retransmission of an acked record was forwarded again")
	}
	// Counters move just after the answers are sent.
	ls := listenerStats("the last answer", func(s authradius.Stats) bool { return s.Acked == 3 && s.DuplicatesAnswered == 1 })
	ps := h.p.Stats()
	if ls.Forwarded != 3 || ls.Reforwarded != 1 || ls.Acked != 3 || ls.DuplicatesAnswered != 1 || ls.Recorded != 3 {
		t.Errorf("listener stats %+v", ls)
	}
	if ps.AccountingForwarded != 3 || ps.AccountingFailed != 1 || ps.Upstreams[0].Acct.Timeouts != 1 || ps.Upstreams[0].Auth != nil {
		t.Errorf("proxy stats %+v, acct %+v", ps, ps.Upstreams[0].Acct)
	}

	if err := h.shutdown(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	h.p.ForwardAccounting(req, "bras-centro", func(err error) { done <- err })
	if err := <-done; !errors.Is(err, authradius.ErrProxyStopped) {
		t.Errorf("forwarding after Run returned: %v", err)
	}
}

// The minimal [proxy] section works as written, with defaults.
func TestProxyConfigMinimal(t *testing.T) {
	var file struct {
		Proxy authradius.ProxyConfig `toml:"proxy"`
	}
	file.Proxy = authradius.DefaultProxyConfig()
	md, err := toml.Decode(`
[proxy]
listen = "0.0.0.0:1812"        # Access-Request from the [[nas]] clients
forward_accounting = true      # relay what [radius] receives, after storing it

[[proxy.upstream]]             # first is primary, the next ones are failover
address = "10.0.0.5:1812"
acct_address = "10.0.0.5:1813"
secret = "upstream-secret"
`, &file)
	if err != nil {
		t.Fatal(err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		t.Fatalf("undecoded keys %v", und)
	}
	c := file.Proxy
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	u := c.Upstreams[0]
	if !c.Enabled() || c.Timeout != 2*time.Second || c.Retries != 1 || c.DeadAfter != 3 || c.DeadTime != 30*time.Second ||
		u.Name != "10.0.0.5:1812" || u.Secret.Reveal() != "upstream-secret" {
		t.Errorf("config %+v", c)
	}
	// Durations are written like the rest of the file's.
	if _, err := toml.Decode("[proxy]\ntimeout = \"500ms\"\ndead_time = \"1m\"", &file); err != nil || file.Proxy.Timeout != 500*time.Millisecond {
		t.Errorf("durations: %v %v", err, file.Proxy.Timeout)
	}
}

func TestProxyConfigValidate(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	up := func(edit func(*authradius.Upstream)) authradius.Upstream {
		u := authradius.Upstream{Address: "10.0.0.5:1812", AcctAddress: "10.0.0.5:1813", Secret: "s"}
		if edit != nil {
			edit(&u)
		}
		return u
	}
	for _, tc := range []struct {
		name string
		cfg  authradius.ProxyConfig
		want string // "" valid; else a substring of the error
	}{
		{"off", authradius.ProxyConfig{}, ""},
		{"off with defaults", authradius.DefaultProxyConfig(), ""},
		{"listen without upstream", authradius.ProxyConfig{Listen: ":1812"}, "proxy.upstream: at least one"},
		{"upstreams serving nothing", authradius.ProxyConfig{Upstreams: []authradius.Upstream{up(nil)}}, "proxy.listen: required"},
		{"accounting only", authradius.ProxyConfig{ForwardAccounting: true, Upstreams: []authradius.Upstream{up(func(u *authradius.Upstream) { u.Address = "" })}}, ""},
		{"no address", authradius.ProxyConfig{Listen: ":1812", Upstreams: []authradius.Upstream{up(func(u *authradius.Upstream) { u.Address = "" })}}, "proxy.upstream[0].address: required"},
		{"no port", authradius.ProxyConfig{Listen: ":1812", Upstreams: []authradius.Upstream{up(func(u *authradius.Upstream) { u.Address = "10.0.0.5" })}}, "proxy.upstream[0].address: not host:port"},
		{"no acct_address", authradius.ProxyConfig{Listen: ":1812", ForwardAccounting: true, Upstreams: []authradius.Upstream{up(nil), up(func(u *authradius.Upstream) { u.Name, u.AcctAddress = "b", "" })}}, "proxy.upstream[1].acct_address: required with proxy.forward_accounting"},
		{"no secret", authradius.ProxyConfig{Listen: ":1812", Upstreams: []authradius.Upstream{up(func(u *authradius.Upstream) { u.Secret = "" })}}, "proxy.upstream[0].secret: required"},
		{"both secrets", authradius.ProxyConfig{Listen: ":1812", Upstreams: []authradius.Upstream{up(func(u *authradius.Upstream) { u.SecretFile = secretFile })}}, "proxy.upstream[0].secret_file: set secret or secret_file"},
		{"missing secret file", authradius.ProxyConfig{Listen: ":1812", Upstreams: []authradius.Upstream{up(func(u *authradius.Upstream) { u.Secret, u.SecretFile = "", filepath.Join(dir, "nope") })}}, "proxy.upstream[0].secret_file: open"},
		{"same name", authradius.ProxyConfig{Listen: ":1812", Upstreams: []authradius.Upstream{up(nil), up(nil)}}, `proxy.upstream[1].name: "10.0.0.5:1812" is used twice`},
		{"bad listen", authradius.ProxyConfig{Listen: "1812", Upstreams: []authradius.Upstream{up(nil)}}, "proxy.listen: not host:port"},
		{"timeout", authradius.ProxyConfig{Listen: ":1812", Timeout: time.Minute, Upstreams: []authradius.Upstream{up(nil)}}, "proxy.timeout: must be between"},
		{"retries", authradius.ProxyConfig{Listen: ":1812", Retries: -1, Upstreams: []authradius.Upstream{up(nil)}}, "proxy.retries: must be between"},
		{"dead_time", authradius.ProxyConfig{Listen: ":1812", DeadTime: time.Millisecond, Upstreams: []authradius.Upstream{up(nil)}}, "proxy.dead_time: must be between"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}

	c := authradius.ProxyConfig{Listen: ":1812", Upstreams: []authradius.Upstream{up(func(u *authradius.Upstream) { u.Secret, u.SecretFile = "", secretFile })}}
	if err := c.Validate(); err != nil || c.Upstreams[0].Secret.Reveal() != "from-file" {
		t.Errorf("secret_file: %v, %q", err, c.Upstreams[0].Secret.Reveal())
	}
}

// The secret never prints, whichever way the configuration is shown.
func TestProxyConfigRedactsSecrets(t *testing.T) {
	c := authradius.ProxyConfig{Listen: ":1812", Upstreams: []authradius.Upstream{{Address: "10.0.0.5:1812", Secret: "hunter2"}}}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%v %+v %#v %s", c, c, c, j)
	if strings.Contains(buf.String(), "hunter2") {
		t.Errorf("secret printed: %s", buf.String())
	}
}
