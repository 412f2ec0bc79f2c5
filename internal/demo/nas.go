package demo

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"layeh.com/radius/rfc2866"

	"authwatch/radius/radiustest"
)

// RebootLogin is the customer the simulated NAS reboots on a fixed cycle, so
// that a newcomer always has someone to watch.
const RebootLogin = "demo.reboot"

// NAS is a simulated concentrator sending accounting for its customers.
type NAS struct {
	Name      string
	Server    string // authwatch's accounting address
	Secret    []byte
	NASIP     netip.Addr
	Customers []*Customer
	// Tempo scales every delay (1 = demo speed, smaller in tests).
	Tempo float64
	Log   *slog.Logger

	client *radiustest.Client
	rnd    *rand.Rand // churn's only

	mu     sync.Mutex // guards the customers' session fields and serial
	serial uint32
}

// Customer is one simulated subscriber.
type Customer struct {
	Login   string
	MAC     string
	IP      netip.Addr
	Port    string
	session string
	started time.Time
	in, out uint64
}

var (
	firstNames = []string{"joao", "maria", "ana", "pedro", "lucas", "julia", "carlos", "fernanda", "rafael", "beatriz", "gabriel", "larissa", "marcos", "patricia", "thiago", "camila", "bruno", "aline", "diego", "vanessa"}
	lastNames  = []string{"silva", "souza", "oliveira", "santos", "pereira", "lima", "costa", "ferreira", "almeida", "rodrigues", "gomes", "martins", "araujo", "ribeiro"}
)

// Customers returns n customers with stable logins, MACs and addresses;
// the first is named first (RebootLogin, PasswordLogin). Addresses are
// 127.64+net.x.y: loopback, where the demo's CPE pages can answer them.
func Customers(n int, seed uint64, first string, net byte) []*Customer {
	rnd := rand.New(rand.NewPCG(seed, 1))
	out := make([]*Customer, 0, n)
	seen := map[string]bool{}
	for i := 0; len(out) < n; i++ {
		login := first
		if i > 0 {
			login = firstNames[rnd.IntN(len(firstNames))] + "." + lastNames[rnd.IntN(len(lastNames))]
			if seen[login] {
				login = fmt.Sprintf("%s%d", login, i)
			}
		}
		seen[login] = true
		mac := fmt.Sprintf("%02X:%02X:%02X:%02X:%02X:%02X", []any{0x18, 0xFD, 0x74, rnd.IntN(256), rnd.IntN(256), i % 256}...)
		out = append(out, &Customer{
			Login: login, MAC: mac,
			IP:   netip.AddrFrom4([4]byte{127, 64 + net, byte(i / 250), byte(2 + i%250)}),
			Port: fmt.Sprintf("vlan%d", 100+i%4),
		})
	}
	return out
}

func (n *NAS) pause(ctx context.Context, d time.Duration) error { return sleep(ctx, d, n.Tempo) }

