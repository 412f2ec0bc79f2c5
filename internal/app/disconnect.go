package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"authwatch/internal/config"
	"authwatch/radius"
	"authwatch/watcher"
	"authwatch/watcher/routeros"
	"authwatch/webui"
	"authwatch/webui/auth"
)

// "End session" (docs/DISCONNECT.md): the agent's fix when a reboot ends in
// "Multiple logins" because the concentrator still holds the old session.
// For each session the path is chosen from what authwatch knows of it:
//
//   - its NAS is also a [[routeros]] router (same name, or the router's
//     address is the NAS's): /ppp/active/remove over the API, on the
//     router source's own command connection when it is connected, over a
//     connection of its own otherwise;
//   - otherwise an RFC 5176 Disconnect-Request to the NAS: to its [[nas]]
//     address when that is one IP, or to the NAS-IP-Address its accounting
//     reported when the entry is a CIDR holding it; port coa_port, secret
//     coa_secret or secret.
//
// One disconnect per login at a time. Before anything is sent, the audit
// log gets an entry (when there are accounts: desk mode keeps none), and an
// access that cannot be recorded sends nothing, as for every read of a
// customer's data. After, each session's outcome is an action event in the
// customer's stream.

// disconnects is the state of "End session".
type disconnects struct {
	mu       sync.Mutex
	inflight map[string]bool // logins being disconnected

	nas    atomic.Pointer[[]config.NAS] // as last (re)loaded
	agents atomic.Bool                  // [actions] agents_may_disconnect

	// radiusOpts tunes the Disconnect-Request's retries (tests shorten it).
	radiusOpts radius.DisconnectOptions
}

// configure takes the parts of cfg that "End session" uses, at start and at
// every reload.
func (a *disconnects) configure(cfg *config.Config) {
	nas := slices.Clone(cfg.NAS)
	a.nas.Store(&nas)
	a.agents.Store(cfg.Actions.AgentsMayDisconnect)
}

// agentsMay reports whether agents may end sessions (webui asks at every
// request, so a reload applies).
func (a *disconnects) agentsMay() bool { return a.agents.Load() }

func (a *disconnects) begin(login string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inflight[login] {
		return false
	}
	if a.inflight == nil {
		a.inflight = map[string]bool{}
	}
	a.inflight[login] = true
	return true
}

func (a *disconnects) end(login string) {
	a.mu.Lock()
	delete(a.inflight, login)
	a.mu.Unlock()
}

func (a *disconnects) nasNamed(name string) *config.NAS {
	p := a.nas.Load()
	if p == nil {
		return nil
	}
	for i := range *p {
		if (*p)[i].Name == name {
			n := (*p)[i]
			return &n
		}
	}
	return nil
}

// Paths of a disconnect, as the API and the action event name them.
const viaRADIUS = "radius"

// sessionPlan is how one session is to be ended.
type sessionPlan struct {
	login  string
	ss     watcher.Session
	via    string // viaRADIUS or "routeros:<name>"
	router *router
	req    radius.DisconnectRequest // viaRADIUS
}

func (p sessionPlan) sent() string {
	if p.router == nil {
		return p.req.String()
	}
	which := "every item"
	if p.ss.ID != "" {
		which = fmt.Sprintf("the item of session %s", p.ss.ID)
	}
	return fmt.Sprintf("/ppp/active/remove on router %s (%s): %s with name=%q", p.router.cfg.Name, p.router.cfg.Address, which, p.login)
}

// Disconnect ends the open sessions of rq.Login (or only the one with
// rq.SessionID) at their NAS, and reports what the NAS said. It is the
// Options.Disconnect of the web server, which has already checked that
// rq.Who may.
//
// Errors, for which nothing was sent: webui.ErrDisconnectInFlight (another
// disconnect of the login is running), webui.ErrNoSession (no open session
// of the login, with that id, in the state), a session whose NAS authwatch
// cannot address (not in the configuration, a CIDR entry without a known
// NAS-IP-Address), or an audit log that cannot be written.
func (d *Daemon) Disconnect(ctx context.Context, rq webui.DisconnectRequest) (webui.DisconnectResult, error) {
	login := rq.Login
	if !d.actions.begin(login) {
		return webui.DisconnectResult{}, fmt.Errorf("%w (%s)", webui.ErrDisconnectInFlight, login)
	}
	defer d.actions.end(login)

	c, _ := d.state.Customer(login)
	var sessions []watcher.Session
	for _, ss := range c.Sessions {
		if rq.SessionID == "" || ss.ID == rq.SessionID || strings.EqualFold(ss.ID, rq.SessionID) {
			sessions = append(sessions, ss)
		}
	}
	if len(sessions) == 0 {
		if rq.SessionID != "" {
			return webui.DisconnectResult{}, fmt.Errorf("%w: %s has no open session %q", webui.ErrNoSession, login, rq.SessionID)
		}
		return webui.DisconnectResult{}, fmt.Errorf("%w: %s has no open session", webui.ErrNoSession, login)
	}
	plans := make([]sessionPlan, 0, len(sessions))
	for _, ss := range sessions {
		p, err := d.plan(login, ss)
		if err != nil {
			return webui.DisconnectResult{}, err
		}
		plans = append(plans, p)
	}
	if err := d.auditDisconnect(ctx, rq, plans); err != nil {
		return webui.DisconnectResult{}, err
	}

	out := make([]webui.SessionDisconnect, len(plans))
	evs := make([]watcher.Event, len(plans))
	for i, p := range plans {
		res, detail := d.end(ctx, login, p)
		out[i] = webui.SessionDisconnect{NAS: p.ss.NAS, SessionID: p.ss.ID, IP: p.ss.IP, Result: res.Result, Via: p.via, Detail: detail}
		evs[i] = actionEvent(login, rq.Who, p, res, detail)
		d.log.Info("disconnect", "login", login, "by", rq.Who.User, "nas", p.ss.NAS, "session_id", p.ss.ID, "via", p.via, "result", res.Result, "detail", detail)
	}
	// Recorded whatever became of the request: the NAS has been asked.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := d.rec.Commit(rctx, evs...); err != nil {
		d.log.Error("disconnect: action events not recorded", "login", login, "err", err)
	}
	return summarize(out), nil
}

