package radius_test

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"

	authradius "authwatch/radius"
	"authwatch/radius/radiustest"
	"authwatch/watcher"
)

var upstreamSecret = []byte("upstream-secret")

// fakeUpstream is a RADIUS server on a loopback port with a scripted answer:
// the upstream of the proxy's tests that do not need FreeRADIUS. It checks
// what every proxied request must have (a valid Message-Authenticator
// first, for Access-Requests; a valid Request Authenticator for accounting)
// and fails the test otherwise.
type fakeUpstream struct {
	t      testing.TB
	conn   *net.UDPConn
	secret []byte
	answer func(req *radius.Packet, raw []byte) []byte // nil: no answer

	received atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	last     []byte // the last request, as received
}

func newFakeUpstream(t testing.TB, answer func(req *radius.Packet, raw []byte) []byte) *fakeUpstream {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	u := &fakeUpstream{t: t, conn: conn, secret: upstreamSecret, answer: answer}
	t.Cleanup(func() { conn.Close(); u.wg.Wait() })
	u.wg.Go(u.serve)
	return u
}

func (u *fakeUpstream) addr() string { return u.conn.LocalAddr().String() }

func (u *fakeUpstream) serve() {
	buf := make([]byte, 4096)
	for {
		n, src, err := u.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		raw := append([]byte(nil), buf[:n]...)
		u.received.Add(1)
		u.mu.Lock()
		u.last = raw
		u.mu.Unlock()
		req, err := radius.Parse(raw, u.secret)
		if err != nil {
			u.t.Errorf("upstream: unparsable request: %v", err)
			continue
		}
		switch req.Code {
		case radius.CodeAccessRequest:
			if raw[20] != byte(rfc2869.MessageAuthenticator_Type) || !requestMAOK(raw, u.secret) {
				u.t.Errorf("upstream: Access-Request without a valid Message-Authenticator first: % x", raw)
				continue
			}
		case radius.CodeAccountingRequest:
			if !radius.IsAuthenticRequest(raw, u.secret) {
				u.t.Errorf("upstream: Accounting-Request authenticator does not verify")
				continue
			}
		}
		if u.answer == nil {
			continue
		}
		// Answered on its own goroutine so that slow answers overlap,
		// as on a real server.
		u.wg.Go(func() {
			if resp := u.answer(req, raw); resp != nil {
				u.conn.WriteToUDPAddrPort(resp, src)
			}
		})
	}
}

func (u *fakeUpstream) lastRequest() []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

// requestMAOK verifies an Access-Request's Message-Authenticator.
func requestMAOK(raw, secret []byte) bool {
	p, err := radius.Parse(raw, secret)
	if err != nil {
		return false
	}
	ma, ok := p.Lookup(rfc2869.MessageAuthenticator_Type)
	if !ok || len(ma) != 16 {
		return false
	}
	got := append([]byte(nil), ma...)
	clear(ma) // p.Attributes shares nothing with raw: Parse copies
	b, err := p.MarshalBinary()
	if err != nil {
		return false
	}
	mac := hmac.New(md5.New, secret)
	mac.Write(b)
	return hmac.Equal(mac.Sum(nil), got)
}

// reply encodes an answer to req with the given code and attributes,
// echoing its Proxy-States (RFC 2865 §5.33) as every server must.
func reply(req *radius.Packet, code radius.Code, attrs ...*radius.AVP) []byte {
	resp := req.Response(code)
	for _, a := range attrs {
		resp.Attributes = append(resp.Attributes, a)
	}
	for _, a := range req.Attributes {
		if a.Type == rfc2865.ProxyState_Type {
			resp.Attributes = append(resp.Attributes, a)
		}
	}
	b, err := resp.Encode()
	if err != nil {
		panic(err)
	}
	return b
}

func avp(t radius.Type, v []byte) *radius.AVP { return &radius.AVP{Type: t, Attribute: v} }

