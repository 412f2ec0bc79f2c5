package radius

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"layeh.com/radius"

	"authwatch/watcher"
)

// Defaults for Options.
const (
	DefaultDuplicateWindow = 30 * time.Second
	DefaultDuplicateMax    = 1 << 20 // ~130 MiB at worst
	DefaultStopTimeout     = 5 * time.Second
	DefaultReadBuffer      = 4 << 20
)

// readBufferSize is one more than the largest RADIUS packet, so that an
// oversized datagram is seen as such rather than silently truncated.
const readBufferSize = radius.MaxPacketLength + 1

// Recorder commits events and calls done after the commit (or with the error
// that prevented it). *watcher.Recorder implements it.
type Recorder interface {
	Record(ctx context.Context, ev watcher.Event, done watcher.Done) error
}

// Options tune a Listener; zero values pick defaults.
type Options struct {
	// Workers is the number of goroutines reading and decoding packets
	// (default runtime.NumCPU()).
	Workers int
	// DuplicateWindow is how long a request is remembered to answer its
	// retransmissions from cache (default 30 s).
	DuplicateWindow time.Duration
	// DuplicateMax caps the duplicate cache's entries (default 1<<20, about
	// 130 bytes each). When the rate fills it within the window (above
	// about 17k requests/s with the defaults), the oldest entries are
	// forgotten early.
	DuplicateMax int
	// StopTimeout bounds how long Run waits, once its context ends, for the
	// answers of requests already handed to the Recorder (default 5 s).
	StopTimeout time.Duration
	// ReadBuffer is the socket receive buffer asked for (default 4 MiB),
	// so that a burst (a NAS rebooting and sending thousands of Starts)
	// waits in the kernel instead of being dropped while the store commits.
	// Linux caps it at net.core.rmem_max; negative leaves the socket as is.
	ReadBuffer int
	// Forward, when set, relays every stored Accounting-Request to another
	// RADIUS server (proxy mode's forward_accounting, see Proxy). The NAS
	// then gets its Accounting-Response only once the record is committed
	// AND the upstream has acknowledged it. Nil keeps the plain path:
	// answer right after the commit, nothing copied.
	Forward AccountingForwarder
	Logger  *slog.Logger
}

// AccountingForwarder relays Accounting-Requests the Listener has stored to
// another RADIUS server. *Proxy implements it.
type AccountingForwarder interface {
	// ForwardAccounting relays req, a verified Accounting-Request from the
	// client named nas (which the callee may keep), and calls done exactly
	// once: with nil when the upstream has acknowledged it, or with the
	// error that kept it from being acknowledged. It must not block, since
	// the Listener calls it from the Recorder's goroutine; done may run on
	// any goroutine, and must not block either.
	ForwardAccounting(req []byte, nas string, done func(error))
}

// Listener receives RADIUS accounting on a UDP socket, records each request
// through a Recorder and answers it once the Recorder has committed it.
type Listener struct {
	front
	rec  Recorder
	opts Options
	dups *dupCache[struct{}]

	running atomic.Bool

	// inflight counts requests handed to the Recorder whose done has not
	// run yet; Run waits for it to reach zero when stopping.
	inflight atomic.Int64
	stopping atomic.Bool
	idle     chan struct{}

	// ackLatency times each answer from the request's arrival: what the
	// NAS waits for, commit (and forwarding) included.
	ackLatency histogram
}