// plan chooses the path for one session.
func (d *Daemon) plan(login string, ss watcher.Session) (sessionPlan, error) {
	p := sessionPlan{login: login, ss: ss}
	nas := d.actions.nasNamed(ss.NAS)
	if r := d.routerFor(ss, nas); r != nil {
		p.via, p.router = "routeros:"+r.cfg.Name, r
		return p, nil
	}
	if nas == nil {
		return p, fmt.Errorf("session %s of %s: NAS %q is neither a [[nas]] nor a [[routeros]] in the configuration: nowhere to send the disconnect", ss.ID, login, ss.NAS)
	}
	addr, err := radiusTarget(ss, nas)
	if err != nil {
		return p, fmt.Errorf("session %s of %s: %w", ss.ID, login, err)
	}
	port := nas.CoAPort
	if port == 0 {
		port = radius.DefaultCoAPort
	}
	p.via = viaRADIUS
	p.req = radius.DisconnectRequest{
		NAS:           net.JoinHostPort(addr.String(), strconv.Itoa(port)),
		Secret:        radius.Secret(nas.DisconnectSecret().Reveal()),
		UserName:      login,
		AcctSessionID: ss.ID,
	}
	if a, err := netip.ParseAddr(ss.IP); err == nil && a.Unmap().Is4() {
		p.req.FramedIP = a.Unmap()
	}
	if a, err := netip.ParseAddr(ss.NASIP); err == nil {
		p.req.NASIP = a.Unmap()
	}
	return p, nil
}

// radiusTarget is where the Disconnect-Request goes: the [[nas]] address
// when it is one IP; for a CIDR, the session's NAS-IP-Address when the CIDR
// holds it (a NAS-IP-Address from outside it is not trusted as a
// destination).
func radiusTarget(ss watcher.Session, nas *config.NAS) (netip.Addr, error) {
	pfx := nas.Prefix()
	if pfx.IsSingleIP() {
		return pfx.Addr(), nil
	}
	a, err := netip.ParseAddr(ss.NASIP)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("[[nas]] %q is a range (%s) and the session's accounting had no NAS-IP-Address: cannot tell which NAS to ask; give the NAS its own [[nas]] entry", nas.Name, pfx)
	}
	if !pfx.Contains(a.Unmap()) {
		return netip.Addr{}, fmt.Errorf("[[nas]] %q is a range (%s) that does not hold the session's NAS-IP-Address %s: not sending a disconnect there; give the NAS its own [[nas]] entry", nas.Name, pfx, a)
	}
	return a.Unmap(), nil
}

// routerFor returns the [[routeros]] router that is the session's NAS: by
// name, or by address (the [[nas]] entry's single IP or the session's
// NAS-IP-Address equal to the router's API address). A loopback address
// names no particular box (every concentrator of a lab or the demo is on
// 127.0.0.1): it never matches.
func (d *Daemon) routerFor(ss watcher.Session, nas *config.NAS) *router {
	routers := d.routerList()
	var ips []netip.Addr
	if nas != nil && nas.Prefix().IsSingleIP() {
		ips = append(ips, nas.Prefix().Addr().Unmap())
	}
	if a, err := netip.ParseAddr(ss.NASIP); err == nil {
		ips = append(ips, a.Unmap())
	}
	for i, r := range routers {
		if r.cfg.Name == ss.NAS || ss.Source == "routeros:"+r.cfg.Name {
			return &routers[i]
		}
	}
	for i, r := range routers {
		host := r.cfg.Address
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil && !a.IsLoopback() && slices.Contains(ips, a.Unmap()) {
			return &routers[i]
		}
	}
	return nil
}

