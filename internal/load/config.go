package load

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Defaults for Config.
const (
	DefaultNAS         = 4
	DefaultCustomers   = 1000
	DefaultLoginPrefix = "load-"
	DefaultConcurrency = 64
	DefaultDuration    = 10 * time.Second
	DefaultRetry       = time.Second
	DefaultTries       = 3
	DefaultWSGrace     = 3 * time.Second
)

// Config describes one load run. Zero values pick the defaults above.
type Config struct {
	// Server is the accounting server, host:port. Only loopback makes
	// sense for benchmarks; the tool sends wherever it is told.
	Server string
	Secret []byte
	// NAS is the number of simulated NAS, each one UDP socket with its own
	// 256 Identifiers; customer i belongs to NAS i mod NAS.
	NAS int
	// Sources, when set, are the source addresses the NAS bind to (NAS i
	// uses Sources[i mod len]), e.g. 127.0.0.2…127.0.0.9 so that the server
	// sees several clients. Empty lets the kernel choose.
	Sources []netip.Addr
	// Customers is the number of distinct logins, named LoginPrefix
	// followed by a six-digit number from 000001.
	Customers   int
	LoginPrefix string
	// Mix weighs the kinds of request.
	Mix Mix

	// Rate > 0 runs open loop: requests are issued at Rate per second
	// whatever the answers, at most MaxInFlight at a time (default: the
	// Identifiers of all NAS, 256 each). Rate 0 runs closed loop:
	// Concurrency workers each send a request, wait for its fate, repeat.
	Rate        float64
	Concurrency int
	MaxInFlight int
	// The run issues requests for Duration, or until Requests have been
	// issued, whichever comes first (Duration 0 with Requests set means no
	// time limit), then waits for the requests in flight.
	Duration time.Duration
	Requests int64

	// Retry is how long a NAS waits for an answer before retransmitting
	// the same datagram; Tries is how many datagrams it sends in all
	// before counting the request lost.
	Retry time.Duration
	Tries int

	// Seed makes the run's choices (customers, kinds, counters)
	// repeatable; 0 picks one from the clock. Session ids start at a
	// number drawn from it, so runs against one server do not collide.
	Seed uint64

	// WS, when WS.URL is set, opens websocket subscribers and measures
	// event-to-websocket latency.
	WS WSConfig

	// Progress, when > 0, writes a line to ProgressTo at that interval.
	Progress   time.Duration
	ProgressTo io.Writer
}

// WSConfig configures the websocket subscribers.
type WSConfig struct {
	// URL is authwatch's HTTP address, e.g. http://127.0.0.1:8080; the
	// subscribers open URL/ws?login=…
	URL string
	// Logins subscribers follow one customer each: the first Logins
	// customers, one subscriber apiece (an agent watching a customer).
	Logins int
	// Firehose subscribers follow login=* (a supervisor's wall).
	Firehose int
	// Token, when set, is sent as "Authorization: Bearer" on the
	// handshake, for an authwatch that requires logging in.
	Token string
	// Grace is how long to wait, once the last request is answered, for
	// the events still on their way (default 3 s). Events not seen by then
	// are reported missing.
	Grace time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if c.Server == "" {
		return c, errors.New("load: no server address")
	}
	if len(c.Secret) == 0 {
		return c, errors.New("load: no secret")
	}
	if c.NAS <= 0 {
		c.NAS = DefaultNAS
	}
	if c.Customers <= 0 {
		c.Customers = DefaultCustomers
	}
	if c.LoginPrefix == "" {
		c.LoginPrefix = DefaultLoginPrefix
	}
	if c.Mix.total() == 0 {
		c.Mix = DefaultMix
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 256 * c.NAS
	}
	if c.Duration <= 0 && c.Requests <= 0 {
		c.Duration = DefaultDuration
	}
	if c.Retry <= 0 {
		c.Retry = DefaultRetry
	}
	if c.Tries <= 0 {
		c.Tries = DefaultTries
	}
	if c.WS.Grace <= 0 {
		c.WS.Grace = DefaultWSGrace
	}
	switch {
	case c.Rate < 0:
		return c, fmt.Errorf("load: rate %v: must be ≥ 0", c.Rate)
	case c.Mix.Start < 0 || c.Mix.Interim < 0 || c.Mix.Stop < 0:
		return c, fmt.Errorf("load: mix %s: weights must be ≥ 0", c.Mix)
	case c.WS.Logins < 0 || c.WS.Firehose < 0:
		return c, errors.New("load: websocket subscribers must be ≥ 0")
	case c.WS.Logins > c.Customers:
		return c, fmt.Errorf("load: %d websocket logins but only %d customers", c.WS.Logins, c.Customers)
	case c.WS.URL == "" && c.WS.Logins+c.WS.Firehose > 0:
		return c, errors.New("load: websocket subscribers need the server's HTTP URL")
	case c.Customers > 999999:
		return c, fmt.Errorf("load: %d customers: at most 999999", c.Customers)
	}
	return c, nil
}

// Mix weighs the kinds of Accounting-Request. A kind drawn for a customer
// in the wrong state (an Interim-Update when every customer is offline, a
// Start when all are online) falls back to the one that fits, so the actual
// mix is reported with the results.
type Mix struct {
	Start, Interim, Stop float64
}

// DefaultMix is what a provider sees at steady state with interims every
// few minutes and sessions of hours: mostly Interim-Updates.
var DefaultMix = Mix{Start: 1, Interim: 8, Stop: 1}

func (m Mix) total() float64 { return m.Start + m.Interim + m.Stop }

func (m Mix) String() string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	return "start=" + f(m.Start) + ",interim=" + f(m.Interim) + ",stop=" + f(m.Stop)
}

// ParseMix reads "start=1,interim=8,stop=1"; kinds left out weigh 0.
func ParseMix(s string) (Mix, error) {
	var m Mix
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return Mix{}, fmt.Errorf("mix %q: %q is not kind=weight", s, part)
		}
		w, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || w < 0 {
			return Mix{}, fmt.Errorf("mix %q: weight of %s must be a number ≥ 0", s, k)
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "start":
			m.Start = w
		case "interim", "interim-update", "update":
			m.Interim = w
		case "stop":
			m.Stop = w
		default:
			return Mix{}, fmt.Errorf("mix %q: unknown kind %q (start, interim, stop)", s, k)
		}
	}
	if m.total() == 0 {
		return Mix{}, fmt.Errorf("mix %q: every weight is 0", s)
	}
	return m, nil
}

// ParseSources reads a comma-separated list of source addresses and CIDR
// blocks ("127.0.0.2,127.0.0.3" or "127.0.1.0/29", whose usable hosts are
// taken in order).
func ParseSources(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			a, err := netip.ParseAddr(part)
			if err != nil {
				return nil, fmt.Errorf("source %q: %w", part, err)
			}
			out = append(out, a)
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", part, err)
		}
		p = p.Masked()
		if p.Addr().BitLen()-p.Bits() > 16 {
			return nil, fmt.Errorf("source %q: more than 65536 addresses", part)
		}
		a := p.Addr()
		if p.Bits() < p.Addr().BitLen()-1 {
			a = a.Next() // skip the network address of a real block
		}
		for ; p.Contains(a); a = a.Next() {
			if n := a.Next(); p.Addr().Is4() && p.Bits() < 31 && !p.Contains(n) {
				break // nor its broadcast address
			}
			out = append(out, a)
		}
	}
	return out, nil
}
