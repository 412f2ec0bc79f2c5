package webui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"authwatch/webui/auth"
)

// meView is the JSON of POST /api/login and GET /api/me.
type meView struct {
	User string    `json:"user"`
	Role auth.Role `json:"role"`
	// CSRF goes back in X-CSRF-Token on POST, PUT, PATCH and DELETE
	// (session logins only; empty otherwise).
	CSRF string      `json:"csrf"`
	Auth auth.Method `json:"auth"` // session, token, proxy or desk
	// MayDisconnect says whether "End session" is open to this account;
	// when not, NoDisconnect is the reason the page shows.
	MayDisconnect bool   `json:"may_disconnect"`
	NoDisconnect  string `json:"no_disconnect,omitempty"`
}

func (s *Server) viewOf(id auth.Identity) meView {
	v := meView{User: id.User, Role: id.Role, CSRF: id.CSRF, Auth: id.Method}
	v.MayDisconnect, v.NoDisconnect = s.mayDisconnect(id)
	if s.disconnect == nil {
		v.MayDisconnect, v.NoDisconnect = false, "ending sessions is not available in this server"
	}
	return v
}

// identity is who the guarded request acts as.
func identity(r *http.Request) auth.Identity {
	id, _ := auth.FromContext(r.Context())
	return id
}

func (s *Server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	pageHeaders(w)
	s.serveAsset(w, r, s.assets["login.html"])
}

// pageHeaders are the headers of the HTML pages: they need nothing from
// elsewhere, and are never framed ('self' covers the same-origin websocket
// in current browsers).
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// loginRequest is the body of POST /api/login.
type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// handleLogin is POST /api/login {"username","password"}: on success, the
// session cookie and {"user","role","csrf","auth"}.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if s.desk {
		writeError(w, http.StatusBadRequest, "this server runs without accounts (desk mode): no login needed")
		return
	}
	// Another site must not log our user into an account of its choosing.
	if !s.sameOrigin(r) {
		writeError(w, http.StatusForbidden, "cross-origin request refused")
		return
	}
	var req loginRequest
	if err := readJSON(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Username == "" || req.Password == "" {
		writeError(w, http.StatusBadRequest, "username and password: both required")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*storeTimeout)
	defer cancel()
	res, err := s.auth.Login(ctx, req.Username, req.Password, s.auth.ClientAddr(r))
	var limited *auth.RateLimitError
	switch {
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.Itoa(int(limited.RetryAfter.Seconds()+1)))
		writeError(w, http.StatusTooManyRequests, limited.Error())
		return
	case errors.Is(err, auth.ErrBadCredentials):
		writeError(w, http.StatusUnauthorized, err.Error())
		return
	case errors.Is(err, auth.ErrDisabled):
		writeError(w, http.StatusForbidden, err.Error())
		return
	case err != nil:
		if r.Context().Err() == nil {
			s.log.Error("http: login failed", "err", err)
		}
		writeError(w, http.StatusServiceUnavailable, "store unavailable")
		return
	}
	s.auth.SetCookie(w, r, res.Cookie)
	writeJSON(w, http.StatusOK, s.viewOf(res.Identity))
}

// handleLogout is POST /api/logout: ends the web session.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if !s.desk {
		if err := s.auth.Logout(r.Context(), identity(r)); err != nil {
			s.log.Error("http: logout failed", "user", identity(r).User, "err", err)
			writeError(w, http.StatusServiceUnavailable, "store unavailable")
			return
		}
		s.auth.ClearCookie(w, r)
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// handleMe is GET /api/me: who the page is logged in as.
func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.viewOf(identity(r)))
}

func (s *Server) needAccounts(w http.ResponseWriter) bool {
	if s.desk {
		writeError(w, http.StatusNotFound, "desk mode has no accounts and keeps no audit log")
		return false
	}
	return true
}

// handleAudit is GET /api/audit?login=&user=&limit=&before=: who accessed
// which customer, newest first.
func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	if !s.needAccounts(w) {
		return
	}
	limit, err := limitParam(r, auth.DefaultAuditLimit, auth.MaxAuditLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	before, _, err := seqParam(r, "before")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	q := r.URL.Query()
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	entries, err := s.auth.Audit(ctx, auth.AuditQuery{Login: q.Get("login"), User: q.Get("user"), Before: before, Limit: limit})
	if err != nil {
		s.storeError(w, r, fmt.Errorf("audit: %w", err))
		return
	}
	if entries == nil {
		entries = []auth.AuditEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
}

// handleUsers is GET /api/users: every account (never a password hash).
func (s *Server) handleUsers(w http.ResponseWriter, r *http.Request) {
	if !s.needAccounts(w) {
		return
	}
	users, err := s.auth.Users(r.Context())
	if err != nil {
		s.storeError(w, r, fmt.Errorf("users: %w", err))
		return
	}
	if users == nil {
		users = []auth.User{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": users})
}

// handleUserAdd is POST /api/users {"name","role","password"}.
func (s *Server) handleUserAdd(w http.ResponseWriter, r *http.Request) {
	if !s.needAccounts(w) {
		return
	}
	var req struct {
		Name     string    `json:"name"`
		Role     auth.Role `json:"role"`
		Password string    `json:"password"`
	}
	if err := readJSON(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	u, err := s.auth.AddUser(r.Context(), req.Name, req.Role, req.Password)
	if s.accountError(w, r, err) {
		return
	}
	s.log.Info("http: user added", "user", u.Name, "role", u.Role, "by", identity(r).User)
	writeJSON(w, http.StatusCreated, u)
}

// handleUserUpdate is PATCH /api/users/{name} with any of {"role",
// "disabled", "password"}.
func (s *Server) handleUserUpdate(w http.ResponseWriter, r *http.Request) {
	if !s.needAccounts(w) {
		return
	}
	var req struct {
		Role     *auth.Role `json:"role"`
		Disabled *bool      `json:"disabled"`
		Password *string    `json:"password"`
	}
	if err := readJSON(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// All of it or nothing: a refused role leaves the password as it was.
	u, err := s.auth.Change(r.Context(), r.PathValue("name"), auth.Change{Role: req.Role, Disabled: req.Disabled, Password: req.Password})
	if s.accountError(w, r, err) {
		return
	}
	s.log.Info("http: user updated", "user", u.Name, "by", identity(r).User)
	writeJSON(w, http.StatusOK, u)
}

// accountError answers a failed account change, if err is one.
func (s *Server) accountError(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return false
	case auth.IsBadInput(err):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, auth.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, auth.ErrExists):
		writeError(w, http.StatusConflict, err.Error())
	default:
		s.storeError(w, r, err)
	}
	return true
}

// publicHealth is /healthz for anyone but admins: whether each part is OK,
// without errors and counters (addresses, router names…).
type publicHealth struct {
	Status string                 `json:"status"`
	Checks map[string]publicCheck `json:"checks"`
}

type publicCheck struct {
	OK bool `json:"ok"`
}

func (rep healthReport) public() publicHealth {
	p := publicHealth{Status: rep.Status, Checks: make(map[string]publicCheck, len(rep.Checks))}
	for name, c := range rep.Checks {
		p.Checks[name] = publicCheck{OK: c.OK}
	}
	return p
}
