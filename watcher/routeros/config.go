package routeros

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults for the optional Config fields.
const (
	DefaultPollInterval = 10 * time.Second
	DefaultDialTimeout  = 10 * time.Second
	DefaultReconnectMin = time.Second
	DefaultReconnectMax = time.Minute

	defaultPort    = "8728" // api
	defaultTLSPort = "8729" // api-ssl
	minPoll        = time.Second
)

// Config is one router to watch. The zero value of every optional field
// means its default; Validate reports what is wrong, naming the field by its
// configuration key.
type Config struct {
	// Name identifies the router: events carry NAS = Name and
	// Source = "routeros:" + Name. Use the same name as the router's [[nas]]
	// entry so RADIUS and RouterOS events about one session meet in the
	// customer's state.
	Name string
	// Address is host:port of the API service. Without a port, 8728 (8729
	// with TLS) is used.
	Address string
	// User and Password log in to the API; Password is never logged.
	// PasswordFile, when set instead of Password, is read at every connect
	// (trailing newline removed), so a rotated password needs no restart.
	User         string
	Password     string
	PasswordFile string
	// TLS uses api-ssl. The router's certificate is verified against CAFile
	// (PEM), or the system roots when CAFile is empty, and ServerName (the
	// host of Address by default); with Fingerprint set only the SHA-256 of
	// the certificate is checked (hex, colons allowed), which suits the
	// self-signed certificates routers usually have.
	TLS         bool
	CAFile      string
	Fingerprint string
	ServerName  string
	// PollInterval is how often the whole /ppp/active table is re-read to
	// resync (listen carries the changes in between); default 10s, at
	// least 1s. A poll that takes longer than three intervals (or 30s)
	// counts the connection as dead.
	PollInterval time.Duration
	// DialTimeout bounds connecting, the TLS handshake and the login;
	// default 10s.
	DialTimeout time.Duration
	// Sessions follows /ppp/active; Log follows /log. nil means on.
	Sessions *bool
	Log      *bool
	// ReconnectMin and ReconnectMax bound the exponential backoff (with
	// jitter) between connection attempts; defaults 1s and 1m.
	ReconnectMin time.Duration
	ReconnectMax time.Duration
	// BlockedLists are the firewall address-lists that mean "blocked" (the
	// [blocked] address_lists of the configuration): when a session gets
	// its address, the router is asked whether its IP is in one of them.
	// Empty: not asked (the session's simple queue is read all the same).
	BlockedLists []string

	recheckAfter time.Duration // tests shorten it (export_test.go)
}

// SessionsEnabled reports whether /ppp/active is followed.
func (c Config) SessionsEnabled() bool { return c.Sessions == nil || *c.Sessions }

// LogEnabled reports whether /log is followed.
func (c Config) LogEnabled() bool { return c.Log == nil || *c.Log }

// String describes the router without its password.
func (c Config) String() string {
	return fmt.Sprintf("routeros %q (%s, user %q, tls=%t)", c.Name, c.Address, c.User, c.TLS)
}

// LogValue keeps the password out of structured logs.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", c.Name), slog.String("address", c.Address),
		slog.String("user", c.User), slog.Bool("tls", c.TLS))
}

// withDefaults fills the optional fields.
func (c Config) withDefaults() Config {
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.ReconnectMin == 0 {
		c.ReconnectMin = DefaultReconnectMin
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = max(DefaultReconnectMax, c.ReconnectMin)
	}
	if c.recheckAfter == 0 {
		c.recheckAfter = recheckAfter
	}
	if c.Address != "" {
		c.Address = withPort(c.Address, c.TLS)
	}
	return c
}

// withPort adds the default API port to an address given without one.
func withPort(addr string, useTLS bool) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	host := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
	if strings.Contains(host, ":") && net.ParseIP(host) == nil {
		return addr // not an address we can mend; Validate says why
	}
	port := defaultPort
	if useTLS {
		port = defaultTLSPort
	}
	return net.JoinHostPort(host, port)
}

