package webui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"authwatch/watcher"
	"authwatch/webui/auth"
)

// Access is who may use a route.
type Access int

// The access levels. The zero value is no level at all: a route registered
// with it is refused to everyone, and the route table test fails on it.
const (
	_ Access = iota // unset
	// Public routes answer anyone: the page, its files, health, metrics,
	// the login itself.
	Public
	// Agent routes need any enabled account.
	Agent
	// Admin routes need the admin role.
	Admin
)

func (a Access) String() string {
	switch a {
	case Public:
		return "public"
	case Agent:
		return "agent"
	case Admin:
		return "admin"
	}
	return "unset"
}

// route is one entry of the route table.
type route struct {
	pattern string
	access  Access
	audit   auditSpec
}

// auditSpec says what the audit log records for a route: the action, and
// the customer (login) or the search (query) it is about.
type auditSpec struct {
	action string
	target func(r *http.Request) (login, query string)
	// valid, when set, says whether the target login is one its handler
	// accepts; a request that names none is refused there, reads nothing,
	// and leaves no audit entry (an empty or 300-byte "login").
	valid func(login string) bool
}

func audited(action string, target func(*http.Request) (string, string)) auditSpec {
	return auditSpec{action: action, target: target}
}

// auditedLogin is audited for routes whose handler refuses a login that
// checkLogin(login, firehose) refuses.
func auditedLogin(action string, target func(*http.Request) (string, string), firehose bool) auditSpec {
	return auditSpec{action: action, target: target, valid: func(login string) bool {
		_, err := checkLogin(login, firehose)
		return err == nil
	}}
}

// Targets of audited routes.
func loginFromPath(r *http.Request) (string, string)  { return r.PathValue("login"), "" }
func loginFromQuery(r *http.Request) (string, string) { return r.URL.Query().Get("login"), "" }
func idFromPath(r *http.Request) (string, string)     { return "", "watch " + r.PathValue("id") }
func searchQuery(r *http.Request) (string, string)    { return "", r.URL.Query().Get("q") }
func everyLogin(*http.Request) (string, string)       { return watcher.Firehose, "" }

// loginFromBody reads the login of a JSON body such as POST /api/watches',
// and puts the body back for the handler.
func loginFromBody(r *http.Request) (string, string) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
	if err != nil {
		return "", ""
	}
	var v struct {
		Login string `json:"login"`
	}
	json.Unmarshal(b, &v) // a bad body gets its 400 from the handler
	return strings.TrimSpace(v.Login), ""
}

// handle registers a route with its access level and, optionally, what the
// audit log records of it.
func (s *Server) handle(pattern string, access Access, h http.HandlerFunc, audit ...auditSpec) {
	rt := &route{pattern: pattern, access: access}
	if len(audit) > 0 {
		rt.audit = audit[0]
	}
	s.registry = append(s.registry, rt)
	s.byRoute[pattern] = rt
	s.mux.Handle(pattern, s.guard(rt, h))
}

// onlyRegistered refuses any request that the mux would give to a handler
// registered without s.handle, so that a route added in a hurry fails closed
// instead of serving customers' data to anyone. The mux's own answers (404,
// 405, redirects to a cleaned path) have no pattern, or that of a registered
// route, and go through.
func (s *Server) onlyRegistered(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := s.mux.Handler(r); pattern != "" && s.byRoute[pattern] == nil {
			s.log.Error("http: route without an access level refused; register it with Server.handle", "pattern", pattern)
			writeError(w, http.StatusInternalServerError, "this route has no access level")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// guard applies a route's access level, the CSRF rules and the audit log
// before its handler runs, with the identity in the request's context.
func (s *Server) guard(rt *route, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.desk && !s.deskHost(r.Host) {
			// DNS rebinding: a page from evil.example whose name now points
			// at 127.0.0.1 is "same origin" with us, and desk mode has no
			// credentials to stop it. Its requests carry its own Host.
			writeError(w, http.StatusForbidden, "desk mode answers only requests for localhost, a loopback address or http.public_urls")
			return
		}
		switch rt.access {
		case Public:
			h(w, r)
			return
		case Agent, Admin:
		default:
			writeError(w, http.StatusInternalServerError, "this route has no access level")
			return
		}
		id, ok := s.identify(w, r)
		if !ok {
			return
		}
		if rt.access == Admin && !id.IsAdmin() {
			writeError(w, http.StatusForbidden, "this needs the admin role")
			return
		}
		if !s.checkCSRF(w, r, id) {
			return
		}
		if rt.audit.action != "" && !s.record(w, r, id, rt.audit) {
			return
		}
		h(w, r.WithContext(auth.NewContext(r.Context(), id)))
	})
}

