package radiustest

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2866"
)

var secret = []byte("s3cret")

// server answers Accounting-Requests; answer decides, per datagram received,
// what to send back (nil: nothing).
func server(t *testing.T, answer func(n int64, req *radius.Packet) *radius.Packet) string {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { conn.Close(); wg.Wait() })
	var n atomic.Int64
	wg.Go(func() {
		buf := make([]byte, 4096)
		for {
			k, addr, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			req, err := radius.Parse(buf[:k], secret)
			if err != nil {
				t.Errorf("server: %v", err)
				continue
			}
			if resp := answer(n.Add(1), req); resp != nil {
				b, err := resp.Encode()
				if err != nil {
					t.Errorf("server: %v", err)
					continue
				}
				conn.WriteToUDPAddrPort(b, addr)
			}
		}
	})
	return conn.LocalAddr().String()
}

func newClient(t *testing.T, addr string, o ClientOptions) *Client {
	t.Helper()
	c, err := NewClient(addr, secret, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func acct(t *testing.T) *radius.Packet {
	t.Helper()
	p, err := Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "alice"}.Packet(secret)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExchangeRetransmits(t *testing.T) {
	var (
		mu                    sync.Mutex
		firstAuth, secondAuth [16]byte
	)
	addr := server(t, func(n int64, req *radius.Packet) *radius.Packet {
		mu.Lock()
		defer mu.Unlock()
		if n == 1 {
			firstAuth = req.Authenticator
			return nil // lost
		}
		secondAuth = req.Authenticator
		return req.Response(radius.CodeAccountingResponse)
	})
	c := newClient(t, addr, ClientOptions{Retry: 50 * time.Millisecond, Tries: 3})
	resp, err := c.Exchange(context.Background(), acct(t))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != radius.CodeAccountingResponse || c.Retransmits() != 1 {
		t.Fatalf("code %v, retransmits %d", resp.Code, c.Retransmits())
	}
	mu.Lock()
	defer mu.Unlock()
	if firstAuth != secondAuth {
		t.Error("the retransmission is not the same request")
	}
}

func TestExchangeIgnoresUnverifiedAnswers(t *testing.T) {
	addr := server(t, func(_ int64, req *radius.Packet) *radius.Packet {
		resp := req.Response(radius.CodeAccountingResponse)
		resp.Secret = []byte("wrong")
		return resp
	})
	c := newClient(t, addr, ClientOptions{Retry: 50 * time.Millisecond, Tries: 2})
	_, err := c.Exchange(context.Background(), acct(t))
	if !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("err = %v, want ErrNoAnswer", err)
	}
	if c.Unmatched() != 2 {
		t.Errorf("unmatched = %d, want 2", c.Unmatched())
	}
}

// More requests in flight than one socket has Identifiers: they wait for a
// free one and all complete.
func TestExchangeConcurrent(t *testing.T) {
	addr := server(t, func(_ int64, req *radius.Packet) *radius.Packet {
		return req.Response(radius.CodeAccountingResponse)
	})
	c := newClient(t, addr, ClientOptions{Sockets: 2, Retry: time.Second})
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 600 {
		wg.Go(func() {
			if _, err := c.ExchangeRaw(context.Background(), acct(t)); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d exchanges failed", failed.Load())
	}
}

func TestExchangeContext(t *testing.T) {
	addr := server(t, func(int64, *radius.Packet) *radius.Packet { return nil })
	c := newClient(t, addr, ClientOptions{Retry: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Exchange(ctx, acct(t)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}
