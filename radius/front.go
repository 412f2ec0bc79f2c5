package radius

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"layeh.com/radius"
)

// handler processes one datagram. b is the reader's buffer: whatever is kept
// beyond the call is copied out of it.
type handler func(ctx context.Context, b []byte, src netip.AddrPort, now time.Time)

// front is the NAS-facing half that the accounting Listener and the Proxy
// share: the UDP socket and its read loop, the table of configured clients,
// the counters and the rate-limited warnings. Both see the same NAS list and
// drop and count what does not come from it in the same way.
type front struct {
	conn net.PacketConn
	udp  *net.UDPConn // conn, when it is one: allocation-free reads and writes
	log  *slog.Logger

	clients atomic.Pointer[clientTable]
	stats   counters
	warn    warnLimiter
}

func (f *front) init(conn net.PacketConn, log *slog.Logger, readBuffer int) {
	f.conn, f.log = conn, log
	f.udp, _ = conn.(*net.UDPConn)
	if b, ok := conn.(interface{ SetReadBuffer(int) error }); ok && readBuffer > 0 {
		if err := b.SetReadBuffer(readBuffer); err != nil {
			f.log.Warn("radius: could not enlarge the socket receive buffer", "bytes", readBuffer, "err", err)
		}
	}
}

func (f *front) setClients(cs []Client) error {
	t, err := buildClients(cs, f.stats.forNAS)
	if err != nil {
		return fmt.Errorf("radius: clients: %w", err)
	}
	f.clients.Store(t)
	return nil
}

// serve runs workers read loops on the socket until ctx ends or the socket
// fails, and returns the socket's error (nil after ctx ended).
func (f *front) serve(ctx context.Context, workers int, handle handler) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A read deadline in the past wakes every reader blocked in ReadFrom.
	stopReads := context.AfterFunc(ctx, func() { _ = f.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stopReads()
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		runErr  error
	)
	for range workers {
		wg.Go(func() {
			if err := f.readLoop(ctx, handle); err != nil {
				errOnce.Do(func() { runErr = err })
				cancel() // one broken socket stops every reader
			}
		})
	}
	wg.Wait()
	return runErr
}

func (f *front) readLoop(ctx context.Context, handle handler) error {
	buf := make([]byte, readBufferSize)
	for {
		n, src, err := f.readFrom(buf)
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
			// the service; the pause keeps a persistent one from spinning.
			if ok, n := f.warn.allow(netip.Addr{}, "read", time.Now()); ok {
				f.log.Warn("radius: read failed", "err", err, "suppressed", n)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		handle(ctx, buf[:n], src, time.Now())
	}
}

func (f *front) readFrom(buf []byte) (int, netip.AddrPort, error) {
	if f.udp != nil {
		return f.udp.ReadFromUDPAddrPort(buf)
	}
	n, addr, err := f.conn.ReadFrom(buf)
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, netip.AddrPort{}, fmt.Errorf("radius: read: not a UDP address: %v", addr)
	}
	return n, ua.AddrPort(), nil
}

func (f *front) writeTo(b []byte, dst netip.AddrPort) bool {
	var err error
	if f.udp != nil {
		_, err = f.udp.WriteToUDPAddrPort(b, dst)
	} else {
		_, err = f.conn.WriteTo(b, net.UDPAddrFromAddrPort(dst))
	}
	if err != nil {
		f.stats.writeErrs.Add(1)
		if ok, n := f.warn.allow(dst.Addr(), "write", time.Now()); ok {
			f.log.Warn("radius: sending answer failed", "dst", dst.String(), "err", err, "suppressed", n)
		}
		return false
	}
	return true
}

// admit counts a datagram, finds its client and checks its header. It
// returns the client and the packet cut to its Length field, or nil when the
// datagram was dropped (and counted).
func (f *front) admit(b []byte, src netip.AddrPort, now time.Time) (*client, []byte) {
	f.stats.received.Add(1)
	cl := f.clients.Load().lookup(src.Addr())
	if cl == nil {
		f.stats.drop(dropUnknownClient, nil)
		if ok, n := f.warn.allow(src.Addr(), DropUnknownClient, now); ok {
			f.log.Warn("radius: dropped packet from unknown source; add it as a [[nas]] to accept it",
				"src", src.Addr().Unmap().String(), "suppressed", n)
		}
		return nil, nil
	}
	if len(b) < 20 {
		f.malformed(cl, src, now, errors.New("shorter than a RADIUS header"))
		return nil, nil
	}
	cl.stats.packets[b[0]].Add(1)
	cl.stats.lastPacket.Store(now.UnixNano())
	length := int(binary.BigEndian.Uint16(b[2:4]))
	if length < 20 || length > len(b) || length > radius.MaxPacketLength {
		f.malformed(cl, src, now, fmt.Errorf("length field %d, datagram %d bytes", length, len(b)))
		return nil, nil
	}
	return cl, b[:length] // octets past Length are padding (RFC 2865 §3)
}

// statusServer answers an RFC 5997 Status-Server with code: an
// Accounting-Response on the accounting port, an Access-Accept on the
// authentication port.
func (f *front) statusServer(cl *client, b []byte, src netip.AddrPort, now time.Time, code radius.Code) {
	if !messageAuthenticatorOK(b, cl.secret) {
		f.badAuthenticator(cl, src, now, "Message-Authenticator of Status-Server")
		return
	}
	if f.writeTo(statusResponse(code, b, cl.secret), src) {
		f.stats.statusServer.Add(1)
	}
}

func (f *front) unsupported(cl *client, b []byte, src netip.AddrPort, now time.Time, port string) {
	f.stats.drop(dropUnsupportedCode, cl)
	if ok, n := f.warn.allow(src.Addr(), DropUnsupportedCode, now); ok {
		f.log.Warn("radius: dropped packet the "+port+" port does not serve",
			"nas", cl.name, "src", src.String(), "code", radius.Code(b[0]).String(), "suppressed", n)
	}
}

func (f *front) badAuthenticator(cl *client, src netip.AddrPort, now time.Time, what string) {
	f.stats.drop(dropBadAuthenticator, cl)
	if ok, n := f.warn.allow(src.Addr(), DropBadAuthenticator, now); ok {
		f.log.Warn("radius: dropped packet with a bad "+what+"; is the NAS's secret the configured one?",
			"nas", cl.name, "src", src.Addr().Unmap().String(), "suppressed", n)
	}
}

func (f *front) malformed(cl *client, src netip.AddrPort, now time.Time, err error) {
	f.stats.drop(dropMalformed, cl)
	if ok, n := f.warn.allow(src.Addr(), DropMalformed, now); ok {
		f.log.Warn("radius: dropped malformed packet", "nas", cl.name, "src", src.String(), "err", err, "suppressed", n)
	}
}
