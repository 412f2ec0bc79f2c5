package radius

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
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
	Logger     *slog.Logger
}

// Listener receives RADIUS accounting on a UDP socket, records each request
// through a Recorder and answers it once the Recorder has committed it.
type Listener struct {
	conn net.PacketConn
	udp  *net.UDPConn // conn, when it is one: allocation-free reads and writes
	rec  Recorder
	opts Options
	log  *slog.Logger

	clients atomic.Pointer[clientTable]
	dups    *dupCache
	stats   counters
	warn    warnLimiter

	running atomic.Bool

	// inflight counts requests handed to the Recorder whose done has not
	// run yet; Run waits for it to reach zero when stopping.
	inflight atomic.Int64
	stopping atomic.Bool
	idle     chan struct{}
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
		conn: conn,
		rec:  rec,
		opts: opts,
		log:  opts.Logger.With("source", Source),
		dups: newDupCache(opts.DuplicateWindow, opts.DuplicateMax),
		idle: make(chan struct{}, 1),
	}
	l.udp, _ = conn.(*net.UDPConn)
	if b, ok := conn.(interface{ SetReadBuffer(int) error }); ok && opts.ReadBuffer > 0 {
		if err := b.SetReadBuffer(opts.ReadBuffer); err != nil {
			l.log.Warn("radius: could not enlarge the socket receive buffer", "bytes", opts.ReadBuffer, "err", err)
		}
	}
	if err := l.SetClients(clients); err != nil {
		return nil, err
	}
	return l, nil
}

// SetClients replaces the allowed clients, e.g. on SIGHUP. Packets being
// handled finish with the old list. A source matching several clients goes to
// the longest prefix; among equal prefixes, to the first listed. On error the
// current list is kept.
func (l *Listener) SetClients(cs []Client) error {
	t, err := buildClients(cs, l.stats.forNAS)
	if err != nil {
		return fmt.Errorf("radius: clients: %w", err)
	}
	l.clients.Store(t)
	return nil
}

// Stats returns a snapshot of the counters.
func (l *Listener) Stats() Stats {
	s := l.stats.snapshot()
	s.DuplicateEntries = l.dups.len()
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A read deadline in the past wakes every reader blocked in ReadFrom.
	stopReads := context.AfterFunc(ctx, func() { _ = l.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stopReads()

	l.log.Info("radius: listening for accounting", "addr", l.conn.LocalAddr().String(), "workers", l.opts.Workers)
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		runErr  error
	)
	for range l.opts.Workers {
		wg.Go(func() {
			if err := l.readLoop(ctx); err != nil {
				errOnce.Do(func() { runErr = err })
				cancel() // one broken socket stops every reader
			}
		})
	}
	wg.Wait()
	l.drain()
	return runErr
}

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

func (l *Listener) readLoop(ctx context.Context) error {
	buf := make([]byte, readBufferSize)
	for {
		n, src, err := l.readFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("radius: read: %w", err)
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue // someone else's deadline; ours comes with ctx
			}
			// Transient errors (ICMP feedback, ENOBUFS) must not stop
			// accounting; the pause keeps a persistent one from spinning.
			if ok, n := l.warn.allow(netip.Addr{}, "read", time.Now()); ok {
				l.log.Warn("radius: read failed", "err", err, "suppressed", n)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		l.handle(ctx, buf[:n], src, time.Now())
	}
}

func (l *Listener) readFrom(buf []byte) (int, netip.AddrPort, error) {
	if l.udp != nil {
		return l.udp.ReadFromUDPAddrPort(buf)
	}
	n, addr, err := l.conn.ReadFrom(buf)
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, netip.AddrPort{}, fmt.Errorf("radius: read: not a UDP address: %v", addr)
	}
	return n, ua.AddrPort(), nil
}

func (l *Listener) writeTo(b []byte, dst netip.AddrPort) bool {
	var err error
	if l.udp != nil {
		_, err = l.udp.WriteToUDPAddrPort(b, dst)
	} else {
		_, err = l.conn.WriteTo(b, net.UDPAddrFromAddrPort(dst))
	}
	if err != nil {
		l.stats.writeErrs.Add(1)
		if ok, n := l.warn.allow(dst.Addr(), "write", time.Now()); ok {
			l.log.Warn("radius: sending answer failed", "dst", dst.String(), "err", err, "suppressed", n)
		}
		return false
	}
	return true
}

