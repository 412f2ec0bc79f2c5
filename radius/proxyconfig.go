package radius

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"
)

// Defaults of ProxyConfig (see DefaultProxyConfig).
const (
	DefaultProxyTimeout   = 2 * time.Second
	DefaultProxyRetries   = 1
	DefaultProxyDeadAfter = 3
	DefaultProxyDeadTime  = 30 * time.Second
	// DefaultProxyStatusInterval is how often a dead upstream is sent a
	// Status-Server.
	DefaultProxyStatusInterval = 5 * time.Second
)

// ProxyConfig is the [proxy] section of the configuration file:
//
//	[proxy]
//	listen = "0.0.0.0:1812"        # Access-Request from the [[nas]] clients
//	forward_accounting = true      # relay what [radius] receives, after storing it
//	timeout = "2s"                 # per try
//	retries = 1                    # retransmissions per upstream
//	dead_after = 3                 # requests in a row without answer
//	dead_time = "30s"              # how long a dead upstream is skipped
//	status_server = true           # probe dead upstreams with Status-Server (RFC 5997)
//	status_interval = "5s"
//
//	[[proxy.upstream]]             # first is primary, the next ones are failover
//	name = "freeradius-1"          # optional, defaults to address
//	address = "10.0.0.5:1812"
//	acct_address = "10.0.0.5:1813" # required with forward_accounting
//	secret = "upstream-secret"     # or secret_file
//	require_message_authenticator = false
//
// The zero value is proxy mode off. Embed it as it is in the application's
// configuration and call Validate; start from DefaultProxyConfig so that keys
// left out keep their defaults.
type ProxyConfig struct {
	// Listen is the UDP address Access-Requests are received on. Empty:
	// no authentication proxy (accounting may still be forwarded).
	Listen string `toml:"listen"`
	// ForwardAccounting relays every Accounting-Request the accounting
	// listener ([radius]) stores to the upstreams' acct_address; the NAS
	// is answered once the record is stored and the upstream answered.
	ForwardAccounting bool `toml:"forward_accounting"`
	// Timeout is how long to wait for an upstream's answer to one try
	// (default 2s; 0 picks it).
	Timeout time.Duration `toml:"timeout"`
	// Retries is how many times a request is sent again to the same
	// upstream, same bytes, before failing over to the next one (default 1;
	// 0 means one try per upstream). The worst case before the NAS is
	// answered by the last upstream is Timeout × (Retries+1) × upstreams.
	Retries int `toml:"retries"`
	// DeadAfter is how many requests in a row an upstream must leave
	// unanswered to be marked dead and skipped (default 3; 0 picks it).
	DeadAfter int `toml:"dead_after"`
	// DeadTime is how long a dead upstream is skipped before it is tried
	// again (default 30s; 0 picks it). When every upstream is dead they are
	// all tried anyway, in order, so that a recovery is seen at once.
	DeadTime time.Duration `toml:"dead_time"`
	// StatusServer sends a dead upstream an RFC 5997 Status-Server every
	// StatusInterval (default 5s; 0 picks it), and revives it as soon as it
	// answers, instead of waiting for DeadTime to pass and testing it with
	// a customer's request. Once an upstream has answered one, only an
	// answer to a probe revives it (customers' requests go to it again
	// before that only when every upstream is dead); one that never
	// answered them (Status-Server turned off on the server) is tried
	// again after DeadTime as without probes. FreeRADIUS answers them with
	// status_server = yes (its default).
	StatusServer   bool          `toml:"status_server"`
	StatusInterval time.Duration `toml:"status_interval"`
	// Upstreams are the RADIUS servers, primary first.
	Upstreams []Upstream `toml:"upstream"`
}

// Upstream is one RADIUS server the proxy forwards to.
type Upstream struct {
	// Name is how events, logs and metrics call it (default: Address).
	Name string `toml:"name"`
	// Address is its authentication port, host:port. Required with
	// ProxyConfig.Listen.
	Address string `toml:"address"`
	// AcctAddress is its accounting port, host:port. Required with
	// ProxyConfig.ForwardAccounting.
	AcctAddress string `toml:"acct_address"`
	Secret      Secret `toml:"secret"`
	// SecretFile is read by Validate into Secret (trailing newline
	// removed), so that the secret need not sit in the configuration.
	SecretFile string `toml:"secret_file"`
	// RequireMessageAuthenticator refuses the server's replies that carry
	// no Message-Authenticator (BlastRADIUS hardening of the proxy→server
	// hop). Off by default: FreeRADIUS before 3.2.5 does not send one.
	// A Message-Authenticator that is present is always verified.
	RequireMessageAuthenticator bool `toml:"require_message_authenticator"`
}

// Secret is a shared secret that never prints: logs, errors and JSON show it
// as [redacted].
type Secret string

