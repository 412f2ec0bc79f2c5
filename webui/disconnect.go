package webui

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"authwatch/watcher"
	"authwatch/webui/auth"
)

// "End session": POST /api/customers/{login}/disconnect ends a customer's
// stale session at the NAS, the agent's fix when a reboot ends in "Multiple
// logins". The server checks who may and the request's shape; ending the
// session (RFC 5176 Disconnect-Request or RouterOS /ppp/active/remove), the
// action event and the audit entry are Options.Disconnect's (internal/app).

// disconnectTimeout bounds one request: a few sessions, each a few tries of
// a few seconds.
const disconnectTimeout = 30 * time.Second

// DisconnectRequest is one press of "End session".
type DisconnectRequest struct {
	Login     string
	SessionID string        // "" for every open session of Login
	Who       auth.Identity // who asked
	Remote    netip.Addr    // from where, for the audit log
}

// DisconnectResult is the answer: what the NAS said.
type DisconnectResult struct {
	// Result is "done" (the NAS ended the session), "refused" (the NAS
	// would not: Detail says why) or "timeout" (no answer: the session may
	// still be up). With several sessions, the worst of theirs.
	Result string `json:"result"`
	// Via is the path: "radius" (Disconnect-Request) or
	// "routeros:<router>" (/ppp/active/remove), comma-separated when
	// sessions took different ones.
	Via    string `json:"via"`
	Detail string `json:"detail"`
	// Sessions has each session's own result when there were several.
	Sessions []SessionDisconnect `json:"sessions,omitempty"`
}

// SessionDisconnect is the result for one session.
type SessionDisconnect struct {
	NAS       string `json:"nas"`
	SessionID string `json:"session_id"`
	IP        string `json:"ip,omitempty"`
	Result    string `json:"result"`
	Via       string `json:"via"`
	Detail    string `json:"detail"`
}

// Errors of Options.Disconnect that the API answers with their own status.
var (
	// ErrDisconnectInFlight: another disconnect of the login is running
	// (409).
	ErrDisconnectInFlight = errors.New("a disconnect of this login is already in progress")
	// ErrNoSession: the login has no open session (with that id) that
	// authwatch knows of (404).
	ErrNoSession = errors.New("no open session to end")
)

// mayDisconnect says whether id may end sessions, and if not, why.
func (s *Server) mayDisconnect(id auth.Identity) (bool, string) {
	if id.IsAdmin() {
		return true, ""
	}
	if s.agentsMayDisconnect != nil && s.agentsMayDisconnect() {
		return true, ""
	}
	return false, "ending a session needs the admin role (an admin may allow agents with [actions] agents_may_disconnect = true)"
}

// handleDisconnect is POST /api/customers/{login}/disconnect with an
// optional JSON body {"session_id": "…"}.
func (s *Server) handleDisconnect(w http.ResponseWriter, r *http.Request) {
	if s.disconnect == nil {
		writeError(w, http.StatusNotImplemented, "ending sessions is not available in this server")
		return
	}
	id := identity(r)
	if ok, why := s.mayDisconnect(id); !ok {
		s.log.Warn("http: disconnect refused", "user", id.User, "role", id.Role, "login", truncate(r.PathValue("login"), maxLoginLen))
		writeError(w, http.StatusForbidden, why)
		return
	}
	login := r.PathValue("login")
	if login == "" || len(login) > maxLoginLen || login == watcher.Firehose {
		writeError(w, http.StatusBadRequest, "login must be 1 to 253 bytes, not *")
		return
	}
	var body struct {
		SessionID string `json:"session_id"`
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	switch {
	case err != nil:
		writeError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	case len(b) > maxBody:
		writeError(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	case len(strings.TrimSpace(string(b))) > 0:
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			writeError(w, http.StatusBadRequest, `body must be {"session_id": "…"} (or empty): `+err.Error())
			return
		}
	}
	if len(body.SessionID) > maxLoginLen {
		writeError(w, http.StatusBadRequest, "session_id longer than 253 bytes")
		return
	}
	var remote netip.Addr
	if s.auth != nil {
		remote = s.auth.ClientAddr(r)
	}
	// The NAS is asked on the request's behalf, but once asked, the answer
	// is waited for and recorded even if the agent closes the page.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), disconnectTimeout)
	defer cancel()
	res, err := s.disconnect(ctx, DisconnectRequest{Login: login, SessionID: strings.TrimSpace(body.SessionID), Who: id, Remote: remote})
	switch {
	case errors.Is(err, ErrDisconnectInFlight):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrNoSession):
		writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		writeJSON(w, http.StatusOK, res)
	}
}