// NewListener returns a Listener reading from conn and accepting the given
// clients. The caller owns conn and closes it after Run returns.
func NewListener(conn net.PacketConn, clients []Client, rec Recorder, opts Options) (*Listener, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.DuplicateWindow <= 0 {
		opts.DuplicateWindow = DefaultDuplicateWindow
	}
	if opts.DuplicateMax <= 0 {
		opts.DuplicateMax = DefaultDuplicateMax
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}
	if opts.ReadBuffer == 0 {
		opts.ReadBuffer = DefaultReadBuffer
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	l := &Listener{
		rec:  rec,
		opts: opts,
		dups: newDupCache[struct{}](opts.DuplicateWindow, opts.DuplicateMax),
		idle: make(chan struct{}, 1),
	}
	l.init(conn, opts.Logger.With("source", Source), opts.ReadBuffer)
	if err := l.SetClients(clients); err != nil {
		return nil, err
	}
	return l, nil
}

// SetClients replaces the allowed clients, e.g. on SIGHUP. Packets being
// handled finish with the old list. A source matching several clients goes to
// the longest prefix; among equal prefixes, to the first listed. On error the
// current list is kept.
func (l *Listener) SetClients(cs []Client) error { return l.setClients(cs) }

// Stats returns a snapshot of the counters.
func (l *Listener) Stats() Stats {
	s := l.stats.snapshot()
	s.DuplicateEntries = l.dups.len()
	s.AckLatency = l.ackLatency.snapshot()
	return s
}

// LocalAddr is the address the Listener receives on.
func (l *Listener) LocalAddr() net.Addr { return l.conn.LocalAddr() }

// Run reads and answers packets until ctx ends or the socket fails. Then it
// stops reading, waits up to Options.StopTimeout until every request already
// handed to the Recorder has been answered (or refused), and returns: nil
// after ctx ended, the socket's error otherwise. The Recorder must keep
// running until Run has returned.
func (l *Listener) Run(ctx context.Context) error {
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("radius: Listener.Run called twice")
	}
	if a, ok := l.opts.Forward.(attacher); ok {
		// The forwarder keeps its upstream sockets until this Run has
		// drained, so that records committed while stopping still reach
		// the upstream and get their answer.
		defer a.attach()()
	}
	l.log.Info("radius: listening for accounting", "addr", l.conn.LocalAddr().String(), "workers", l.opts.Workers, "forward", l.opts.Forward != nil)
	err := l.serve(ctx, l.opts.Workers, l.handle)
	l.drain()
	return err
}

// attacher is implemented by forwarders that must outlive the Listeners
// using them (*Proxy): attach is called when Run starts and the function it
// returns once Run has drained.
type attacher interface{ attach() (release func()) }

// drain waits, bounded, for the answers of requests the Recorder still holds.
func (l *Listener) drain() {
	l.stopping.Store(true)
	if l.inflight.Load() == 0 {
		return
	}
	t := time.NewTimer(l.opts.StopTimeout)
	defer t.Stop()
	select {
	case <-l.idle:
	case <-t.C:
		l.log.Warn("radius: stopped with requests still uncommitted; their NAS will retransmit",
			"pending", l.inflight.Load(), "waited", l.opts.StopTimeout)
	}
}

// finish marks one request handed to the Recorder as done.
func (l *Listener) finish() {
	if l.inflight.Add(-1) == 0 && l.stopping.Load() {
		select {
		case l.idle <- struct{}{}:
		default:
		}
	}
}

// handle processes one datagram. b is the reader's buffer: everything kept
// beyond this call is copied out of it.
func (l *Listener) handle(ctx context.Context, b []byte, src netip.AddrPort, now time.Time) {
	cl, b := l.admit(b, src, now)
	if cl == nil {
		return
	}
	switch radius.Code(b[0]) {
	case radius.CodeAccountingRequest:
		l.accounting(ctx, cl, b, src, now)
	case radius.CodeStatusServer:
		l.statusServer(cl, b, src, now, radius.CodeAccountingResponse)
	default:
		l.unsupported(cl, b, src, now, "accounting")
	}
}

