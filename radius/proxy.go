package radius

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"layeh.com/radius"

	"authwatch/watcher"
)

// ProxySource is the watcher.Event Source of the events the Proxy records.
const ProxySource = "proxy"

// Defaults for ProxyOptions.
const (
	DefaultProxyDuplicateMax = 1 << 16
	DefaultMaxInFlight       = 4096
	DefaultUpstreamSockets   = 4
)

// recordTimeout bounds how long a relayed reply's event may wait for room
// in the Recorder's queue; the reply itself has been sent already.
const recordTimeout = 5 * time.Second

// ErrProxyStopped is given to ForwardAccounting's done once the Proxy has
// stopped.
var ErrProxyStopped = errors.New("radius: proxy stopped")

var errOverload = errors.New("radius: proxy: too many requests in flight")

// ProxyOptions tune a Proxy; zero values pick defaults.
type ProxyOptions struct {
	// Workers is the number of goroutines reading the Access-Request
	// socket (default runtime.NumCPU()). Forwarding happens on a goroutine
	// per request in flight, so readers never wait for an upstream.
	Workers int
	// DuplicateWindow is how long a relayed reply is kept to answer the
	// NAS's retransmissions (default 30 s).
	DuplicateWindow time.Duration
	// DuplicateMax caps the cached replies (default 65536: at a few
	// hundred bytes each, tens of MiB at worst).
	DuplicateMax int
	// StopTimeout bounds how long Run waits, once its context ends, for
	// requests in flight (default 5 s).
	StopTimeout time.Duration
	// ReadBuffer is the receive buffer asked for the Access-Request socket
	// (default 4 MiB; negative leaves it).
	ReadBuffer int
	// MaxInFlight caps requests (Access-Requests and forwarded accounting)
	// waiting for an upstream (default 4096). Past it requests are dropped,
	// counted as overload, and the NAS retransmits.
	MaxInFlight int
	// UpstreamSockets is the number of sockets per upstream port (default
	// 4): 256 Identifiers each, so 1024 requests in flight per upstream
	// before further ones wait for a free Identifier.
	UpstreamSockets int
	Logger          *slog.Logger
}

// Proxy is authwatch's RADIUS proxy mode: it receives Access-Requests from
// the configured NAS, forwards them to the upstream servers (primary first,
// failing over to the next), relays the answers and records each
// Access-Accept and Access-Reject as an event; with ForwardAccounting it
// also relays what the accounting Listener stores (it is the Listener's
// Options.Forward). See the package documentation.
type Proxy struct {
	front // NAS side; conn is nil when only accounting is forwarded
	cfg   ProxyConfig
	opts  ProxyOptions
	rec   Recorder
	dups  *dupCache[[]byte]
	ups   []*upstream
	pools []*pool

	events    warnLimiter // timeout events: one per login per minute
	stateBase uint64
	stateSeq  atomic.Uint64
	pstats    proxyCounters

	running   atomic.Bool
	workCtx   context.Context // in-flight forwards: outlives Run's ctx while draining
	stopWork  context.CancelFunc
	closeOnce sync.Once

	mu       sync.Mutex
	closed   bool // no new forwards
	inflight int
	attached int // Listeners forwarding through us that have not drained
	work     sync.WaitGroup
	idle     chan struct{}
}