// Validate reports the first problem in c, naming its configuration key.
func (c Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("routeros %q: %s: %s", c.Name, key, fmt.Sprintf(format, args...))
	}
	if c.Name == "" {
		return errors.New("routeros: name: missing")
	}
	if strings.ContainsAny(c.Name, " \t\r\n") {
		return bad("name", "must not contain white space")
	}
	c = c.withDefaults()
	if c.Address == "" {
		return bad("address", "missing (host:port of the API, e.g. 10.0.0.1:8728)")
	}
	host, port, err := net.SplitHostPort(c.Address)
	if err != nil {
		return bad("address", "%v", err)
	}
	if host == "" {
		return bad("address", "missing host")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return bad("address", "bad port %q", port)
	}
	if c.User == "" {
		return bad("user", "missing")
	}
	switch {
	case c.Password != "" && c.PasswordFile != "":
		return bad("password_file", "set either password or password_file, not both")
	case c.PasswordFile != "":
		if _, err := readPasswordFile(c.PasswordFile); err != nil {
			return bad("password_file", "%v", err)
		}
	}
	if !c.TLS {
		for key, v := range map[string]string{"ca_file": c.CAFile, "fingerprint": c.Fingerprint, "server_name": c.ServerName} {
			if v != "" {
				return bad(key, "only used with tls = true")
			}
		}
	}
	if c.CAFile != "" && c.Fingerprint != "" {
		return bad("fingerprint", "set either ca_file or fingerprint, not both (a pin is checked alone)")
	}
	if c.CAFile != "" {
		if _, err := loadCAFile(c.CAFile); err != nil {
			return bad("ca_file", "%v", err)
		}
	}
	if c.Fingerprint != "" {
		if _, err := parseFingerprint(c.Fingerprint); err != nil {
			return bad("fingerprint", "%v", err)
		}
	}
	if c.PollInterval < minPoll {
		return bad("poll_interval", "%v is too short (at least %v)", c.PollInterval, minPoll)
	}
	if c.DialTimeout < 0 {
		return bad("dial_timeout", "must be positive")
	}
	if c.ReconnectMin < 0 || c.ReconnectMax < c.ReconnectMin {
		return bad("reconnect_max", "must be at least reconnect_min (%v)", c.ReconnectMin)
	}
	if !c.SessionsEnabled() && !c.LogEnabled() {
		return bad("sessions", "both sessions and log are off: nothing to watch")
	}
	return nil
}

func readPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return pw, nil
}

// password returns the password to log in with.
func (c Config) password() (string, error) {
	if c.PasswordFile == "" {
		return c.Password, nil
	}
	pw, err := readPasswordFile(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("password_file: %w", err)
	}
	return pw, nil
}

func loadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}

// parseFingerprint accepts the SHA-256 of a certificate as 64 hex digits,
// optionally separated by colons or spaces (as openssl and RouterOS print
// it) and optionally prefixed "sha256:".
func parseFingerprint(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "sha256:")
	s = strings.NewReplacer(":", "", " ", "", "-", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not hex: %v", err)
	}
	if len(b) != sha256.Size {
		return nil, fmt.Errorf("%d bytes, want a SHA-256 (32 bytes, 64 hex digits)", len(b))
	}
	return b, nil
}

// ErrFingerprint is wrapped by connection errors when the router's
// certificate does not match the configured pin.
var ErrFingerprint = errors.New("certificate fingerprint does not match the pin")

// tlsConfig builds the client TLS configuration for c (already validated).
func (c Config) tlsConfig() (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(c.Address)
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if c.ServerName != "" {
		tc.ServerName = c.ServerName
	}
	if c.CAFile != "" {
		pool, err := loadCAFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		tc.RootCAs = pool
	}
	if c.Fingerprint != "" {
		pin, err := parseFingerprint(c.Fingerprint)
		if err != nil {
			return nil, fmt.Errorf("fingerprint: %w", err)
		}
		// With a pin the chain and the name are deliberately not checked:
		// the pin is the trust decision, made by the admin who copied it
		// from the router.
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return ErrFingerprint
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
				return fmt.Errorf("%w: router presented sha256 %s", ErrFingerprint, hex.EncodeToString(sum[:]))
			}
			return nil
		}
	}
	return tc, nil
}