// handle processes one datagram. b is the reader's buffer: everything kept
// beyond this call is copied out of it.
func (l *Listener) handle(ctx context.Context, b []byte, src netip.AddrPort, now time.Time) {
	l.stats.received.Add(1)
	cl := l.clients.Load().lookup(src.Addr())
	if cl == nil {
		l.stats.drop(dropUnknownClient, nil)
		if ok, n := l.warn.allow(src.Addr(), DropUnknownClient, now); ok {
			l.log.Warn("radius: dropped packet from unknown source; add it as a [[nas]] to accept it",
				"src", src.Addr().Unmap().String(), "suppressed", n)
		}
		return
	}
	if len(b) < 20 {
		l.malformed(cl, src, now, errors.New("shorter than a RADIUS header"))
		return
	}
	cl.stats.packets[b[0]].Add(1)
	length := int(binary.BigEndian.Uint16(b[2:4]))
	if length < 20 || length > len(b) || length > radius.MaxPacketLength {
		l.malformed(cl, src, now, fmt.Errorf("length field %d, datagram %d bytes", length, len(b)))
		return
	}
	b = b[:length] // octets past Length are padding (RFC 2865 §3)

	switch radius.Code(b[0]) {
	case radius.CodeAccountingRequest:
		l.accounting(ctx, cl, b, src, now)
	case radius.CodeStatusServer:
		l.statusServer(cl, b, src, now)
	default:
		l.stats.drop(dropUnsupportedCode, cl)
		if ok, n := l.warn.allow(src.Addr(), DropUnsupportedCode, now); ok {
			l.log.Warn("radius: dropped packet the accounting port does not serve",
				"nas", cl.name, "src", src.String(), "code", radius.Code(b[0]).String(), "suppressed", n)
		}
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
	switch l.dups.begin(key) {
	case dupPending:
		l.stats.drop(dropDuplicateInflight, cl)
		return
	case dupAnswered:
		if l.writeTo(accountingResponse(key.id, key.auth, proxyStates(b), cl.secret), src) {
			l.stats.dupAnswered.Add(1)
		}
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

	r := &request{l: l, cl: cl, src: src, key: key, proxyState: proxyStates(b)}
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
}

// done is the Recorder's callback: the only place an Accounting-Response is
// sent for a new request, after its commit.
func (r *request) done(_ watcher.Event, err error) {
	l := r.l
	defer l.finish()
	if err != nil {
		// Nothing was stored: forget the request so that the NAS's
		// retransmission is recorded afresh. The Recorder logs the error.
		l.dups.forget(r.key)
		l.stats.drop(dropStoreError, r.cl)
		return
	}
	l.dups.answer(r.key) // before sending: a quick retransmission finds it
	if l.writeTo(accountingResponse(r.key.id, r.key.auth, r.proxyState, r.cl.secret), r.src) {
		l.stats.acked.Add(1)
		r.cl.stats.acked.Add(1)
	}
}

func (l *Listener) statusServer(cl *client, b []byte, src netip.AddrPort, now time.Time) {
	if !messageAuthenticatorOK(b, cl.secret) {
		l.badAuthenticator(cl, src, now, "Message-Authenticator of Status-Server")
		return
	}
	if l.writeTo(statusResponse(b, cl.secret), src) {
		l.stats.statusServer.Add(1)
	}
}

func (l *Listener) badAuthenticator(cl *client, src netip.AddrPort, now time.Time, what string) {
	l.stats.drop(dropBadAuthenticator, cl)
	if ok, n := l.warn.allow(src.Addr(), DropBadAuthenticator, now); ok {
		l.log.Warn("radius: dropped packet with a bad "+what+"; is the NAS's secret the configured one?",
			"nas", cl.name, "src", src.Addr().Unmap().String(), "suppressed", n)
	}
}

func (l *Listener) malformed(cl *client, src netip.AddrPort, now time.Time, err error) {
	l.stats.drop(dropMalformed, cl)
	if ok, n := l.warn.allow(src.Addr(), DropMalformed, now); ok {
		l.log.Warn("radius: dropped malformed packet", "nas", cl.name, "src", src.String(), "err", err, "suppressed", n)
	}
}