// NewProxy returns a Proxy serving Access-Requests on conn from clients and
// recording events through rec (nil records nothing). conn may be nil when
// cfg.Listen is empty (accounting forwarding only). The caller owns conn and
// closes it after Run returns; the upstream sockets are the Proxy's, opened
// here and closed when Run returns (or by Close when Run never ran).
func NewProxy(conn net.PacketConn, clients []Client, rec Recorder, cfg ProxyConfig, opts ProxyOptions) (*Proxy, error) {
	cfg.Upstreams = slices.Clone(cfg.Upstreams)
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("radius: proxy: %w", err)
	}
	if !cfg.Enabled() {
		return nil, errors.New("radius: proxy: no upstream configured")
	}
	if conn == nil && cfg.Listen != "" {
		return nil, errors.New("radius: proxy: no socket for proxy.listen")
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.DuplicateWindow <= 0 {
		opts.DuplicateWindow = DefaultDuplicateWindow
	}
	if opts.DuplicateMax <= 0 {
		opts.DuplicateMax = DefaultProxyDuplicateMax
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}
	if opts.ReadBuffer == 0 {
		opts.ReadBuffer = DefaultReadBuffer
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.UpstreamSockets <= 0 {
		opts.UpstreamSockets = DefaultUpstreamSockets
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &Proxy{
		cfg:    cfg,
		opts:   opts,
		rec:    rec,
		dups:   newDupCache[[]byte](opts.DuplicateWindow, opts.DuplicateMax),
		events: warnLimiter{max: 1 << 16},
		idle:   make(chan struct{}, 1),
	}
	p.log = opts.Logger.With("source", ProxySource)
	if conn != nil {
		p.init(conn, p.log, opts.ReadBuffer)
	}
	if err := p.setClients(clients); err != nil {
		return nil, err
	}
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	p.stateBase = binary.BigEndian.Uint64(seed[:])
	p.workCtx, p.stopWork = context.WithCancel(context.Background())

	for _, uc := range cfg.Upstreams {
		u := &upstream{name: uc.Name, secret: []byte(uc.Secret.Reveal()), requireMA: uc.RequireMessageAuthenticator}
		var err error
		if cfg.Listen != "" {
			u.auth, err = newPool(u, "auth", uc.Address, []radius.Code{radius.CodeAccessAccept, radius.CodeAccessReject, radius.CodeAccessChallenge}, opts.UpstreamSockets, &cfg, p.log, &p.warn)
			if err != nil {
				p.Close()
				return nil, err
			}
			p.pools = append(p.pools, u.auth)
		}
		if cfg.ForwardAccounting {
			u.acct, err = newPool(u, "acct", uc.AcctAddress, []radius.Code{radius.CodeAccountingResponse}, opts.UpstreamSockets, &cfg, p.log, &p.warn)
			if err != nil {
				p.Close()
				return nil, err
			}
			p.pools = append(p.pools, u.acct)
		}
		p.ups = append(p.ups, u)
	}
	return p, nil
}

// SetClients replaces the allowed clients, e.g. on SIGHUP, as
// Listener.SetClients does.
func (p *Proxy) SetClients(cs []Client) error { return p.setClients(cs) }

// LocalAddr is the address Access-Requests are received on (nil without
// proxy.listen).
func (p *Proxy) LocalAddr() net.Addr {
	if p.conn == nil {
		return nil
	}
	return p.conn.LocalAddr()
}

// Close releases the upstream sockets of a Proxy whose Run was never called
// (Run releases them itself). It is safe to call more than once.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.stopWork()
		for _, pl := range p.pools {
			pl.close()
		}
	})
	return nil
}

// Run serves until ctx ends or the Access-Request socket fails. Then it
// stops reading, waits up to ProxyOptions.StopTimeout for the requests in
// flight — and for the Listeners that forward accounting through it to
// drain, so that their last records still reach the upstream — closes the
// upstream sockets and returns: nil after ctx ended, the socket's error
// otherwise. The Recorder must keep running until Run has returned.
func (p *Proxy) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("radius: Proxy.Run called twice")
	}
	var readers sync.WaitGroup
	for _, pl := range p.pools {
		for _, s := range pl.socks {
			readers.Go(func() { pl.read(s) })
		}
	}
	probeCtx, stopProbes := context.WithCancel(ctx)
	var probers sync.WaitGroup
	if p.cfg.StatusServer {
		for _, pl := range p.pools {
			probers.Go(func() { pl.watchDead(probeCtx, p.cfg.StatusInterval, p.cfg.Timeout) })
		}
	}
	names := make([]string, len(p.ups))
	for i, u := range p.ups {
		names[i] = u.name
	}
	var err error
	if p.conn != nil {
		p.log.Info("radius: proxy listening for Access-Requests", "addr", p.conn.LocalAddr().String(),
			"upstreams", names, "forward_accounting", p.cfg.ForwardAccounting, "workers", p.opts.Workers)
		err = p.serve(ctx, p.opts.Workers, p.handle)
	} else {
		p.log.Info("radius: proxy forwarding accounting", "upstreams", names)
		<-ctx.Done()
	}
	stopProbes()
	probers.Wait()
	p.drain()
	p.Close() // in-flight exchanges fail now; nothing new starts
	p.work.Wait()
	readers.Wait()
	return err
}