// identify answers 401 (or 503) itself when the request is not someone.
func (s *Server) identify(w http.ResponseWriter, r *http.Request) (auth.Identity, bool) {
	if s.desk {
		return auth.Desk(), true
	}
	id, err := s.auth.Identify(r)
	switch {
	case err == nil:
		return id, true
	case errors.Is(err, auth.ErrNoCredentials):
		writeError(w, http.StatusUnauthorized, "login required")
	case errors.Is(err, auth.ErrExpired):
		s.auth.ClearCookie(w, r)
		writeError(w, http.StatusUnauthorized, "login required: the session expired")
	case errors.Is(err, auth.ErrInvalid):
		if _, cerr := r.Cookie(auth.CookieName); cerr == nil && r.Header.Get("Authorization") == "" {
			s.auth.ClearCookie(w, r)
		}
		writeError(w, http.StatusUnauthorized, "login required: unknown, ended or revoked credentials")
	default:
		if r.Context().Err() == nil {
			s.log.Error("http: authentication failed", "path", r.URL.Path, "err", err)
		}
		writeError(w, http.StatusServiceUnavailable, "store unavailable")
	}
	return auth.Identity{}, false
}

// viewer returns who r is, without refusing anyone (public routes that show
// more to admins).
func (s *Server) viewer(r *http.Request) (auth.Identity, bool) {
	if s.desk {
		return auth.Desk(), true
	}
	id, err := s.auth.Identify(r)
	return id, err == nil
}

// stateChanging reports whether a method changes something (the methods
// browsers let other sites send, and the rest of the unsafe ones).
func stateChanging(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// checkCSRF refuses a state-changing request that another site's page may
// have made the browser send. Browser-borne credentials (the session
// cookie, the SSO proxy's login, desk mode's lack of any) need the request
// to come from our own origin; a session also needs its CSRF token in
// X-CSRF-Token. A Bearer token is never sent by a browser on its own.
func (s *Server) checkCSRF(w http.ResponseWriter, r *http.Request, id auth.Identity) bool {
	if !stateChanging(r.Method) || id.Method == auth.MethodToken {
		return true
	}
	if !s.sameOrigin(r) {
		s.log.Warn("http: cross-origin request refused", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"), "user", id.User, "remote", r.RemoteAddr)
		writeError(w, http.StatusForbidden, "cross-origin request refused")
		return false
	}
	if id.Method == auth.MethodSession && !auth.CheckCSRF(id, r.Header.Get("X-CSRF-Token")) {
		writeError(w, http.StatusForbidden, "CSRF token missing or wrong: send X-CSRF-Token as given by /api/login or /api/me (reload the page)")
		return false
	}
	return true
}

// sameOrigin reports whether a request comes from our own page, as far as
// the browser tells: Origin (every current browser sends it on these
// requests) and, lacking it, Sec-Fetch-Site. A request with neither is not
// from a browser's page.
func (s *Server) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		return s.originAllowed(o, r.Host)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return false
	}
	return true
}

// deskHost reports whether a desk-mode request names us as a loopback
// host: localhost, a loopback IP, or the host of a configured origin.
func (s *Server) deskHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Unmap().IsLoopback() {
		return true
	}
	for o := range s.origins {
		if u, err := url.Parse(o); err == nil && strings.EqualFold(u.Host, hostport) {
			return true
		}
	}
	return false
}

// record writes the audit entry of an access to customers' data. An access
// that cannot be recorded is refused: nobody reads a customer's data
// unrecorded. Desk mode (one person's own machine, no accounts) keeps no
// audit log: there is nobody to name.
func (s *Server) record(w http.ResponseWriter, r *http.Request, id auth.Identity, a auditSpec) bool {
	if s.desk {
		return true
	}
	login, query := a.target(r)
	if a.valid != nil && !a.valid(login) {
		return true // its handler refuses it (400) and reads nothing
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	if err := s.auth.Record(ctx, id, a.action, truncate(login, maxLoginLen), truncate(query, maxLoginLen), s.auth.ClientAddr(r)); err != nil {
		s.log.Error("audit: cannot record an access; refused", "user", id.User, "action", a.action, "login", login, "err", err)
		writeError(w, http.StatusServiceUnavailable, "store unavailable: the access cannot be recorded in the audit log")
		return false
	}
	return true
}