// sleep waits d scaled by tempo (when > 0), or until ctx ends.
func sleep(ctx context.Context, d time.Duration, tempo float64) error {
	if tempo > 0 {
		d = time.Duration(float64(d) * tempo)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (n *NAS) jitter(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(n.rnd.Int64N(int64(hi-lo)+1))
}

// Run sends accounting until ctx ends: Accounting-On, a Start for most
// customers, interim updates, and now and then a reboot, a power cut, a
// flapping line or a customer who hangs up.
func (n *NAS) Run(ctx context.Context) error {
	if n.Log == nil {
		n.Log = slog.Default()
	}
	n.rnd = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	c, err := radiustest.NewClient(n.Server, n.Secret, radiustest.ClientOptions{Retry: 2 * time.Second, Tries: 3})
	if err != nil {
		return fmt.Errorf("demo nas %s: %w", n.Name, err)
	}
	defer c.Close()
	n.client = c

	// Stopped while a request waits for its answer is a stop, not a failure.
	stopped := func(err error) error {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if err := n.send(ctx, radiustest.Acct{Status: rfc2866.AcctStatusType_Value_AccountingOn}); err != nil {
		return stopped(err)
	}
	for i, cu := range n.Customers {
		if i > 0 && n.rnd.IntN(10) == 0 {
			continue // some customers start offline
		}
		if err := n.start(ctx, cu); err != nil {
			return stopped(err)
		}
		if err := n.pause(ctx, n.jitter(20*time.Millisecond, 120*time.Millisecond)); err != nil {
			return nil
		}
	}
	errc := make(chan error, 2)
	go func() { errc <- n.rebootCycle(ctx, n.Customers[0]) }()
	go func() { errc <- n.churn(ctx) }()
	err = <-errc
	if err2 := <-errc; err == nil {
		err = err2
	}
	return stopped(err)
}

// rebootCycle reboots the demo customer every minute: the line goes silent,
// the NAS notices after its keepalive gives up, and the router comes back
// with a new session.
func (n *NAS) rebootCycle(ctx context.Context, cu *Customer) error {
	for {
		if err := n.pause(ctx, 45*time.Second); err != nil {
			return err
		}
		if n.online(cu) {
			if err := n.stop(ctx, cu, rfc2866.AcctTerminateCause_Value_LostCarrier); err != nil {
				return err
			}
		}
		if err := n.pause(ctx, 12*time.Second); err != nil {
			return err
		}
		if err := n.start(ctx, cu); err != nil {
			return err
		}
	}
}

// churn picks a random customer every few seconds and does something to it.
func (n *NAS) churn(ctx context.Context) error {
	interim := time.Now()
	for {
		if err := n.pause(ctx, n.jitter(2*time.Second, 5*time.Second)); err != nil {
			return err
		}
		if time.Since(interim) > 20*time.Second {
			interim = time.Now()
			if err := n.interims(ctx); err != nil {
				return err
			}
		}
		cu := n.Customers[1+n.rnd.IntN(len(n.Customers)-1)]
		var err error
		switch r := n.rnd.IntN(10); {
		case !n.online(cu):
			err = n.start(ctx, cu) // back online
		case r < 4: // unplugged and plugged back: silent line, then a new session
			if err = n.stop(ctx, cu, rfc2866.AcctTerminateCause_Value_LostCarrier); err == nil {
				if err = n.pause(ctx, n.jitter(5*time.Second, 15*time.Second)); err == nil {
					err = n.start(ctx, cu)
				}
			}
		case r < 6: // a flapping radio link
			for range 3 {
				if err = n.stop(ctx, cu, rfc2866.AcctTerminateCause_Value_LostCarrier); err != nil {
					break
				}
				if err = n.pause(ctx, time.Second); err != nil {
					break
				}
				if err = n.start(ctx, cu); err != nil {
					break
				}
				if err = n.pause(ctx, 2*time.Second); err != nil {
					break
				}
			}
		case r < 8: // the customer hung up from the router's own page
			err = n.stop(ctx, cu, rfc2866.AcctTerminateCause_Value_UserRequest)
		default: // the session timed out and the router dialled again at once
			if err = n.stop(ctx, cu, rfc2866.AcctTerminateCause_Value_SessionTimeout); err == nil {
				err = n.start(ctx, cu)
			}
		}
		if err != nil {
			return err
		}
	}
}

func (n *NAS) interims(ctx context.Context) error {
	for _, cu := range n.Customers {
		n.mu.Lock()
		online := cu.session != ""
		cu.in += uint64(n.rnd.IntN(50 << 20))
		cu.out += uint64(n.rnd.IntN(5 << 20))
		a := n.acct(cu, rfc2866.AcctStatusType_Value_InterimUpdate)
		n.mu.Unlock()
		if !online {
			continue
		}
		if err := n.send(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

func (n *NAS) acct(cu *Customer, status rfc2866.AcctStatusType) radiustest.Acct {
	return radiustest.Acct{
		Status: status, User: cu.Login, SessionID: cu.session, MAC: cu.MAC, IP: cu.IP,
		NASPortID: cu.Port, Service: "pppoe-" + n.Name,
		InputOctets: cu.in, OutputOctets: cu.out,
		SessionTime: uint32(time.Since(cu.started).Seconds()),
	}
}

func (n *NAS) start(ctx context.Context, cu *Customer) error {
	n.mu.Lock()
	n.serial++
	cu.session = fmt.Sprintf("%08x", uint32(time.Now().Unix())<<8|n.serial&0xff)
	cu.started, cu.in, cu.out = time.Now(), 0, 0
	a := n.acct(cu, rfc2866.AcctStatusType_Value_Start)
	n.mu.Unlock()
	return n.send(ctx, a)
}

func (n *NAS) online(cu *Customer) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return cu.session != ""
}

func (n *NAS) stop(ctx context.Context, cu *Customer, cause rfc2866.AcctTerminateCause) error {
	n.mu.Lock()
	a := n.acct(cu, rfc2866.AcctStatusType_Value_Stop)
	a.TerminateCause = cause
	cu.session = ""
	n.mu.Unlock()
	return n.send(ctx, a)
}

// send delivers one request; an unanswered one is logged and skipped, as a
// NAS would eventually give up, so the demo goes on while authwatch is busy.
func (n *NAS) send(ctx context.Context, a radiustest.Acct) error {
	a.NASIP = n.NASIP
	p, err := a.Packet(n.Secret)
	if err != nil {
		return fmt.Errorf("demo nas %s: %w", n.Name, err)
	}
	if _, err := n.client.Exchange(ctx, p); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n.Log.Warn("demo nas: request not answered", "nas", n.Name, "login", a.User, "err", err)
	}
	return nil
}