func (l *Listener) accounting(ctx context.Context, cl *client, b []byte, src netip.AddrPort, now time.Time) {
	// Verify before the duplicate cache sees the packet, so that forged
	// packets can neither fill it nor fetch cached answers.
	if !radius.IsAuthenticRequest(b, cl.secret) {
		l.badAuthenticator(cl, src, now, "Request Authenticator")
		return
	}
	key := newDupKey(src, b[1], b[4:20])
	switch st, _ := l.dups.begin(key); st {
	case dupPending:
		l.stats.drop(dropDuplicateInflight, cl)
		return
	case dupAnswered:
		if l.writeTo(accountingResponse(key.id, key.auth, proxyStates(b), cl.secret), src) {
			l.stats.dupAnswered.Add(1)
		}
		return
	case dupStored:
		// Stored already; only the upstream's acknowledgement is
		// missing. Forward this copy, do not store it again.
		r := &request{l: l, cl: cl, src: src, key: key, proxyState: proxyStates(b), raw: slices.Clone(b)}
		l.inflight.Add(1)
		l.stats.reforwarded.Add(1)
		r.forward()
		return
	}

	p, err := radius.Parse(b, cl.secret)
	if err != nil {
		l.dups.forget(key)
		l.malformed(cl, src, now, err)
		return
	}
	ev, problems, err := Decode(p, cl.name, now)
	if err != nil {
		l.dups.forget(key)
		l.malformed(cl, src, now, err)
		return
	}
	if len(problems) > 0 {
		l.stats.badAttrs.Add(int64(len(problems)))
		if ok, n := l.warn.allow(src.Addr(), "attribute", now); ok {
			l.log.Warn("radius: left malformed attributes out of the event; the rest is stored",
				"nas", cl.name, "login", ev.Login, "problems", errors.Join(problems...).Error(), "suppressed", n)
		}
	}

	r := &request{l: l, cl: cl, src: src, key: key, proxyState: proxyStates(b), received: now}
	if l.opts.Forward != nil {
		r.raw = slices.Clone(b) // the reader's buffer is reused
	}
	l.inflight.Add(1)
	if err := l.rec.Record(ctx, ev, r.done); err != nil {
		l.dups.forget(key)
		l.stats.drop(dropRejected, cl)
		l.finish()
		if ctx.Err() == nil {
			if ok, n := l.warn.allow(src.Addr(), DropRejected, now); ok {
				l.log.Warn("radius: event refused; not answered", "nas", cl.name, "login", ev.Login, "err", err, "suppressed", n)
			}
		}
		return
	}
	l.stats.recorded.Add(1)
}

// request is what the answer to an Accounting-Request needs once the
// reader's buffer has been reused.
type request struct {
	l          *Listener
	cl         *client
	src        netip.AddrPort
	key        dupKey // holds the Identifier and Request Authenticator
	proxyState []byte
	raw        []byte // the request as received, when it is to be forwarded
	received   time.Time
}

// done is the Recorder's callback: the only place an Accounting-Response is
// sent for a new request, after its commit (and, when forwarding, after the
// upstream's answer too).
func (r *request) done(_ watcher.Event, err error) {
	l := r.l
	if err != nil {
		// Nothing was stored: forget the request so that the NAS's
		// retransmission is recorded afresh. The Recorder logs the error.
		l.dups.forget(r.key)
		l.stats.drop(dropStoreError, r.cl)
		l.finish()
		return
	}
	if l.opts.Forward != nil {
		r.forward()
		return
	}
	r.ack()
}

func (r *request) forward() {
	r.l.opts.Forward.ForwardAccounting(r.raw, r.cl.name, r.forwarded)
}

// forwarded is the forwarder's callback.
func (r *request) forwarded(err error) {
	l := r.l
	if err != nil {
		// Stored, not acknowledged upstream: no answer, so the NAS
		// retransmits, and its retransmission is forwarded again but not
		// stored again. The forwarder logs why.
		l.dups.park(r.key)
		l.stats.drop(dropUpstreamFailed, r.cl)
		l.finish()
		return
	}
	l.stats.forwarded.Add(1)
	r.ack()
}

func (r *request) ack() {
	l := r.l
	defer l.finish()
	l.dups.answer(r.key, struct{}{}) // before sending: a quick retransmission finds it
	if l.writeTo(accountingResponse(r.key.id, r.key.auth, r.proxyState, r.cl.secret), r.src) {
		now := time.Now()
		l.stats.acked.Add(1)
		r.cl.stats.ack(now)
		l.ackLatency.observe(now.Sub(r.received))
	}
}
