// Package probe checks whether a customer's equipment (CPE) answers on its
// own web page, as support agents do by hand to confirm a router is alive
// ("acesso HTTP ao equipamento"). A probe is a plain GET of
// http://<session IP>:<port>/ that never follows a redirect to another host,
// never reads more than a capped body, and times out quickly; the result is
// an http.up or http.down event for the customer's timeline.
//
// Probes only go to allowed prefixes (by default every unicast address but
// loopback and link-local), and at most one per login per MinInterval, so a
// flapping customer cannot make authwatch flood anyone.
package probe

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"authwatch/watcher"
)

// Config says how and where to probe.
type Config struct {
	Ports   []int         // tried in order; default 80, 8080
	Timeout time.Duration // per port, connect to last byte; default 3 s
	// Allow lists the prefixes that may be probed; empty means every unicast
	// address except loopback, link-local and multicast.
	Allow []netip.Prefix
	// Source is the local address probes leave from (zero: the system's
	// choice), for a management VLAN or a firewall rule.
	Source netip.Addr
	// MaxBody caps what is read of a page (default 64 KiB): enough for a
	// <title>, and a CPE that streams forever costs nothing.
	MaxBody int64
	// MinInterval is the least time between two probes of one login
	// (default 2 s).
	MinInterval time.Duration
	// Concurrency caps probes in flight (default 32).
	Concurrency int
}

func (c *Config) defaults() {
	if len(c.Ports) == 0 {
		c.Ports = []int{80, 8080}
	}
	if c.Timeout <= 0 {
		c.Timeout = 3 * time.Second
	}
	if c.MaxBody <= 0 {
		c.MaxBody = 64 << 10
	}
	if c.MinInterval <= 0 {
		c.MinInterval = 2 * time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 32
	}
}

// Errors a Probe returns instead of probing.
var (
	ErrNotAllowed  = errors.New("address not allowed by [probe] allow")
	ErrRateLimited = errors.New("probed too recently")
)

// Prober runs probes. It is safe for concurrent use.
type Prober struct {
	cfg    Config
	client *http.Client
	sem    chan struct{}

	mu   sync.Mutex
	last map[string]time.Time // login → last probe start
}

// New returns a Prober for cfg.
func New(cfg Config) *Prober {
	cfg.defaults()
	d := &net.Dialer{Timeout: cfg.Timeout}
	if cfg.Source.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: cfg.Source.AsSlice()}
	}
	tr := &http.Transport{
		Proxy:                  nil, // a CPE on the provider's network is never reached through a proxy
		DialContext:            d.DialContext,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		ResponseHeaderTimeout:  cfg.Timeout,
		MaxResponseHeaderBytes: 16 << 10,
	}
	p := &Prober{cfg: cfg, sem: make(chan struct{}, cfg.Concurrency), last: map[string]time.Time{}}
	p.client = &http.Client{Transport: tr, CheckRedirect: sameHostOnly}
	return p
}

// sameHostOnly follows a redirect only to the same IP (a CPE often sends / to
// /login.html), never elsewhere: the probe is about this equipment.
func sameHostOnly(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return http.ErrUseLastResponse
	}
	if req.URL.Hostname() != via[0].URL.Hostname() || req.URL.Scheme != "http" {
		return http.ErrUseLastResponse
	}
	return nil
}

// Allowed reports whether ip may be probed.
func (p *Prober) Allowed(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() {
		return false
	}
	if len(p.cfg.Allow) == 0 {
		return !ip.IsLoopback() && !ip.IsLinkLocalUnicast()
	}
	for _, pre := range p.cfg.Allow {
		if pre.Contains(ip) {
			return true
		}
	}
	return false
}

// Probe checks the CPE of login at ip, trying each port in order, and returns
// the event to record: http.up for the first port that answers with any HTTP
// response, http.down with the reason otherwise. It refuses with
// ErrNotAllowed or ErrRateLimited without sending anything.
func (p *Prober) Probe(ctx context.Context, login string, ip netip.Addr) (watcher.Event, error) {
	return p.ProbeAddrs(ctx, login, []netip.Addr{ip})
}