func (Secret) String() string               { return "[redacted]" }
func (Secret) GoString() string             { return "[redacted]" }
func (Secret) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// UnmarshalText lets TOML decode a Secret from a string.
func (s *Secret) UnmarshalText(b []byte) error { *s = Secret(b); return nil }

// Reveal returns the secret itself, for the wire.
func (s Secret) Reveal() string { return string(s) }

// DefaultProxyConfig returns the defaults, proxy mode off.
func DefaultProxyConfig() ProxyConfig {
	return ProxyConfig{
		Timeout:   DefaultProxyTimeout,
		Retries:   DefaultProxyRetries,
		DeadAfter: DefaultProxyDeadAfter,
		DeadTime:  DefaultProxyDeadTime,

		StatusServer:   true,
		StatusInterval: DefaultProxyStatusInterval,
	}
}

// Enabled reports whether proxy mode is configured: there are upstreams.
func (c *ProxyConfig) Enabled() bool { return len(c.Upstreams) > 0 }

// Validate checks every value, naming the key of each problem
// ("proxy.upstream[1].secret: required"), fills zero durations and counts
// with their defaults and reads secret files. A zero ProxyConfig (proxy
// mode off) is valid.
func (c *ProxyConfig) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("proxy.%s: "+format, append([]any{key}, args...)...))
	}
	if !c.Enabled() {
		if c.Listen != "" || c.ForwardAccounting {
			bad("upstream", "at least one [[proxy.upstream]] is required with proxy.listen or proxy.forward_accounting")
		}
		return errors.Join(errs...)
	}
	if c.Listen == "" && !c.ForwardAccounting {
		bad("listen", "required (or forward_accounting = true), or the upstreams serve nothing")
	} else if c.Listen != "" {
		if err := checkHostPort(c.Listen, true); err != nil {
			bad("listen", "%v", err)
		}
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultProxyTimeout
	}
	if c.Timeout < 100*time.Millisecond || c.Timeout > 30*time.Second {
		bad("timeout", "must be between 100ms and 30s, not %s", c.Timeout)
	}
	if c.Retries < 0 || c.Retries > 5 {
		bad("retries", "must be between 0 and 5, not %d", c.Retries)
	}
	if c.DeadAfter == 0 {
		c.DeadAfter = DefaultProxyDeadAfter
	}
	if c.DeadAfter < 1 || c.DeadAfter > 1000 {
		bad("dead_after", "must be between 1 and 1000, not %d", c.DeadAfter)
	}
	if c.DeadTime == 0 {
		c.DeadTime = DefaultProxyDeadTime
	}
	if c.DeadTime < time.Second || c.DeadTime > time.Hour {
		bad("dead_time", "must be between 1s and 1h, not %s", c.DeadTime)
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = DefaultProxyStatusInterval
	}
	if c.StatusInterval < 10*time.Millisecond || c.StatusInterval > time.Hour {
		bad("status_interval", "must be between 10ms and 1h, not %s", c.StatusInterval)
	}
	names := map[string]bool{}
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		key := fmt.Sprintf("upstream[%d]", i)
		if c.Listen != "" || u.Address != "" {
			if err := checkHostPort(u.Address, false); err != nil {
				bad(key+".address", "%v", err)
			}
		}
		if c.ForwardAccounting || u.AcctAddress != "" {
			if err := checkHostPort(u.AcctAddress, false); err != nil {
				if u.AcctAddress == "" {
					err = errors.New("required with proxy.forward_accounting = true")
				}
				bad(key+".acct_address", "%v", err)
			}
		}
		if u.Name == "" {
			u.Name = u.Address
			if u.Name == "" {
				u.Name = u.AcctAddress
			}
		}
		if names[u.Name] {
			bad(key+".name", "%q is used twice", u.Name)
		}
		names[u.Name] = true
		if u.SecretFile != "" {
			if u.Secret != "" {
				bad(key+".secret_file", "set secret or secret_file, not both")
			} else if b, err := os.ReadFile(u.SecretFile); err != nil {
				bad(key+".secret_file", "%v", err)
			} else {
				u.Secret = Secret(strings.TrimRight(string(b), "\r\n"))
			}
		}
		if u.Secret == "" {
			bad(key+".secret", "required (or secret_file)")
		}
	}
	return errors.Join(errs...)
}

// checkHostPort accepts host:port with a port; an empty host only for a
// listening address (every interface).
func checkHostPort(s string, listen bool) error {
	if s == "" {
		return errors.New("required (host:port)")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("not host:port: %q", s)
	}
	if port == "" {
		return fmt.Errorf("no port in %q", s)
	}
	if host == "" && !listen {
		return fmt.Errorf("no host in %q", s)
	}
	return nil
}