// end carries out one plan and returns the NAS's answer in the terms of
// radius.DisconnectResult, and the detail to show.
func (d *Daemon) end(ctx context.Context, login string, p sessionPlan) (radius.DisconnectResult, string) {
	if p.router == nil {
		res, err := radius.Disconnect(ctx, p.req, d.actions.radiusOpts)
		switch {
		case err != nil && res.Result == "":
			res.Result = radius.ResultTimeout
			return res, "not sent: " + err.Error()
		case res.Result == radius.ResultTimeout:
			return res, res.Detail
		}
		return res, res.Detail + " from " + p.req.NAS
	}
	done, detail, err := p.router.src.RemoveSession(ctx, p.ss.ID, login)
	if errors.Is(err, routeros.ErrNotConnected) {
		done, detail, err = routeros.Disconnect(ctx, p.router.cfg.Source(), p.ss.ID, login)
	}
	switch {
	case err != nil:
		return radius.DisconnectResult{Result: radius.ResultTimeout}, "no answer from the router: " + err.Error()
	case done:
		return radius.DisconnectResult{Result: radius.ResultDone}, detail
	default:
		return radius.DisconnectResult{Result: radius.ResultRefused}, detail
	}
}

// auditDisconnect writes the audit entry of a disconnect before anything is
// sent. Desk mode has no accounts and keeps no audit log.
func (d *Daemon) auditDisconnect(ctx context.Context, rq webui.DisconnectRequest, plans []sessionPlan) error {
	if d.auth == nil {
		return nil
	}
	targets := make([]string, len(plans))
	for i, p := range plans {
		targets[i] = fmt.Sprintf("session %s on %s via %s", p.ss.ID, p.ss.NAS, p.via)
	}
	e := auth.AuditEntry{
		At: time.Now().UTC(), User: rq.Who.User, Method: rq.Who.Method, Action: "disconnect",
		Login: clip(rq.Login, 253), Query: clip(strings.Join(targets, "; "), 253),
	}
	if rq.Remote.IsValid() {
		e.Remote = rq.Remote.String()
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := d.auth.Store().AppendAudit(actx, e); err != nil {
		d.log.Error("disconnect: cannot write the audit log; nothing sent", "login", rq.Login, "user", rq.Who.User, "err", err)
		return fmt.Errorf("store unavailable: the disconnect cannot be recorded in the audit log, so nothing was sent: %w", err)
	}
	return nil
}

// actionEvent is the action event of one session's disconnect.
func actionEvent(login string, who auth.Identity, p sessionPlan, res radius.DisconnectResult, detail string) watcher.Event {
	by := who.User
	source := "agent:" + by
	if by == "" {
		by, source = "authwatch", "action"
	}
	var reason string
	if res.Result == radius.ResultDone {
		reason = fmt.Sprintf("session ended by %s via %s: done", by, p.via)
	} else {
		reason = fmt.Sprintf("%s asked to end the session via %s: %s — %s", by, p.via, res.Result, detail)
	}
	attrs := map[string]string{
		"action": "disconnect", "by": clip(by, 253), "via": p.via, "result": res.Result,
		"sent": clip(p.sent(), 1024), "answer": clip(detail, 1024),
	}
	if res.ErrorCause != 0 {
		attrs["error_cause"] = strconv.Itoa(res.ErrorCause)
	}
	if res.Tries > 0 {
		attrs["tries"] = strconv.Itoa(res.Tries)
	}
	return watcher.Event{
		At: time.Now(), Login: login, Kind: watcher.Action, Source: clip(source, 253),
		NAS: p.ss.NAS, SessionID: p.ss.ID, MAC: p.ss.MAC, IP: p.ss.IP,
		Reason: clip(reason, 1024), Detail: &watcher.Detail{NASIP: p.ss.NASIP, Attributes: attrs},
	}
}

// severity orders results for the summary of several sessions: the worst
// one is the answer.
var severity = map[string]int{radius.ResultDone: 0, radius.ResultRefused: 1, radius.ResultTimeout: 2}

func summarize(out []webui.SessionDisconnect) webui.DisconnectResult {
	if len(out) == 1 {
		return webui.DisconnectResult{Result: out[0].Result, Via: out[0].Via, Detail: out[0].Detail}
	}
	res := webui.DisconnectResult{Result: radius.ResultDone, Sessions: out}
	var vias, details []string
	for _, s := range out {
		if severity[s.Result] > severity[res.Result] {
			res.Result = s.Result
		}
		if !slices.Contains(vias, s.Via) {
			vias = append(vias, s.Via)
		}
		details = append(details, fmt.Sprintf("%s on %s: %s (%s)", s.SessionID, s.NAS, s.Result, s.Detail))
	}
	res.Via, res.Detail = strings.Join(vias, ","), strings.Join(details, "; ")
	return res
}

// clip cuts s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