// drain waits, bounded, until nothing is in flight and no attached Listener
// may still forward, then refuses new work.
func (p *Proxy) drain() {
	t := time.NewTimer(p.opts.StopTimeout)
	defer t.Stop()
	for {
		p.mu.Lock()
		if p.inflight == 0 && p.attached == 0 {
			p.closed = true
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		select {
		case <-p.idle:
		case <-t.C:
			p.mu.Lock()
			p.closed = true
			n := p.inflight
			p.mu.Unlock()
			p.log.Warn("radius: proxy stopped with requests in flight; their NAS will retransmit", "pending", n, "waited", p.opts.StopTimeout)
			return
		}
	}
}

func (p *Proxy) notifyIdle() {
	select {
	case p.idle <- struct{}{}:
	default:
	}
}

// spawn runs fn on a goroutine owned by Run, unless the Proxy is stopping
// or has MaxInFlight requests in flight already.
func (p *Proxy) spawn(fn func()) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrProxyStopped
	}
	if p.inflight >= p.opts.MaxInFlight {
		return errOverload
	}
	p.inflight++
	p.work.Add(1)
	go func() {
		defer func() {
			p.mu.Lock()
			p.inflight--
			p.mu.Unlock()
			p.notifyIdle()
			p.work.Done()
		}()
		fn()
	}()
	return nil
}

// attach is called by a Listener's Run that forwards through p.
func (p *Proxy) attach() func() {
	p.mu.Lock()
	p.attached++
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			p.attached--
			p.mu.Unlock()
			p.notifyIdle()
		})
	}
}

// candidates returns the upstreams to try, in order: the alive ones, or all
// of them when none is (a dead mark is a guess; trying costs one timeout and
// notices a recovery at once).
func (p *Proxy) candidates(port func(*upstream) *pool, now time.Time) []*upstream {
	alive := make([]*upstream, 0, len(p.ups))
	for _, u := range p.ups {
		if port(u).alive(now) {
			alive = append(alive, u)
		}
	}
	if len(alive) == 0 {
		return p.ups
	}
	return alive
}

func authPort(u *upstream) *pool { return u.auth }
func acctPort(u *upstream) *pool { return u.acct }

func (p *Proxy) upstreamNames() string {
	names := make([]string, len(p.ups))
	for i, u := range p.ups {
		names[i] = u.name
	}
	return strings.Join(names, ", ")
}

// newState returns the value of the Proxy-State we add to a request: unique
// per request, so that removing it from the reply cannot remove another
// proxy's.
func (p *Proxy) newState() []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], p.stateBase+p.stateSeq.Add(1))
	return b[:]
}

// handle processes one datagram from the Access-Request socket.
func (p *Proxy) handle(_ context.Context, b []byte, src netip.AddrPort, now time.Time) {
	cl, b := p.admit(b, src, now)
	if cl == nil {
		return
	}
	switch radius.Code(b[0]) {
	case radius.CodeAccessRequest:
		p.access(cl, b, src, now)
	case radius.CodeStatusServer:
		p.statusServer(cl, b, src, now, radius.CodeAccessAccept)
	default:
		p.unsupported(cl, b, src, now, "authentication")
	}
}

// access checks an Access-Request and, unless it is a retransmission, hands
// it to a goroutine that forwards it.
func (p *Proxy) access(cl *client, b []byte, src netip.AddrPort, now time.Time) {
	info, err := scanAccessRequest(b)
	if err != nil {
		p.malformed(cl, src, now, err)
		return
	}
	// BlastRADIUS: checked before the packet goes anywhere, so that
	// forged packets neither reach the upstream nor fill the cache.
	if info.maOff >= 0 {
		want := messageAuthenticator(b, info.maOff, nil, cl.secret)
		if !hmac.Equal(want[:], b[info.maOff:info.maOff+16]) {
			p.badAuthenticator(cl, src, now, "Message-Authenticator")
			return
		}
	} else if !cl.allowNoMA {
		p.stats.drop(dropMissingMessageAuthenticator, cl)
		if ok, n := p.warn.allow(src.Addr(), DropMissingMessageAuthenticator, now); ok {
			p.log.Warn("radius: proxy: refused Access-Request without Message-Authenticator (BlastRADIUS, CVE-2024-3596); "+
				"make the NAS send one, or set require_message_authenticator = false for it",
				"nas", cl.name, "src", src.Addr().Unmap().String(), "suppressed", n)
		}
		return
	}

	key := newDupKey(src, b[1], b[4:20])
	switch st, reply := p.dups.begin(key); st {
	case dupPending:
		// The upstream has not answered yet: forwarding it again
		// would only load it twice. The first copy's answer, when it
		// comes, answers this one too.
		p.stats.drop(dropDuplicateInflight, cl)
		return
	case dupAnswered:
		if p.writeTo(reply, src) {
			p.stats.dupAnswered.Add(1)
		}
		return
	}
	a := &accessCall{p: p, cl: cl, src: src, key: key, req: slices.Clone(b)}
	if err := p.spawn(a.forward); err != nil {
		p.dups.forget(key)
		p.stats.drop(dropOverload, cl)
		if ok, n := p.warn.allow(netip.Addr{}, DropOverload, now); ok {
			p.log.Warn("radius: proxy: Access-Request dropped", "nas", cl.name, "err", err, "suppressed", n)
		}
	}
}

