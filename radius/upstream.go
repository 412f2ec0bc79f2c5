package radius

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"layeh.com/radius"
)

// ErrUpstreamTimeout is returned (wrapped) when no upstream answered.
var ErrUpstreamTimeout = errors.New("upstream timeout")

// upstream is one configured RADIUS server.
type upstream struct {
	name      string
	secret    []byte
	requireMA bool
	auth      *pool // nil without proxy.listen
	acct      *pool // nil without forward_accounting
}

// pool is the proxy's client side towards one port of one upstream: a few
// connected UDP sockets (the kernel then delivers only that server's
// datagrams), each with its own space of 256 Identifiers, and a free list of
// (socket, Identifier) slots. A request takes a slot for as long as it may
// be answered and waits when there is none, so that any number of requests
// in flight never share an Identifier on one socket. The free list is FIFO:
// an Identifier is reused as late as possible, which keeps a late answer to
// an earlier request from meeting a new request with its Identifier (it
// would fail verification anyway: the authenticators differ).
type pool struct {
	up      *upstream
	kind    string // "auth" or "acct"
	addr    string
	answers [256]bool // the codes that answer this port's requests
	socks   []*upSocket
	free    chan slot
	log     *slog.Logger
	warn    *warnLimiter

	deadAfter int
	deadTime  time.Duration
	probing   bool // dead, it is sent Status-Servers (ProxyConfig.StatusServer)
	mu        sync.Mutex
	fails     int       // requests in a row without an answer
	deadUntil time.Time // skipped until then
	// statusOK: the upstream has answered a Status-Server, so one it
	// leaves unanswered says it is down.
	statusOK atomic.Bool

	stats poolCounters
}

type slot struct {
	sock int
	id   byte
}

type upSocket struct {
	conn  *net.UDPConn
	mu    sync.Mutex
	calls [256]*call
	// prev holds, per Identifier, the authenticator of the last request
	// that used it, so that its late answer is told from a forgery or a
	// wrong secret: it verifies with it.
	prev    [256][16]byte
	hasPrev [256]bool
}

// call is one request waiting for its answer.
type call struct {
	auth  [16]byte    // the Request Authenticator the answer is verified with
	reply chan []byte // buffered 1: the reader never waits
}

func newPool(up *upstream, kind, addr string, answers []radius.Code, sockets int, cfg *ProxyConfig, log *slog.Logger, warn *warnLimiter) (*pool, error) {
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("radius: proxy: upstream %q: resolve %s: %w", up.name, addr, err)
	}
	p := &pool{
		up: up, kind: kind, addr: addr, log: log, warn: warn,
		free:      make(chan slot, sockets*256),
		deadAfter: cfg.DeadAfter, deadTime: cfg.DeadTime, probing: cfg.StatusServer,
	}
	for _, c := range answers {
		p.answers[c] = true
	}
	for i := range sockets {
		conn, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("radius: proxy: upstream %q: socket to %s: %w", up.name, addr, err)
		}
		p.socks = append(p.socks, &upSocket{conn: conn})
		for id := range 256 {
			p.free <- slot{sock: i, id: byte(id)}
		}
	}
	return p, nil
}

func (p *pool) close() {
	for _, s := range p.socks {
		_ = s.conn.Close()
	}
}

// read receives the upstream's datagrams on one socket until it is closed.
func (p *pool) read(s *upSocket) {
	buf := make([]byte, readBufferSize)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				// ECONNREFUSED is ICMP news that the server's
				// port is closed: the requests time out and fail
				// over. Anything else may persist; don't spin.
				if ok, n := p.warn.allow(netip.Addr{}, "upstream-read:"+p.up.name, time.Now()); ok {
					p.log.Warn("radius: proxy: reading from upstream failed", "upstream", p.up.name, "addr", p.addr, "err", err, "suppressed", n)
				}
				time.Sleep(10 * time.Millisecond)
			}
			continue
		}
		p.deliver(s, buf[:n])
	}
}

// deliver hands a datagram to the request it answers, once it verifies.
func (p *pool) deliver(s *upSocket, b []byte) {
	if len(b) < 20 {
		p.bad("shorter than a RADIUS header")
		return
	}
	length := int(binary.BigEndian.Uint16(b[2:4]))
	if length < 20 || length > len(b) {
		p.bad("bad length field")
		return
	}
	b = b[:length]
	if !p.answers[b[0]] {
		p.bad("unexpected code " + radius.Code(b[0]).String())
		return
	}
	id := b[1]
	s.mu.Lock()
	c, prev, hasPrev := s.calls[id], s.prev[id], s.hasPrev[id]
	s.mu.Unlock()
	var err error
	if c != nil {
		err = verifyReply(b, c.auth, p.up.secret, p.up.requireMA)
	}
	if c == nil || err != nil {
		// A late answer to the request that had the Identifier
		// before (given up on) verifies with that request's
		// authenticator, and never with the current one's.
		if hasPrev && verifyReply(b, prev, p.up.secret, p.up.requireMA) == nil {
			p.stats.late.Add(1)
			return
		}
		if c == nil {
			p.bad("answers no request in flight")
		} else {
			p.bad(err.Error() + "; is the upstream's secret the configured one?")
		}
		return
	}
	select {
	case c.reply <- append([]byte(nil), b...):
	default: // an answer to a retransmission: the first one will do
	}
}

