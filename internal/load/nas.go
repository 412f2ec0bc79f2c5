package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"layeh.com/radius"
)

// nasConn is one simulated NAS: a UDP socket connected to the server (bound
// to a chosen source address when asked), 256 Identifiers, and a reader
// goroutine that matches answers to the requests in flight.
//
// It is radiustest.Client's exchange with what a load generator needs on
// top: a source address, exact per-request counts of tries, and the time of
// the first transmission handed to the caller before the datagram leaves,
// so that an event can never be seen on a websocket before its send time is
// known.
type nasConn struct {
	name   string
	conn   *net.UDPConn
	secret []byte
	retry  time.Duration
	tries  int

	ids   chan byte // free Identifiers: a semaphore of 256
	mu    sync.Mutex
	calls [256]*call

	stray   *atomic.Int64 // answers matching no request in flight, or not verifying
	dupAnsw *atomic.Int64 // second answers to a request already answered
	sendErr *atomic.Int64 // datagrams the socket refused (counted as sent)
}

type call struct {
	req      []byte
	answered atomic.Bool
	ack      chan struct{} // buffered 1
}

// outcome is what became of one request.
type outcome struct {
	tries   int           // datagrams sent: 1 + retransmissions
	acked   bool          // a verified Accounting-Response came back
	aborted bool          // ctx ended before an answer or the last timeout
	latency time.Duration // first transmission → answer, when acked
}

func dialNAS(name, server string, src netip.Addr, secret []byte, retry time.Duration, tries int, stray, dupAnsw, sendErr *atomic.Int64) (*nasConn, error) {
	raddr, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return nil, fmt.Errorf("load: resolve server %s: %w", server, err)
	}
	var laddr *net.UDPAddr
	if src.IsValid() {
		laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	conn, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		return nil, fmt.Errorf("load: NAS %s: dial %s from %v: %w", name, server, src, err)
	}
	// A burst of answers must wait in the kernel, not be dropped, while the
	// reader is descheduled: lost answers would count as retransmissions.
	_ = conn.SetReadBuffer(4 << 20)
	n := &nasConn{
		name: name, conn: conn, secret: secret, retry: retry, tries: tries,
		ids: make(chan byte, 256), stray: stray, dupAnsw: dupAnsw, sendErr: sendErr,
	}
	for id := range 256 {
		n.ids <- byte(id)
	}
	return n, nil
}

// exchange sends p (Identifier set here, Request Authenticator computed) and
// waits for its verified answer, retransmitting the same bytes every retry
// up to tries datagrams in all. first is called with the time of the first
// transmission, just before it leaves.
func (n *nasConn) exchange(ctx context.Context, p *radius.Packet, first func(time.Time)) (outcome, error) {
	var id byte
	select {
	case id = <-n.ids:
	case <-ctx.Done():
		return outcome{aborted: true}, nil
	}
	defer func() { n.ids <- id }()

	p.Identifier = id
	req, err := p.Encode()
	if err != nil {
		return outcome{}, fmt.Errorf("load: encode: %w", err)
	}
	cl := &call{req: req, ack: make(chan struct{}, 1)}
	n.mu.Lock()
	n.calls[id] = cl
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.calls[id] = nil
		n.mu.Unlock()
	}()

	var (
		o     outcome
		start time.Time
		timer *time.Timer
	)
	for {
		now := time.Now()
		if o.tries == 0 {
			start = now
			if first != nil {
				first(now)
			}
			timer = time.NewTimer(n.retry)
			defer timer.Stop()
		} else {
			timer.Reset(n.retry)
		}
		o.tries++
		if _, err := n.conn.Write(req); err != nil {
			// ECONNREFUSED from an earlier ICMP, ENOBUFS: the datagram is
			// lost like one dropped on the way; the timer retransmits it.
			n.sendErr.Add(1)
		}
		select {
		case <-cl.ack:
			o.acked, o.latency = true, time.Since(start)
			return o, nil
		case <-ctx.Done():
			o.aborted = true
			return o, nil
		case <-timer.C:
		}
		if o.tries >= n.tries {
			return o, nil // lost
		}
	}
}

// read matches answers to requests until the socket is closed.
func (n *nasConn) read() {
	buf := make([]byte, radius.MaxPacketLength)
	for {
		k, err := n.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// ECONNREFUSED: the server's port is closed for now; the
			// requests retransmit. Keep reading.
			time.Sleep(time.Millisecond)
			continue
		}
		if k < 20 {
			n.stray.Add(1)
			continue
		}
		n.mu.Lock()
		cl := n.calls[buf[1]]
		n.mu.Unlock()
		if cl == nil || radius.Code(buf[0]) != radius.CodeAccountingResponse || !radius.IsAuthenticResponse(buf[:k], cl.req, n.secret) {
			n.stray.Add(1)
			continue
		}
		if !cl.answered.CompareAndSwap(false, true) {
			n.dupAnsw.Add(1) // both a request and its retransmission were answered
			continue
		}
		cl.ack <- struct{}{}
	}
}

func (n *nasConn) close() error { return n.conn.Close() }