// proxyHarness runs a Proxy on a loopback port, recording through a real
// Recorder into a real store; with forwarding, also an accounting Listener
// forwarding through it.
type proxyHarness struct {
	t     testing.TB
	p     *authradius.Proxy
	addr  string
	l     *authradius.Listener // with cfg.ForwardAccounting
	acct  string
	rec   *watcher.Recorder
	state *watcher.State
	store *faultyStore
	logs  *syncBuffer

	stop     context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

var proxyNAS = []authradius.Client{{Name: "bras-centro", Prefix: localNAS[0].Prefix, Secret: testSecret}}

func proxyConfig(timeout time.Duration, retries int, ups ...*fakeUpstream) authradius.ProxyConfig {
	cfg := authradius.DefaultProxyConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Timeout, cfg.Retries = timeout, retries
	for i, u := range ups {
		cfg.Upstreams = append(cfg.Upstreams, authradius.Upstream{
			Name: "up" + string(rune('1'+i)), Address: u.addr(), AcctAddress: u.addr(), Secret: authradius.Secret(u.secret),
		})
	}
	return cfg
}

func startProxy(t testing.TB, clients []authradius.Client, cfg authradius.ProxyConfig, opts authradius.ProxyOptions) *proxyHarness {
	t.Helper()
	h := &proxyHarness{t: t, store: &faultyStore{Store: openStore(t)}, logs: &syncBuffer{}}
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opts.Logger == nil {
		opts.Logger = logger
	}
	h.state = watcher.NewState()
	h.rec = watcher.NewRecorder(h.store, h.state, watcher.NewHub(0), watcher.RecorderOptions{Logger: logger})
	recCtx, stopRecorder := context.WithCancel(context.Background())
	recDone := make(chan error, 1)
	go func() { recDone <- h.rec.Run(recCtx) }()

	var conn, acctConn *net.UDPConn
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var err error
	if cfg.Listen != "" {
		conn = listen()
		h.addr = conn.LocalAddr().String()
		h.p, err = authradius.NewProxy(conn, clients, h.rec, cfg, opts)
	} else {
		h.p, err = authradius.NewProxy(nil, clients, h.rec, cfg, opts)
	}
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ForwardAccounting {
		acctConn = listen()
		h.acct = acctConn.LocalAddr().String()
		h.l, err = authradius.NewListener(acctConn, clients, h.rec, authradius.Options{Forward: h.p, Logger: opts.Logger})
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.stop, h.done = cancel, make(chan error, 2)
	go func() { h.done <- h.p.Run(ctx) }()
	if h.l != nil {
		go func() { h.done <- h.l.Run(ctx) }()
	}
	// The app's order: sources first, then the recorder, then the store.
	t.Cleanup(func() {
		h.store.release()
		if err := h.shutdown(); err != nil {
			t.Errorf("Run: %v", err)
		}
		if conn != nil {
			conn.Close()
		}
		if acctConn != nil {
			acctConn.Close()
		}
		stopRecorder()
		<-recDone
		h.store.Close()
	})
	return h
}

// shutdown stops the proxy (and listener) and returns the first error.
func (h *proxyHarness) shutdown() error {
	var err error
	h.stopOnce.Do(func() {
		h.stop()
		n := 1
		if h.l != nil {
			n = 2
		}
		for range n {
			select {
			case e := <-h.done:
				err = errors.Join(err, e)
			case <-time.After(10 * time.Second):
				err = errors.Join(err, errors.New("Run did not return"))
			}
		}
	})
	return err
}

func (h *proxyHarness) nas(addr string, o radiustest.ClientOptions) *radiustest.Client {
	h.t.Helper()
	c, err := radiustest.NewClient(addr, testSecret, o)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

// events waits until the store holds n events for login, and returns them.
func (h *proxyHarness) events(t testing.TB, login string, n int) []watcher.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs, err := h.store.Events(context.Background(), watcher.Query{Login: login})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) >= n || time.Now().After(deadline) {
			if len(evs) != n {
				t.Fatalf("%d events stored for %q, want %d: %+v", len(evs), login, n, evs)
			}
			return evs
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *proxyHarness) waitStats(what string, cond func(authradius.ProxyStats) bool) authradius.ProxyStats {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := h.p.Stats()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; stats %+v", what, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func accessPacket(t testing.TB, a radiustest.Access) *radius.Packet {
	t.Helper()
	p, err := a.Packet(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