func (p *pool) bad(why string) {
	p.stats.badReplies.Add(1)
	if ok, n := p.warn.allow(netip.Addr{}, "upstream-bad:"+p.up.name+p.kind, time.Now()); ok {
		p.log.Warn("radius: proxy: ignored a datagram from upstream", "upstream", p.up.name, "addr", p.addr, "why", why, "suppressed", n)
	}
}

// errBuild marks errors building the request: the request's fault, not the
// upstream's, so no failover and no mark against the upstream.
type errBuild struct{ err error }

func (e errBuild) Error() string { return e.err.Error() }
func (e errBuild) Unwrap() error { return e.err }

// exchange sends the request build makes for a free Identifier, sends the
// same bytes again every timeout, retries times, and returns the first reply
// that verifies with the request's authenticator, and the time it took.
func (p *pool) exchange(ctx context.Context, build func(id byte) ([]byte, [16]byte, error), timeout time.Duration, retries int) ([]byte, [16]byte, time.Duration, error) {
	return p.send(ctx, build, timeout, retries, false)
}

// probe sends one Status-Server (RFC 5997) and waits timeout for its answer.
// Probes are counted apart from requests; an answer revives the upstream.
func (p *pool) probe(ctx context.Context, timeout time.Duration) error {
	p.stats.probes.Add(1)
	_, _, _, err := p.send(ctx, func(id byte) ([]byte, [16]byte, error) {
		return statusServerRequest(id, p.up.secret)
	}, timeout, 0, true)
	return err
}

func (p *pool) send(ctx context.Context, build func(id byte) ([]byte, [16]byte, error), timeout time.Duration, retries int, probe bool) ([]byte, [16]byte, time.Duration, error) {
	var sl slot
	select {
	case sl = <-p.free:
	case <-ctx.Done():
		return nil, [16]byte{}, 0, ctx.Err()
	}
	defer func() { p.free <- sl }()
	s := p.socks[sl.sock]

	req, auth, err := build(sl.id)
	if err != nil {
		return nil, auth, 0, errBuild{err}
	}
	c := &call{auth: auth, reply: make(chan []byte, 1)}
	s.mu.Lock()
	s.calls[sl.id] = c
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.calls[sl.id] = nil
		s.prev[sl.id], s.hasPrev[sl.id] = auth, true
		s.mu.Unlock()
	}()
	if !probe {
		p.stats.requests.Add(1)
		p.stats.inflight.Add(1)
		defer p.stats.inflight.Add(-1)
	}

	start := time.Now()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for try := 0; ; try++ {
		if _, err := s.conn.Write(req); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			if ok, n := p.warn.allow(netip.Addr{}, "upstream-write:"+p.up.name, time.Now()); ok {
				p.log.Warn("radius: proxy: sending to upstream failed", "upstream", p.up.name, "addr", p.addr, "err", err, "suppressed", n)
			}
		}
		select {
		case reply := <-c.reply:
			took := time.Since(start)
			if probe {
				p.statusOK.Store(true)
			} else {
				p.stats.replies[reply[0]].Add(1)
				p.stats.latency.observe(took)
			}
			p.succeeded()
			return reply, auth, took, nil
		case <-ctx.Done():
			return nil, auth, 0, ctx.Err()
		case <-timer.C:
		}
		if try == retries {
			if !probe {
				p.stats.timeouts.Add(1)
				p.failed(time.Now())
			}
			return nil, auth, 0, fmt.Errorf("%w: no answer from %s (%s) after %d tries", ErrUpstreamTimeout, p.up.name, p.addr, try+1)
		}
		p.stats.retransmits.Add(1)
		timer.Reset(timeout)
	}
}

// watchDead probes the upstream with a Status-Server every interval while it
// is marked dead, until ctx ends.
func (p *pool) watchDead(ctx context.Context, interval, timeout time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if p.marked() {
			_ = p.probe(ctx, min(timeout, interval))
		}
	}
}

// marked reports whether the upstream was marked dead and has not answered
// since, dead_time over or not.
func (p *pool) marked() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fails >= p.deadAfter
}

// alive reports whether the pool is to be tried first: not marked dead, or
// dead_time has passed, except for an upstream that answers Status-Server
// while they are sent, which only an answer revives.
func (p *pool) alive(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.probing && p.statusOK.Load() && p.fails >= p.deadAfter {
		return false
	}
	return !now.Before(p.deadUntil)
}

