package auth

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// CookieName is the web session's cookie.
const CookieName = "authwatch_session"

// maxCredentialLen bounds what is hashed from a request: our session ids and
// tokens are under 50 characters.
const maxCredentialLen = 256

// Identify says who r acts as, trying in order: the trusted proxy's header
// (only from a trusted proxy), an Authorization: Bearer token, the session
// cookie. A request with none gets ErrNoCredentials; one whose credentials
// are bad gets ErrInvalid or ErrExpired, never a fall-back to another method.
func (s *Service) Identify(r *http.Request) (Identity, error) {
	ctx := r.Context()
	if s.proxyHeader != "" && s.fromTrustedProxy(r) {
		if name := r.Header.Get(s.proxyHeader); name != "" {
			return s.proxyUser(ctx, name)
		}
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		tok = strings.TrimSpace(tok)
		if !strings.EqualFold(scheme, "Bearer") || tok == "" || len(tok) > maxCredentialLen {
			return Identity{}, ErrInvalid
		}
		return s.token(ctx, digest(tok))
	}
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		if len(c.Value) > maxCredentialLen {
			return Identity{}, ErrInvalid
		}
		return s.session(ctx, digest(c.Value))
	}
	return Identity{}, ErrNoCredentials
}

// peer is the address of the TCP peer of r.
func peer(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

func (s *Service) trusted(a netip.Addr) bool {
	for _, p := range s.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (s *Service) fromTrustedProxy(r *http.Request) bool { return s.trusted(peer(r)) }

// ClientAddr is the address of the client behind r: the TCP peer, or, when
// the peer is a trusted proxy, the nearest address in X-Forwarded-For that
// is not one (addresses further left are the client's own say, and could be
// forged).
func (s *Service) ClientAddr(r *http.Request) netip.Addr {
	p := peer(r)
	if s == nil || !s.trusted(p) {
		return p
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return p // a garbled chain: trust nothing in it
		}
		a = a.Unmap()
		if !s.trusted(a) {
			return a
		}
		p = a
	}
	return p
}

// Secure reports whether the browser reached us over TLS: directly, or
// through a trusted proxy that says so in X-Forwarded-Proto.
func (s *Service) Secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	return s.fromTrustedProxy(r) && strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https")
}

// SetCookie gives the browser its session cookie: HttpOnly (scripts never
// read it; they use the CSRF token instead), SameSite=Lax, Secure over TLS.
// It is a browser-session cookie: the server enforces the expiry.
func (s *Service) SetCookie(w http.ResponseWriter, r *http.Request, value string) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: value, Path: "/",
		HttpOnly: true, Secure: s.Secure(r), SameSite: http.SameSiteLaxMode,
	})
}

// ClearCookie tells the browser to forget its session cookie.
func (s *Service) ClearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.Secure(r), SameSite: http.SameSiteLaxMode,
	})
}
