package radiustest

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2869"
)

// ErrNoAnswer is returned by Exchange when every try went unanswered.
var ErrNoAnswer = errors.New("radiustest: no answer")

// ClientOptions tune a Client; zero values pick defaults.
type ClientOptions struct {
	// Sockets is the number of UDP sockets (default 1). Each one carries up
	// to 256 requests in flight, the Identifier being one octet.
	Sockets int
	// Retry is how long to wait for an answer before retransmitting
	// (default 1 s).
	Retry time.Duration
	// Tries is how many times a request is sent in all (default 3).
	Tries int
}

// Client sends RADIUS requests to one server and waits for answers whose
// Response Authenticator verifies, retransmitting the same bytes (same
// Identifier and Request Authenticator) like a NAS does. It is safe for
// concurrent use; Close stops it.
//
// Sockets are connected to the server, so the kernel delivers only the
// server's datagrams, and a reader goroutine per socket matches them to
// requests by Identifier. A late answer to an earlier request that reused the
// Identifier fails verification and is ignored.
type Client struct {
	secret []byte
	opts   ClientOptions
	socks  []*socket
	next   atomic.Uint32
	wg     sync.WaitGroup

	retransmits atomic.Int64
	unmatched   atomic.Int64
}

type socket struct {
	conn *net.UDPConn
	ids  chan byte // free Identifiers: a semaphore of 256
	mu   sync.Mutex
	req  [256]*call
}

type call struct {
	req  []byte
	resp chan []byte // buffered 1
}

// NewClient returns a Client sending to addr ("host:port") with secret.
func NewClient(addr string, secret []byte, o ClientOptions) (*Client, error) {
	if o.Sockets <= 0 {
		o.Sockets = 1
	}
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	if o.Tries <= 0 {
		o.Tries = 3
	}
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("radiustest: resolve %s: %w", addr, err)
	}
	c := &Client{secret: append([]byte(nil), secret...), opts: o}
	for range o.Sockets {
		conn, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("radiustest: dial %s: %w", addr, err)
		}
		s := &socket{conn: conn, ids: make(chan byte, 256)}
		for id := range 256 {
			s.ids <- byte(id)
		}
		c.socks = append(c.socks, s)
		c.wg.Go(func() { c.read(s) })
	}
	return c, nil
}

// Close closes the sockets and waits for the readers to stop. Exchanges in
// progress fail.
func (c *Client) Close() error {
	var errs []error
	for _, s := range c.socks {
		errs = append(errs, s.conn.Close())
	}
	c.wg.Wait()
	return errors.Join(errs...)
}

// Retransmits counts the requests sent again for want of an answer.
func (c *Client) Retransmits() int64 { return c.retransmits.Load() }

// Unmatched counts datagrams that answered no request in flight, or did not
// verify.
func (c *Client) Unmatched() int64 { return c.unmatched.Load() }

// Exchange sends p and returns the verified answer. It sets p.Identifier and
// p.Secret, computes the Request Authenticator of accounting requests and
// fills in a Message-Authenticator attribute when p has one (Status-Server
// needs it). It waits at most Tries × Retry, or until ctx ends.
func (c *Client) Exchange(ctx context.Context, p *radius.Packet) (*radius.Packet, error) {
	raw, err := c.ExchangeRaw(ctx, p)
	if err != nil {
		return nil, err
	}
	resp, err := radius.Parse(raw, c.secret)
	if err != nil {
		return nil, fmt.Errorf("radiustest: answer: %w", err)
	}
	return resp, nil
}

// ExchangeRaw is Exchange returning the answer's wire bytes, verified but
// not parsed: for load generators.
func (c *Client) ExchangeRaw(ctx context.Context, p *radius.Packet) ([]byte, error) {
	s := c.socks[int(c.next.Add(1))%len(c.socks)]
	var id byte
	select {
	case id = <-s.ids:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { s.ids <- id }()

	p.Identifier, p.Secret = id, c.secret
	req, err := encode(p)
	if err != nil {
		return nil, err
	}
	cl := &call{req: req, resp: make(chan []byte, 1)}
	s.mu.Lock()
	s.req[id] = cl
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.req[id] = nil
		s.mu.Unlock()
	}()

	timer := time.NewTimer(c.opts.Retry)
	defer timer.Stop()
	for try := 1; ; try++ {
		if _, err := s.conn.Write(req); err != nil {
			return nil, fmt.Errorf("radiustest: send: %w", err)
		}
		select {
		case resp := <-cl.resp:
			return resp, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
		}
		if try == c.opts.Tries {
			return nil, fmt.Errorf("%w after %d tries (code %v, id %d)", ErrNoAnswer, try, p.Code, id)
		}
		c.retransmits.Add(1)
		timer.Reset(c.opts.Retry)
	}
}

func (c *Client) read(s *socket) {
	buf := make([]byte, radius.MaxPacketLength)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// ECONNREFUSED: the server's port is closed for now. The
			// requests retransmit; keep reading.
			continue
		}
		if n < 20 {
			c.unmatched.Add(1)
			continue
		}
		s.mu.Lock()
		cl := s.req[buf[1]]
		s.mu.Unlock()
		if cl == nil || !radius.IsAuthenticResponse(buf[:n], cl.req, c.secret) {
			c.unmatched.Add(1)
			continue
		}
		select {
		case cl.resp <- append([]byte(nil), buf[:n]...):
		default: // a second answer to a retransmission: one is enough
		}
	}
}

// encode is radius.Packet.Encode plus the Message-Authenticator (RFC 3579
// §3.2), which layeh.com/radius leaves to its users.
func encode(p *radius.Packet) ([]byte, error) {
	_, hasMA := p.Lookup(rfc2869.MessageAuthenticator_Type)
	if hasMA {
		p.Set(rfc2869.MessageAuthenticator_Type, make(radius.Attribute, 16))
	}
	b, err := p.Encode()
	if err != nil {
		return nil, fmt.Errorf("radiustest: encode: %w", err)
	}
	if !hasMA {
		return b, nil
	}
	if p.Code != radius.CodeAccessRequest && p.Code != radius.CodeStatusServer {
		return nil, fmt.Errorf("radiustest: Message-Authenticator is only filled in for Access-Request and Status-Server, not %v", p.Code)
	}
	// The Request Authenticator of these codes is random, not a hash, so
	// the HMAC can be computed over the encoded packet and written in place.
	off := 20
	for off+2 <= len(b) && radius.Type(b[off]) != rfc2869.MessageAuthenticator_Type {
		off += int(b[off+1])
	}
	mac := hmac.New(md5.New, p.Secret)
	mac.Write(b)
	mac.Sum(b[off+2 : off+2])
	return b, nil
}

// StatusServer returns a Status-Server request (RFC 5997) with the
// Message-Authenticator it requires; Exchange fills the attribute in.
func StatusServer() *radius.Packet {
	p := radius.New(radius.CodeStatusServer, nil)
	p.Add(rfc2869.MessageAuthenticator_Type, make(radius.Attribute, 16))
	return p
}
