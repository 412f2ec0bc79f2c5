// Package config reads and validates authwatch's TOML configuration. Every key
// is documented in authwatch.example.toml at the repository root; unknown keys
// and invalid values are refused with the key's name, before anything starts.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/jackc/pgx/v5/pgconn"

	"authwatch/radius"
	"authwatch/watcher/frlog"
	"authwatch/watcher/frsql"
	"authwatch/watcher/routeros"
)

// Config is the whole configuration file.
type Config struct {
	HTTP   HTTP   `toml:"http"`
	Store  Store  `toml:"store"`
	RADIUS RADIUS `toml:"radius"`
	NAS    []NAS  `toml:"nas"`
	// RouterOS lists MikroTik routers followed over their API.
	RouterOS []RouterOS `toml:"routeros"`
	// Proxy is proxy mode: authwatch in front of the existing RADIUS server.
	Proxy radius.ProxyConfig `toml:"proxy"`
	// FreeRADIUSLog lists FreeRADIUS radius.log files followed for their
	// Login OK / Login incorrect lines.
	FreeRADIUSLog []frlog.Config `toml:"freeradius_log"`
	// SQLSources lists FreeRADIUS databases (radpostauth, radacct) followed.
	SQLSources []frsql.Config `toml:"sql_source"`
	Watch      Watch          `toml:"watch"`
	Blocked    Blocked        `toml:"blocked"`
	Probe      Probe          `toml:"probe"`
	Outage     Outage         `toml:"outage"`
	Log        Log            `toml:"log"`
	Auth       Auth           `toml:"auth"`
	Actions    Actions        `toml:"actions"`
}

// Actions are what authwatch may do to customers' sessions, beyond watching
// them.
type Actions struct {
	// AgentsMayDisconnect lets agents, not only admins, end a customer's
	// session at the NAS ("End session").
	AgentsMayDisconnect bool `toml:"agents_may_disconnect"`
}

// RouterOS is one MikroTik router followed over its API (see
// watcher/routeros for what each key does).
type RouterOS struct {
	Name         string   `toml:"name"`
	Address      string   `toml:"address"`
	User         string   `toml:"user"`
	Password     Secret   `toml:"password"`
	PasswordFile string   `toml:"password_file"`
	TLS          bool     `toml:"tls"`
	CAFile       string   `toml:"ca_file"`
	Fingerprint  string   `toml:"fingerprint"`
	ServerName   string   `toml:"server_name"`
	PollInterval Duration `toml:"poll_interval"`
	DialTimeout  Duration `toml:"dial_timeout"`
	Sessions     *bool    `toml:"sessions"`
	Log          *bool    `toml:"log"`
}

// Source returns the router's settings for the RouterOS source.
func (r RouterOS) Source() routeros.Config {
	return routeros.Config{
		Name: r.Name, Address: r.Address, User: r.User, Password: r.Password.Reveal(), PasswordFile: r.PasswordFile,
		TLS: r.TLS, CAFile: r.CAFile, Fingerprint: r.Fingerprint, ServerName: r.ServerName,
		PollInterval: r.PollInterval.D(), DialTimeout: r.DialTimeout.D(), Sessions: r.Sessions, Log: r.Log,
	}
}

// Blocked says what, in an Access-Accept, means the customer is blocked or
// on a reduced plan for non-payment.
type Blocked struct {
	AddressLists      []string `toml:"address_lists"`       // Mikrotik-Address-List values
	Pools             []string `toml:"pools"`               // Framed-Pool values
	ReducedRateLimits []string `toml:"reduced_rate_limits"` // Mikrotik-Rate-Limit values
}

// Watch is the reboot watch.
type Watch struct {
	// Timeout is how long a watch waits for the customer to come back when
	// the agent asks for no other time.
	Timeout Duration `toml:"timeout"`
}

// Probe is the HTTP probe of the customer's equipment.
type Probe struct {
	Enabled bool     `toml:"enabled"`
	Ports   []int    `toml:"ports"`
	Timeout Duration `toml:"timeout"`
	// Allow lists the CIDRs that may be probed; empty means every unicast
	// address except loopback and link-local.
	Allow []string `toml:"allow"`
	// Source is the local address probes leave from ("" for the system's choice).
	Source string `toml:"source"`

	allow  []netip.Prefix
	source netip.Addr
}

// AllowPrefixes returns Allow parsed.
func (p Probe) AllowPrefixes() []netip.Prefix { return p.allow }

// SourceAddr returns Source parsed (invalid when unset).
func (p Probe) SourceAddr() netip.Addr { return p.source }