// accessCall is one Access-Request being forwarded.
type accessCall struct {
	p   *Proxy
	cl  *client
	src netip.AddrPort
	key dupKey
	req []byte // as the NAS sent it
}

// forward tries the upstreams in turn and relays the first answer.
func (a *accessCall) forward() {
	p := a.p
	info, err := scanAccessRequest(a.req) // checked by access already
	if err != nil {
		p.dups.forget(a.key)
		return
	}
	p.pstats.forwarded.Add(1)
	state := p.newState()
	for _, u := range p.candidates(authPort, time.Now()) {
		reply, upAuth, took, err := u.auth.exchange(p.workCtx, func(id byte) ([]byte, [16]byte, error) {
			var auth [16]byte
			_, _ = rand.Read(auth[:])
			b, err := proxyAccessRequest(a.req, &info, a.cl.secret, id, auth, u.secret, state)
			return b, auth, err
		}, p.cfg.Timeout, p.cfg.Retries)
		switch {
		case err == nil:
			a.relay(u, reply, upAuth, state, &info, took)
			return
		case errors.Is(err, ErrUpstreamTimeout):
			continue // the pool counted and logged it
		case errors.As(err, new(errBuild)):
			p.dups.forget(a.key)
			p.malformed(a.cl, a.src, time.Now(), err)
			return
		default: // stopping
			p.dups.forget(a.key)
			return
		}
	}
	// No answer from anyone. The NAS hears nothing and retransmits (or
	// tries its own next server); its retransmission is forwarded afresh.
	p.dups.forget(a.key)
	p.stats.drop(dropUpstreamFailed, a.cl)
	names := p.upstreamNames()
	login := text(info.login)
	if ok, n := p.warn.allow(netip.Addr{}, "timeout", time.Now()); ok {
		p.log.Warn("radius: proxy: no upstream answered an Access-Request; the NAS gets no answer",
			"nas", a.cl.name, "login", login, "upstreams", names, "suppressed", n)
	}
	// The agent watching this customer must see it, but a NAS retrying
	// through an outage should not flood the timeline: one event per
	// login per minute.
	if ok, n := p.events.allow(netip.Addr{}, login, time.Now()); ok {
		reason := "upstream timeout — no answer from " + names
		if n > 0 {
			reason += fmt.Sprintf(" (%d more attempts unanswered)", n)
		}
		p.record(a.event(watcher.Log, &info, reason, time.Now()))
	}
}

// relay sends the upstream's answer to the NAS, then records it.
func (a *accessCall) relay(u *upstream, reply []byte, upAuth [16]byte, state []byte, info *accessRequest, took time.Duration) {
	p := a.p
	out, dropped, err := proxyReply(reply, upAuth, u.secret, a.req[1], [16]byte(a.req[4:20]), a.cl.secret, state)
	if err != nil {
		p.dups.forget(a.key)
		p.stats.drop(dropUpstreamFailed, a.cl)
		if ok, n := p.warn.allow(netip.Addr{}, "relay", time.Now()); ok {
			p.log.Warn("radius: proxy: upstream's answer cannot be relayed", "upstream", u.name, "nas", a.cl.name, "err", err, "suppressed", n)
		}
		return
	}
	if dropped > 0 {
		p.stats.badAttrs.Add(int64(dropped))
	}
	// Cached before sending: a quick retransmission finds it.
	p.dups.answer(a.key, out)
	if p.writeTo(out, a.src) {
		p.pstats.replies[out[0]].Add(1)
		a.cl.stats.ack(time.Now())
	}
	code := radius.Code(out[0])
	p.log.Debug("radius: proxy: relayed", "nas", a.cl.name, "login", text(info.login), "code", code.String(), "upstream", u.name, "took", took)

	var kind watcher.Kind
	reason := replyMessages(out)
	switch code {
	case radius.CodeAccessAccept:
		kind = watcher.AuthAccept
	case radius.CodeAccessReject:
		kind = watcher.AuthReject
		if reason == "" {
			reason = "rejected by server"
		}
	default:
		return // Access-Challenge: the exchange goes on; its end is the event
	}
	ev := a.event(kind, info, reason, time.Now())
	ev.Detail.LatencyMS = float64(took.Microseconds()) / 1000
	if attrs, err := radius.ParseAttributes(out[20:]); err == nil {
		// What the server answered (Framed-IP-Address, Framed-Pool,
		// Mikrotik-Rate-Limit…), hidden attributes left out.
		ev.Detail.Attributes = attributeMap(attrs)
	}
	p.record(ev)
}

