package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"net/textproto"
	"net/url"
	"strings"
	"time"
)

// IsLoopback reports whether a host:port listens only on loopback: a
// loopback IP or "localhost". An empty host (every address) is not.
func IsLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

type badFunc func(key, format string, args ...any)

// validateHTTPS checks [http] tls_cert, tls_key and public_urls.
func (c *Config) validateHTTPS(bad badFunc) {
	h := &c.HTTP
	switch {
	case h.TLSCert == "" && h.TLSKey != "":
		bad("http.tls_cert", "required with http.tls_key")
	case h.TLSCert != "" && h.TLSKey == "":
		bad("http.tls_key", "required with http.tls_cert")
	case h.TLSCert != "":
		// Read them now, so that a wrong path is refused at start rather
		// than when the first browser connects.
		if _, err := tls.LoadX509KeyPair(h.TLSCert, h.TLSKey); err != nil {
			bad("http.tls_cert", "%v", err)
		}
	}
	for i, s := range h.PublicURLs {
		u, err := url.Parse(strings.TrimSuffix(s, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			bad(fmt.Sprintf("http.public_urls[%d]", i), "want scheme://host[:port] like \"https://authwatch.example.net\", not %q", s)
		}
	}
}

// validateAuth checks [auth] and resolves trusted_proxies.
func (c *Config) validateAuth(bad badFunc) {
	a := &c.Auth
	if d := a.SessionIdle.D(); d < time.Minute || d > 7*24*time.Hour {
		bad("auth.session_idle", "must be between 1m and 168h")
	}
	if d := a.SessionMax.D(); d < a.SessionIdle.D() || d > 30*24*time.Hour {
		bad("auth.session_max", "must be at least auth.session_idle and at most 720h")
	}
	if a.AuditRetention < 0 {
		bad("auth.audit_retention", "must not be negative (0 keeps the audit log forever)")
	}
	a.proxies = nil
	for i, s := range a.TrustedProxies {
		p, err := ParsePrefix(s)
		if err != nil {
			bad(fmt.Sprintf("auth.trusted_proxies[%d]", i), "%v", err)
			continue
		}
		a.proxies = append(a.proxies, p)
	}
	if a.ProxyHeader != "" {
		canon := textproto.CanonicalMIMEHeaderKey(a.ProxyHeader)
		switch {
		case !validHeaderName(a.ProxyHeader):
			bad("auth.proxy_header", "not a header name: %q", a.ProxyHeader)
		case canon == "Authorization" || canon == "Cookie" || canon == "Host" || strings.HasPrefix(canon, "X-Forwarded-"):
			bad("auth.proxy_header", "%q carries something else; use a header of its own such as X-Remote-User", a.ProxyHeader)
		case len(a.TrustedProxies) == 0:
			bad("auth.proxy_header", "needs auth.trusted_proxies: the header is believed only from them")
		}
	}
	if n := a.LoginFailuresPerUser; n < 1 || n > 1000 {
		bad("auth.login_failures_per_user", "must be between 1 and 1000")
	}
	if n := a.LoginFailuresPerAddress; n < 1 || n > 100000 {
		bad("auth.login_failures_per_address", "must be between 1 and 100000")
	}
	if d := a.LoginWindow.D(); d < time.Minute || d > 24*time.Hour {
		bad("auth.login_window", "must be between 1m and 24h")
	}
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