// Outage is the mass-outage hint.
type Outage struct {
	// Sessions stopping on one NAS within Window raise an outage notice.
	Sessions int      `toml:"sessions"`
	Window   Duration `toml:"window"`
}

// HTTP is the web page and API.
type HTTP struct {
	Listen string `toml:"listen"`
	// Auth requires agents to log in (default). false is desk mode: no
	// accounts, every request acts as a local admin; accepted only when
	// Listen is a loopback address.
	Auth bool `toml:"auth"`
	// TLSCert and TLSKey are PEM files; with both set the page is served
	// over HTTPS.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// PublicURLs are the addresses agents open the page at, when it is not
	// the listen address (a reverse proxy, a name): the browser origins
	// allowed to use the API and the websocket.
	PublicURLs []string `toml:"public_urls"`
	// MetricsLogin makes GET /metrics need an account, as an API token
	// (Prometheus: authorization credentials); by default it is public.
	MetricsLogin bool `toml:"metrics_login"`
}

// TLS reports whether the page is served over HTTPS.
func (h HTTP) TLS() bool { return h.TLSCert != "" }

// Auth is the accounts' sessions, the login rate limit and the trusted
// reverse proxy.
type Auth struct {
	// SessionIdle ends a web session unused for that long; SessionMax ends
	// any session that old.
	SessionIdle Duration `toml:"session_idle"`
	SessionMax  Duration `toml:"session_max"`
	// ProxyHeader names the account of requests coming from
	// TrustedProxies (an SSO in front); "" disables it.
	ProxyHeader string `toml:"proxy_header"`
	// TrustedProxies are the reverse proxies (IPs or CIDRs) believed about
	// ProxyHeader, X-Forwarded-For and X-Forwarded-Proto.
	TrustedProxies []string `toml:"trusted_proxies"`
	// Failed logins allowed per user name and per client address within
	// LoginWindow, before logins are refused until the window ends.
	LoginFailuresPerUser    int      `toml:"login_failures_per_user"`
	LoginFailuresPerAddress int      `toml:"login_failures_per_address"`
	LoginWindow             Duration `toml:"login_window"`
	// AuditRetention is how long the audit log keeps who looked at which
	// customer; 0 keeps it forever.
	AuditRetention Duration `toml:"audit_retention"`

	proxies []netip.Prefix
}

// TrustedPrefixes returns TrustedProxies parsed.
func (a Auth) TrustedPrefixes() []netip.Prefix { return a.proxies }

// Store is where events are kept.
type Store struct {
	Driver string `toml:"driver"` // "sqlite" (default) or "postgres"
	Path   string `toml:"path"`   // sqlite file
	DSN    Secret `toml:"dsn"`    // postgres
	// Synchronous is SQLite's synchronous pragma: "full" (default) survives a
	// power cut, "normal" only a process crash.
	Synchronous string `toml:"synchronous"`
	// Retention is how long events are kept; 0 keeps them forever.
	Retention Duration `toml:"retention"`
	// CheckpointInterval is how often the customers' state is saved, so that
	// a restart replays only the events after it.
	CheckpointInterval Duration `toml:"checkpoint_interval"`
}

// RADIUS is the accounting listener.
type RADIUS struct {
	Listen string `toml:"listen"`
	// DuplicateWindow is how long an answered request is remembered, to
	// answer its retransmissions from cache (RFC 5080).
	DuplicateWindow Duration `toml:"duplicate_window"`
	// Workers is the number of goroutines reading and parsing packets
	// (default: the number of CPUs).
	Workers int `toml:"workers"`
}

// NAS is one RADIUS client: a concentrator allowed to send accounting.
type NAS struct {
	Name       string `toml:"name"`
	Address    string `toml:"address"` // an IP or a CIDR
	Secret     Secret `toml:"secret"`
	SecretFile string `toml:"secret_file"`
	// RequireMessageAuthenticator refuses Access-Requests without a valid
	// Message-Authenticator in proxy mode (BlastRADIUS); nil means true.
	RequireMessageAuthenticator *bool `toml:"require_message_authenticator"`
	// CoAPort is the NAS's dynamic-authorization port (RFC 5176), where
	// "End session" sends its Disconnect-Request; default 3799.
	CoAPort int `toml:"coa_port"`
	// CoASecret is the secret of Disconnect-Requests, when it is not Secret.
	CoASecret Secret `toml:"coa_secret"`

	prefix netip.Prefix
}

// Prefix is the parsed Address (a single IP is a /32 or /128).
func (n NAS) Prefix() netip.Prefix { return n.prefix }

// DisconnectSecret is the secret of Disconnect-Requests: CoASecret, or
// Secret when that is not set.
func (n NAS) DisconnectSecret() Secret {
	if n.CoASecret != "" {
		return n.CoASecret
	}
	return n.Secret
}