// event returns an event about this request with the fields every proxy
// event has.
func (a *accessCall) event(kind watcher.Kind, info *accessRequest, reason string, at time.Time) watcher.Event {
	d := &watcher.Detail{NASPortID: text(info.nasPortID), Service: text(info.calledStationID)}
	if len(info.nasIP) == 4 {
		d.NASIP = netip.AddrFrom4([4]byte(info.nasIP)).String()
	}
	return watcher.Event{
		At:     at,
		Login:  text(info.login),
		Kind:   kind,
		Source: ProxySource,
		NAS:    a.cl.name,
		MAC:    watcher.NormalizeMAC(text(info.callingStationID)),
		Reason: reason,
		Detail: d,
	}
}

// record hands ev to the Recorder without waiting for the commit. The reply
// has gone to the NAS already: an authentication answer is latency
// sensitive (NAS time out in a few hundred milliseconds to a few seconds)
// and, unlike an Accounting-Response, promises nothing about our storage, so
// it does not wait for a disk.
func (p *Proxy) record(ev watcher.Event) {
	if p.rec == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	err := p.rec.Record(ctx, ev, func(_ watcher.Event, err error) {
		if err != nil {
			p.pstats.eventErrors.Add(1) // the Recorder logs it
		}
	})
	if err != nil {
		p.pstats.eventErrors.Add(1)
		if ok, n := p.warn.allow(netip.Addr{}, "record", time.Now()); ok {
			p.log.Warn("radius: proxy: event not recorded", "login", ev.Login, "kind", string(ev.Kind), "err", err, "suppressed", n)
		}
		return
	}
	p.pstats.events.Add(1)
}

// ForwardAccounting implements AccountingForwarder: it relays an
// Accounting-Request stored by a Listener to the upstreams' accounting
// ports, primary first, and calls done with nil once one acknowledged it.
func (p *Proxy) ForwardAccounting(req []byte, nas string, done func(error)) {
	if !p.cfg.ForwardAccounting {
		done(errors.New("radius: proxy: forward_accounting is off"))
		return
	}
	if err := p.spawn(func() { done(p.forwardAccounting(req, nas)) }); err != nil {
		p.pstats.acctFailed.Add(1)
		done(err)
	}
}

func (p *Proxy) forwardAccounting(req []byte, nas string) error {
	state := p.newState()
	for _, u := range p.candidates(acctPort, time.Now()) {
		_, _, _, err := u.acct.exchange(p.workCtx, func(id byte) ([]byte, [16]byte, error) {
			return proxyAccountingRequest(req, id, u.secret, state)
		}, p.cfg.Timeout, p.cfg.Retries)
		switch {
		case err == nil:
			p.pstats.acctForwarded.Add(1)
			return nil
		case errors.Is(err, ErrUpstreamTimeout):
			continue
		default:
			p.pstats.acctFailed.Add(1)
			return fmt.Errorf("radius: proxy: accounting from %s: %w", nas, err)
		}
	}
	p.pstats.acctFailed.Add(1)
	names := p.upstreamNames()
	if ok, n := p.warn.allow(netip.Addr{}, "acct-timeout", time.Now()); ok {
		p.log.Warn("radius: proxy: no upstream acknowledged accounting; stored, not acknowledged to the NAS, which will retransmit",
			"nas", nas, "upstreams", names, "suppressed", n)
	}
	return fmt.Errorf("radius: proxy: accounting from %s: %w: no answer from %s", nas, ErrUpstreamTimeout, names)
}

// reasonText returns a Reply-Message as valid UTF-8 that fits an event's
// reason.
func reasonText(b []byte) string {
	s := string(b)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	const max = 1024 // watcher's limit on Reason
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}
