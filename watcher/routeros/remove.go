package routeros

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-routeros/routeros/v3"
)

// Ending a session from authwatch: /ppp/active/remove of the session's item,
// the API's equivalent of the "Remove" button in Winbox. The router then
// drops the PPPoE session (RouterOS sends an LCP Terminate-Request and, with
// RADIUS accounting, a Stop with Acct-Terminate-Cause Admin-Reset), and the
// customer's router may log in again at once.

// ErrNotConnected is wrapped by RemoveSession's error when the source has no
// connection to the router at the moment; Disconnect, which dials its own,
// may still reach it.
var ErrNotConnected = errors.New("not connected to the router")

// removedReason is the stop reason of a session removed through RemoveSession,
// unless the router's log says more.
const removedReason = "removed from /ppp/active by authwatch"

// removeRequest asks the goroutine that owns the command link to remove a
// session; the answer comes back on reply (buffered, so it never waits).
type removeRequest struct {
	login, sessionID string
	reply            chan removeReply
}

type removeReply struct {
	done   bool
	detail string
	err    error
}

// RemoveSession ends the /ppp/active session of login whose session id is
// sessionID (as authwatch records it: the normalised session-id, or the
// item's .id), or every session of login when sessionID is "". It runs on the
// source's command connection, between its polls (the connection carries one
// command at a time), so the source must be connected (see ErrNotConnected).
//
// done is true when the router removed the session. done false with a nil
// error is the router's refusal, said in detail: "no such item" when no
// session of login matches (it ended meanwhile), or the router's !trap
// message (a policy without write, for instance). An error means the router
// could not be asked, or did not answer: whether the session ended is
// unknown.
func (s *Source) RemoveSession(ctx context.Context, sessionID, login string) (done bool, detail string, err error) {
	if err := checkLogin(login); err != nil {
		return false, "", s.errf("remove session: login %q: %w", trunc(login, 64), err)
	}
	s.mu.Lock()
	cmds, gone := s.cmds, s.cmdsGone
	s.mu.Unlock()
	if cmds == nil {
		return false, "", s.errf("remove session: %w", ErrNotConnected)
	}
	rq := removeRequest{login: login, sessionID: sessionID, reply: make(chan removeReply, 1)}
	select {
	case cmds <- rq:
	case <-gone:
		return false, "", s.errf("remove session: %w", ErrNotConnected)
	case <-ctx.Done():
		return false, "", ctx.Err()
	}
	select {
	case r := <-rq.reply:
		return r.done, r.detail, r.err
	case <-ctx.Done():
		// The command runs on; the listen records the stop if it worked.
		return false, "", ctx.Err()
	}
}

// Disconnect is RemoveSession over a connection of its own, for when no
// source is connected to the router (not configured to run, or between
// reconnection attempts): it dials, logs in, removes, and hangs up, all
// bounded by cfg.DialTimeout per step and by ctx.
func Disconnect(ctx context.Context, cfg Config, sessionID, login string) (done bool, detail string, err error) {
	if err := cfg.Validate(); err != nil {
		return false, "", err
	}
	if err := checkLogin(login); err != nil {
		return false, "", fmt.Errorf("routeros %q: remove session: login %q: %w", cfg.Name, trunc(login, 64), err)
	}
	cfg = cfg.withDefaults()
	pw, err := cfg.password()
	if err != nil {
		return false, "", fmt.Errorf("routeros %q: %w", cfg.Name, err)
	}
	l, err := dialLink(ctx, cfg, pw, func(error) {})
	if err != nil {
		return false, "", fmt.Errorf("routeros %q: %w", cfg.Name, err)
	}
	defer l.close(nil)
	r := removeOn(l, cfg.DialTimeout, login, sessionID)
	if r.err != nil {
		r.err = fmt.Errorf("routeros %q: %w", cfg.Name, r.err)
	}
	return r.done, r.detail, r.err
}

// openCommands makes the channel RemoveSession sends on while a connection
// serves; closeCommands withdraws it when the connection ends.
func (s *Source) openCommands() (chan removeRequest, chan struct{}) {
	cmds, gone := make(chan removeRequest), make(chan struct{})
	s.mu.Lock()
	s.cmds, s.cmdsGone = cmds, gone
	s.mu.Unlock()
	return cmds, gone
}

func (s *Source) closeCommands(gone chan struct{}) {
	s.mu.Lock()
	s.cmds, s.cmdsGone = nil, nil
	s.mu.Unlock()
	close(gone)
}

// serveRemove runs a RemoveSession request on the command link, on Run's
// goroutine. It returns an error only when the link is broken.
func (s *Source) serveRemove(cmd *link, rq removeRequest) error {
	r := removeOn(cmd, s.cfg.DialTimeout, rq.login, rq.sessionID)
	if r.err != nil {
		s.countReplyError(r.err)
		r.err = s.errf("remove session: %w", r.err)
	}
	if r.done {
		// The stop that the listen (or the next poll) records says who
		// ended it, unless the router logs a reason of its own.
		s.causes[rq.login] = cause{reason: removedReason, cause: "Admin-Reset", at: time.Now()}
		s.log.Info("routeros: session removed", "login", rq.login, "session_id", rq.sessionID)
	}
	rq.reply <- r
	return r.err
}

// removeOn finds login's matching items in /ppp/active and removes them, one
// command each way. A !trap is a refusal (the link stays usable); any other
// error, returned as err, means the link is broken. login has passed
// checkLogin.
func removeOn(l *link, timeout time.Duration, login, sessionID string) removeReply {
	rep, err := l.run(timeout, "/ppp/active/print", "=.proplist=.id,name,session-id,address,uptime", "?name="+login)
	if err != nil {
		var de *routeros.DeviceError
		if errors.As(err, &de) {
			return removeReply{detail: "print /ppp/active refused: " + clean(de.Sentence.Map["message"], 256)}
		}
		return removeReply{err: fmt.Errorf("print /ppp/active: %w", err)}
	}
	var ids, found []string
	for _, sen := range rep.Re {
		m := sen.Map
		id := m[".id"]
		if id == "" || m["name"] != login {
			continue
		}
		sid := m["session-id"]
		// Session ids compare without case: RADIUS accounting may carry
		// RouterOS' hex in capitals.
		if sessionID != "" && id != sessionID && !strings.EqualFold(sid, sessionID) && !strings.EqualFold(normalizeSessionID(sid), sessionID) {
			continue
		}
		ids = append(ids, id)
		desc := id + " (" + clean(login, 64)
		if sid != "" {
			desc += ", session " + clean(normalizeSessionID(sid), 64)
		}
		if a := parseAddress(m["address"]); a != "" {
			desc += ", " + a
		}
		if up := m["uptime"]; up != "" {
			desc += ", uptime " + clean(up, 32)
		}
		found = append(found, desc+")")
	}
	if len(ids) == 0 {
		what := fmt.Sprintf("no session of %q in /ppp/active", clean(login, 64))
		if sessionID != "" {
			what = fmt.Sprintf("no session of %q with session id %q in /ppp/active", clean(login, 64), clean(sessionID, 64))
		}
		return removeReply{detail: "no such item: " + what}
	}
	if _, err := l.run(timeout, "/ppp/active/remove", "=.id="+strings.Join(ids, ",")); err != nil {
		var de *routeros.DeviceError
		if errors.As(err, &de) {
			return removeReply{detail: clean(de.Sentence.Map["message"], 256)}
		}
		return removeReply{err: fmt.Errorf("/ppp/active/remove: %w", err)}
	}
	return removeReply{done: true, detail: "removed /ppp/active " + strings.Join(found, ", ")}
}