// Log is the daemon's own logging.
type Log struct {
	Level  string `toml:"level"`  // debug, info (default), warn, error
	Format string `toml:"format"` // text (default) or json
}

// SlogLevel returns Level as a slog.Level.
func (l Log) SlogLevel() slog.Level {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(l.Level)) // validated at load
	return lv
}

// Secret is a string that never prints: logs and error messages show it as
// [redacted].
type Secret string

func (Secret) String() string               { return "[redacted]" }
func (Secret) GoString() string             { return "[redacted]" }
func (Secret) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (s Secret) Reveal() string             { return string(s) }
func (Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// UnmarshalText lets TOML decode a Secret from a string.
func (s *Secret) UnmarshalText(b []byte) error { *s = Secret(b); return nil }

// Duration is a time.Duration written as "10s", "720h".
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration (like \"10s\" or \"720h\"): %q", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration back in Go syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Defaults returns a Config with every default filled in and no NAS.
func Defaults() Config {
	return Config{
		HTTP:   HTTP{Listen: "127.0.0.1:8080", Auth: true},
		Store:  Store{Driver: "sqlite", Path: "/var/lib/authwatch/authwatch.db", Synchronous: "full", Retention: Duration(90 * 24 * time.Hour), CheckpointInterval: Duration(5 * time.Minute)},
		RADIUS: RADIUS{Listen: "0.0.0.0:1813", DuplicateWindow: Duration(30 * time.Second)},
		Proxy:  radius.DefaultProxyConfig(),
		Watch:  Watch{Timeout: Duration(5 * time.Minute)},
		Probe:  Probe{Enabled: true, Ports: []int{80, 8080}, Timeout: Duration(3 * time.Second)},
		Outage: Outage{Sessions: 20, Window: Duration(time.Minute)},
		Log:    Log{Level: "info", Format: "text"},
		Auth: Auth{SessionIdle: Duration(2 * time.Hour), SessionMax: Duration(12 * time.Hour),
			LoginFailuresPerUser: 5, LoginFailuresPerAddress: 20, LoginWindow: Duration(15 * time.Minute),
			AuditRetention: Duration(365 * 24 * time.Hour)},
	}
}

// Load reads, defaults and validates the file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes, defaults and validates a configuration text.
func Parse(text string) (*Config, error) {
	cfg := Defaults()
	md, err := toml.Decode(text, &cfg)
	if err != nil {
		return nil, err
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("unknown key %s", strings.Join(keys, ", "))
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Validate checks every value and resolves secret files and NAS addresses.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	if err := checkHostPort(c.HTTP.Listen); err != nil {
		bad("http.listen", "%v", err)
	} else if !c.HTTP.Auth && !IsLoopback(c.HTTP.Listen) {
		// Desk mode: no accounts, so nobody but this machine's user may connect.
		errs = append(errs, fmt.Errorf("http.auth = false is only allowed when http.listen is a loopback address (127.0.0.1, ::1, localhost), not %q", c.HTTP.Listen))
	}
	c.validateHTTPS(bad)
	c.validateAuth(bad)
	switch c.Store.Driver {
	case "sqlite":
		if c.Store.Path == "" {
			bad("store.path", "required with driver = \"sqlite\"")
		}
	case "postgres":
		if c.Store.DSN == "" {
			bad("store.dsn", "required with driver = \"postgres\"")
		} else if _, err := pgconn.ParseConfig(c.Store.DSN.Reveal()); err != nil {
			// Not err itself: it quotes the DSN, password and all at times.
			bad("store.dsn", "not a PostgreSQL connection string (a postgres:// URL or key=value pairs)")
		}
	default:
		bad("store.driver", "must be \"sqlite\" or \"postgres\", not %q", c.Store.Driver)
	}
	switch c.Store.Synchronous {
	case "full", "normal":
	default:
		bad("store.synchronous", "must be \"full\" or \"normal\", not %q", c.Store.Synchronous)
	}
	if c.Store.Retention < 0 {
		bad("store.retention", "must not be negative")
	}
	if c.Store.CheckpointInterval.D() < time.Second {
		bad("store.checkpoint_interval", "must be at least 1s")
	}
	if err := checkHostPort(c.RADIUS.Listen); err != nil {
		bad("radius.listen", "%v", err)
	}
	if c.RADIUS.DuplicateWindow.D() < time.Second || c.RADIUS.DuplicateWindow.D() > 10*time.Minute {
		bad("radius.duplicate_window", "must be between 1s and 10m")
	}
	if c.RADIUS.Workers < 0 || c.RADIUS.Workers > 256 {
		bad("radius.workers", "must be between 0 (one per CPU) and 256")
	}
	names := map[string]bool{}
	for i := range c.NAS {
		n := &c.NAS[i]
		key := fmt.Sprintf("nas[%d]", i)
		if n.Name == "" {
			bad(key+".name", "required")
		} else if names[n.Name] {
			bad(key+".name", "%q is used twice", n.Name)
		}
		names[n.Name] = true
		p, err := ParsePrefix(n.Address)
		if err != nil {
			bad(key+".address", "%v", err)
		}
		n.prefix = p
		if err := resolveSecret(&n.Secret, n.SecretFile); err != nil {
			bad(key+".secret_file", "%v", err)
		} else if n.Secret == "" {
			bad(key+".secret", "required (or secret_file)")
		}
		if n.CoAPort == 0 {
			n.CoAPort = radius.DefaultCoAPort
		} else if n.CoAPort < 1 || n.CoAPort > 65535 {
			bad(key+".coa_port", "%d is not a UDP port", n.CoAPort)
		}
	}
	routers := map[string]bool{}
	for i, r := range c.RouterOS {
		if err := r.Source().Validate(); err != nil {
			bad(fmt.Sprintf("routeros[%d]", i), "%v", err)
		}
		if routers[r.Name] {
			bad(fmt.Sprintf("routeros[%d].name", i), "%q is used twice", r.Name)
		}
		routers[r.Name] = true
	}
	if err := c.Proxy.Validate(); err != nil {
		errs = append(errs, err) // its messages name the proxy.* keys
	}
	logs := map[string]bool{}
	for i, l := range c.FreeRADIUSLog {
		if err := l.Validate(); err != nil {
			bad(fmt.Sprintf("freeradius_log[%d]", i), "%v", err)
		}
		if logs[l.Name] {
			bad(fmt.Sprintf("freeradius_log[%d].name", i), "%q is used twice", l.Name)
		}
		logs[l.Name] = true
	}
	sqls := map[string]bool{}
	for i, q := range c.SQLSources {
		if err := q.Validate(); err != nil {
			bad(fmt.Sprintf("sql_source[%d]", i), "%v", err)
		}
		if sqls[q.Name] {
			bad(fmt.Sprintf("sql_source[%d].name", i), "%q is used twice", q.Name)
		}
		sqls[q.Name] = true
	}
	if d := c.Watch.Timeout.D(); d < 10*time.Second || d > 2*time.Hour {
		bad("watch.timeout", "must be between 10s and 2h")
	}
	if len(c.Probe.Ports) == 0 {
		bad("probe.ports", "at least one port")
	}
	for i, port := range c.Probe.Ports {
		if port < 1 || port > 65535 {
			bad(fmt.Sprintf("probe.ports[%d]", i), "%d is not a TCP port", port)
		}
	}
	if d := c.Probe.Timeout.D(); d < 100*time.Millisecond || d > time.Minute {
		bad("probe.timeout", "must be between 100ms and 1m")
	}
	c.Probe.allow = nil
	for i, a := range c.Probe.Allow {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			bad(fmt.Sprintf("probe.allow[%d]", i), "not a CIDR: %q", a)
			continue
		}
		c.Probe.allow = append(c.Probe.allow, p.Masked())
	}
	c.Probe.source = netip.Addr{}
	if c.Probe.Source != "" {
		a, err := netip.ParseAddr(c.Probe.Source)
		if err != nil {
			bad("probe.source", "not an IP address: %q", c.Probe.Source)
		}
		c.Probe.source = a
	}
	if c.Outage.Sessions < 2 {
		bad("outage.sessions", "must be at least 2")
	}
	if c.Outage.Window.D() < time.Second {
		bad("outage.window", "must be at least 1s")
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(c.Log.Level)); err != nil {
		bad("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "must be \"text\" or \"json\", not %q", c.Log.Format)
	}
	return errors.Join(errs...)
}

// ParsePrefix accepts an IP ("10.0.0.1") or a CIDR ("10.0.0.0/24").
func ParsePrefix(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, errors.New("required (an IP or a CIDR)")
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not a CIDR: %q", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not an IP address: %q", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func resolveSecret(s *Secret, file string) error {
	if file == "" {
		return nil
	}
	if *s != "" {
		return errors.New("set secret or secret_file, not both")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	*s = Secret(strings.TrimRight(string(b), "\r\n"))
	return nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("not host:port: %q", s)
	}
	if port == "" {
		return fmt.Errorf("no port in %q", s)
	}
	_ = host // an empty host listens on every address
	return nil
}