// ProbeAddrs is Probe for equipment known by more than one address (a
// dual-stack session's IPv4 and IPv6 address): the allowed ones are tried
// in order, each on every port, as one probe under one rate-limit slot, and
// the first answer wins. The addresses not allowed are skipped; with none
// allowed it refuses with ErrNotAllowed.
func (p *Prober) ProbeAddrs(ctx context.Context, login string, ips []netip.Addr) (watcher.Event, error) {
	var allowed []netip.Addr
	for _, ip := range ips {
		if ip = ip.Unmap(); p.Allowed(ip) && !slices.Contains(allowed, ip) {
			allowed = append(allowed, ip)
		}
	}
	if len(allowed) == 0 {
		what := "no address"
		if len(ips) > 0 {
			what = ips[0].Unmap().String()
		}
		return watcher.Event{}, fmt.Errorf("probe %s: %w", what, ErrNotAllowed)
	}
	now := time.Now()
	p.mu.Lock()
	if t, ok := p.last[login]; ok && now.Sub(t) < p.cfg.MinInterval {
		p.mu.Unlock()
		return watcher.Event{}, fmt.Errorf("probe %s: %w", login, ErrRateLimited)
	}
	p.last[login] = now
	p.forgetOld(now)
	p.mu.Unlock()

	select {
	case p.sem <- struct{}{}:
		defer func() { <-p.sem }()
	case <-ctx.Done():
		return watcher.Event{}, ctx.Err()
	}

	ev := watcher.Event{At: now.UTC(), Login: login, Source: "probe", IP: allowed[0].String(), Kind: watcher.HTTPDown}
	var reasons []string
	for _, ip := range allowed {
		for _, port := range p.cfg.Ports {
			res := p.get(ctx, ip, port)
			ev.At = time.Now().UTC()
			if res.err == nil {
				ev.Kind, ev.IP = watcher.HTTPUp, ip.String()
				ev.Reason = res.status
				if res.title != "" {
					ev.Reason += " — " + res.title
				}
				ev.Detail = &watcher.Detail{HTTPStatus: res.code, HTTPTitle: res.title, LatencyMS: res.latencyMS, URL: res.url}
				return ev, nil
			}
			where := strconv.Itoa(port)
			if len(allowed) > 1 {
				where = net.JoinHostPort(ip.String(), where)
			}
			reasons = append(reasons, fmt.Sprintf("%s: %s", where, res.err))
			if ctx.Err() != nil {
				break
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	ev.Reason = strings.Join(reasons, "; ")
	ev.Detail = &watcher.Detail{URL: urlFor(allowed[0], p.cfg.Ports[0])}
	return ev, nil
}

// forgetOld drops rate-limit entries that no longer limit anything, so the
// map stays the size of the recently probed logins. p.mu must be held.
func (p *Prober) forgetOld(now time.Time) {
	if len(p.last) < 1024 {
		return
	}
	for login, t := range p.last {
		if now.Sub(t) >= p.cfg.MinInterval {
			delete(p.last, login)
		}
	}
}

type result struct {
	url       string
	code      int
	status    string
	title     string
	latencyMS float64
	err       error
}

func urlFor(ip netip.Addr, port int) string {
	return "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(port)) + "/"
}

func (p *Prober) get(ctx context.Context, ip netip.Addr, port int) result {
	r := result{url: urlFor(ip, port)}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		r.err = err
		return r
	}
	req.Header.Set("User-Agent", "authwatch-probe")
	start := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		r.err = plainError(err, p.cfg.Timeout)
		return r
	}
	defer resp.Body.Close()
	r.latencyMS = float64(time.Since(start).Microseconds()) / 1000
	r.code, r.status = resp.StatusCode, strings.TrimSpace(strconv.Itoa(resp.StatusCode)+" "+http.StatusText(resp.StatusCode))
	// The title is what tells the agent which equipment answered; a body cut
	// short by the cap or the timeout still counts as an answer.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, p.cfg.MaxBody))
	r.title = Title(body)
	return r
}

var titleRE = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// Title returns the page's <title>, unescaped, on one line, at most 120
// characters; "" when there is none.
func Title(body []byte) string {
	m := titleRE.FindSubmatch(body)
	if m == nil {
		return ""
	}
	t := strings.Join(strings.Fields(html.UnescapeString(string(m[1]))), " ")
	if r := []rune(t); len(r) > 120 {
		t = string(r[:120]) + "…"
	}
	return strings.ToValidUTF8(t, "")
}

// plainError says what went wrong in the words an agent understands.
func plainError(err error, timeout time.Duration) error {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("connection refused")
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return errors.New("no route to the equipment")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("timeout after %s", timeout)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("connection closed without an HTTP answer")
	case errors.Is(err, context.Canceled):
		return errors.New("cancelled")
	}
	var uerr interface{ Unwrap() error }
	if errors.As(err, &uerr) {
		if inner := uerr.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