func (p *pool) succeeded() {
	p.mu.Lock()
	wasDead := p.fails >= p.deadAfter
	p.fails = 0
	p.deadUntil = time.Time{}
	p.mu.Unlock()
	if wasDead {
		p.log.Info("radius: proxy: upstream answers again", "upstream", p.up.name, "addr", p.addr, "port", p.kind)
	}
}

func (p *pool) failed(now time.Time) {
	p.mu.Lock()
	p.fails++
	// Past dead_time a dead upstream is tried again; one more request
	// without an answer marks it dead again at once.
	mark := p.fails >= p.deadAfter && !now.Before(p.deadUntil)
	if mark {
		p.deadUntil = now.Add(p.deadTime)
	}
	fails := p.fails
	p.mu.Unlock()
	if mark {
		p.stats.markedDead.Add(1)
		p.log.Warn("radius: proxy: upstream marked dead; trying the next ones first",
			"upstream", p.up.name, "addr", p.addr, "port", p.kind, "unanswered", fails, "for", p.deadTime)
	}
}

// poolCounters are one pool's live counters.
type poolCounters struct {
	requests, retransmits, timeouts, late, badReplies, markedDead, inflight, probes atomic.Int64
	replies                                                                         [256]atomic.Int64
	latency                                                                         histogram
}

// latencyBounds are the upper bounds of the latency histogram, in seconds:
// from a loopback FreeRADIUS (well under a millisecond) to a server behind a
// slow WAN link or an SQL backend in trouble.
var latencyBounds = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

type histogram struct {
	buckets [14]atomic.Int64 // len(latencyBounds)+1: the last is +Inf
	sumNs   atomic.Int64
	count   atomic.Int64
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i, _ := slices.BinarySearch(latencyBounds, s)
	h.buckets[i].Add(1)
	h.sumNs.Add(int64(d))
	h.count.Add(1)
}

// Histogram is a latency distribution shaped for a Prometheus histogram:
// Buckets[i] counts observations ≤ Bounds[i] seconds (cumulative), Count
// all of them (the +Inf bucket) and Sum their total in seconds.
type Histogram struct {
	Bounds  []float64 `json:"bounds"`
	Buckets []int64   `json:"buckets"`
	Count   int64     `json:"count"`
	Sum     float64   `json:"sum"`
}

func (h *histogram) snapshot() Histogram {
	out := Histogram{Bounds: latencyBounds, Buckets: make([]int64, len(latencyBounds))}
	var cum int64
	for i := range latencyBounds {
		cum += h.buckets[i].Load()
		out.Buckets[i] = cum
	}
	out.Count = cum + h.buckets[len(latencyBounds)].Load()
	out.Sum = time.Duration(h.sumNs.Load()).Seconds()
	return out
}

// PoolStats are the counters of one upstream port.
type PoolStats struct {
	Address     string `json:"address"`
	Requests    int64  `json:"requests"`    // requests sent (first tries)
	Retransmits int64  `json:"retransmits"` // the same request sent again after Timeout
	// Timeouts counts requests this upstream left unanswered after every
	// try (each then failed over to the next upstream, if any).
	Timeouts int64 `json:"timeouts"`
	// Replies counts verified answers by code name.
	Replies map[string]int64 `json:"replies"`
	// BadReplies counts datagrams that did not verify (wrong secret,
	// missing required Message-Authenticator) or made no sense; Late the
	// answers to requests already given up on (a timeout too short for
	// this upstream shows here).
	BadReplies int64 `json:"bad_replies"`
	Late       int64 `json:"late"`
	MarkedDead int64 `json:"marked_dead"` // times it was marked dead
	Dead       bool  `json:"dead"`        // skipped for now (a gauge)
	// StatusProbes counts the Status-Servers sent while it was dead (not
	// in Requests, Replies or Timeouts); StatusAnswered whether it has
	// ever answered one.
	StatusProbes   int64 `json:"status_probes"`
	StatusAnswered bool  `json:"status_answered"`
	InFlight       int64 `json:"in_flight"` // requests waiting for its answer (a gauge)
	// Latency is the time from the first try to the verified answer.
	Latency Histogram `json:"latency"`
}

func (p *pool) snapshot(now time.Time) *PoolStats {
	if p == nil {
		return nil
	}
	s := &PoolStats{
		Address:        p.addr,
		Requests:       p.stats.requests.Load(),
		Retransmits:    p.stats.retransmits.Load(),
		Timeouts:       p.stats.timeouts.Load(),
		Replies:        map[string]int64{},
		BadReplies:     p.stats.badReplies.Load(),
		Late:           p.stats.late.Load(),
		MarkedDead:     p.stats.markedDead.Load(),
		Dead:           !p.alive(now),
		StatusProbes:   p.stats.probes.Load(),
		StatusAnswered: p.statusOK.Load(),
		InFlight:       p.stats.inflight.Load(),
		Latency:        p.stats.latency.snapshot(),
	}
	for code, ok := range p.answers {
		if ok {
			s.Replies[radius.Code(code).String()] = p.stats.replies[code].Load()
		}
	}
	return s
}
