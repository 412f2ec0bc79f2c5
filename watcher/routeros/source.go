package routeros

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-routeros/routeros/v3"
	"github.com/go-routeros/routeros/v3/proto"

	"authwatch/watcher"
)

// Timing of the source, named so the choices are visible.
const (
	// stableAfter is how long a connection must last for the backoff to
	// start again from ReconnectMin.
	stableAfter = time.Minute
	// relistenAfter is when a connection whose listen the router refused
	// is redone, in case the cause (a policy, a package) was fixed.
	relistenAfter = 10 * time.Minute
	// causeWindow is how long a "terminating... - reason" log line waits
	// for the session's removal from /ppp/active to give it its reason.
	causeWindow = 2 * time.Minute
	// radiusWindow is how long after "RADIUS server … not responding" an
	// authentication failure is blamed on it.
	radiusWindow = 30 * time.Second
	// maxBatch is how many listen sentences become one commit.
	maxBatch = 256
	// maxUnsent bounds log events kept for retry while the store fails.
	maxUnsent = 10000
	// badLogEvery rate-limits the log line about malformed replies.
	badLogEvery = 10 * time.Second
)

// Recorder is where the source hands its events: Commit stores them
// durably and returns once they are (or with the error that kept them out).
// *watcher.Recorder is one.
type Recorder interface {
	Commit(ctx context.Context, evs ...watcher.Event) ([]watcher.Event, error)
}

var _ Recorder = (*watcher.Recorder)(nil)

// Status is how the connection to one router is doing, for /api/routers and
// /healthz.
type Status struct {
	Name      string `json:"name"`
	Address   string `json:"address"`
	Connected bool   `json:"connected"`
	// Since is when the current state began: connected since, or
	// disconnected since.
	Since    time.Time `json:"since,omitzero"`
	Identity string    `json:"identity,omitempty"` // /system/identity name
	Version  string    `json:"version,omitempty"`  // RouterOS version
	// LastError is the last thing that went wrong (connection, login,
	// TLS, a refused listen, the store); it stays after recovery, with its
	// time, so an agent can see what happened.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Reconnects counts connections made after the first one; Failures
	// counts failed attempts and lost connections.
	Reconnects int64 `json:"reconnects"`
	Failures   int64 `json:"failures"`
	// Sessions is the size of /ppp/active as last recorded.
	Sessions int `json:"sessions"`
	// SessionsListen and LogListen tell whether the router's listen is in
	// use (otherwise sessions are polled only, and the log is not read).
	SessionsListen bool      `json:"sessions_listen"`
	LogListen      bool      `json:"log_listen"`
	LastPoll       time.Time `json:"last_poll,omitzero"`
	// Events counts events recorded; Malformed counts replies that were
	// malformed or unexpected (bad framing, unknown reply words, items
	// without .id or name, traps on listens); LogLines counts log lines
	// read and LogDropped those in followed topics that named no login.
	Events     int64 `json:"events"`
	Malformed  int64 `json:"malformed"`
	LogLines   int64 `json:"log_lines"`
	LogDropped int64 `json:"log_dropped"`
}

// Source follows one RouterOS router: its /ppp/active table (listen, plus a
// full read every PollInterval) and its log, and records what changes as
// watcher events with Source "routeros:<name>" and NAS = the router's name.
//
// At first start, sessions already up are recorded as session.update
// ("already up when authwatch connected"), not session.start: they did not
// start now, and an update opens the session in the customer's state with
// its start time computed from the router's uptime. After a reconnect the
// table is read again and compared with what was recorded, so sessions that
// stayed up produce no event, and only real differences are recorded:
// session.start (dated by the router's uptime) for sessions that came up
// meanwhile, session.stop for those that ended.
type Source struct {
	cfg    Config
	cfgErr error
	rec    Recorder
	log    *slog.Logger
	source string

	running atomic.Bool

	events, malformed, logLines, logDropped, reconnects, failures atomic.Int64

	mu sync.Mutex
	st Status // the fields not kept in the counters above
	// cmds takes RemoveSession's requests while a connection serves (nil
	// otherwise); cmdsGone is closed when that connection ends.
	cmds     chan removeRequest
	cmdsGone chan struct{}

	// Owned by Run's goroutine.
	known      map[string]row // /ppp/active as recorded, by .id
	synced     bool           // a full read has been recorded since New
	everUp     bool           // some connection succeeded since New
	causes     map[string]cause
	radiusDown time.Time
	unsent     []watcher.Event // log events whose commit failed, to retry
	lastBadLog time.Time
	resumed    map[string]OpenSession // from Resume, until the first read
	off        checksOff              // session checks the router refused on this connection
	rechecks   map[string]recheck     // sessions to check once more, by .id
}

// OpenSession is a session of this router that the customers' state still
// has open from an earlier run of authwatch (see Resume).
type OpenSession struct {
	Login     string
	SessionID string
	MAC       string
	IP        string
}

func resumeKey(login, sessionID string) string { return login + "\x00" + sessionID }

// Resume tells the source, before Run, which of its sessions the state
// rebuilt from the store still has open. The first read of /ppp/active then
// records a session.stop for those that ended while authwatch was not
// running, nothing for those still up (unless their address changed), and
// session.update for the others, as without Resume.
func (s *Source) Resume(open []OpenSession) {
	if s.running.Load() {
		s.log.Error("routeros: Resume called while running; ignored")
		return
	}
	s.resumed = make(map[string]OpenSession, len(open))
	for _, o := range open {
		s.resumed[resumeKey(o.Login, o.SessionID)] = o
	}
}

// cause is a reason RouterOS logged for terminating a login's session.
type cause struct {
	reason, cause string
	at            time.Time
}

// New returns a source for one router. cfg is validated by Run (and should
// be at start, with Validate); logger may be nil.
func New(cfg Config, rec Recorder, logger *slog.Logger) *Source {
	if logger == nil {
		logger = slog.Default()
	}
	s := &Source{
		cfgErr: cfg.Validate(),
		cfg:    cfg.withDefaults(),
		rec:    rec,
		log:    logger.With("router", cfg.Name),
		source: "routeros:" + cfg.Name,
		known:  map[string]row{},
		causes: map[string]cause{},
	}
	s.st = Status{Name: cfg.Name, Address: s.cfg.Address, Since: time.Now()}
	return s
}

// Name returns the router's name from the configuration.
func (s *Source) Name() string { return s.cfg.Name }

// Status returns the connection's state and counters.
func (s *Source) Status() Status {
	s.mu.Lock()
	st := s.st
	s.mu.Unlock()
	st.Events, st.Malformed = s.events.Load(), s.malformed.Load()
	st.LogLines, st.LogDropped = s.logLines.Load(), s.logDropped.Load()
	st.Reconnects, st.Failures = s.reconnects.Load(), s.failures.Load()
	return st
}

// Run connects to the router and follows it until ctx ends, reconnecting
// with exponential backoff and jitter whenever the connection cannot be made
// or is lost. It returns nil when ctx ends, and an error only for a
// configuration that can never work. Every goroutine it starts has ended
// when it returns. Run must not be called twice at once.
func (s *Source) Run(ctx context.Context) error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	if !s.running.CompareAndSwap(false, true) {
		return fmt.Errorf("routeros %q: already running", s.cfg.Name)
	}
	defer s.running.Store(false)

	var lastMsg string
	for attempt := 0; ; attempt++ {
		up, err := s.connectAndServe(ctx)
		if ctx.Err() != nil {
			s.setDown(nil)
			return nil
		}
		if up >= stableAfter {
			attempt = 0
		}
		delay := backoff(s.cfg.ReconnectMin, s.cfg.ReconnectMax, attempt)
		if errors.Is(err, errRelisten) {
			s.setDown(nil)
			s.log.Info("routeros: reconnecting to retry refused listens")
		} else {
			s.failures.Add(1)
			s.setDown(err)
			// A router that stays down says so once, then every tenth try.
			level := slog.LevelWarn
			if msg := err.Error(); msg == lastMsg && attempt%10 != 0 {
				level = slog.LevelDebug
			} else {
				lastMsg = msg
			}
			s.log.Log(ctx, level, "routeros: not connected; will retry", "err", err, "attempt", attempt+1, "retry_in", delay.Round(time.Millisecond))
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			s.setDown(nil)
			return nil
		case <-t.C:
		}
	}
}

// backoff returns the wait before attempt n (from 0): min·2ⁿ capped at max,
// then jittered into [d/2, d) so that many routers dropped by one outage do
// not all come back in the same second.
func backoff(minD, maxD time.Duration, n int) time.Duration {
	d := minD
	for i := 0; i < n && d < maxD; i++ {
		d *= 2
	}
	d = min(d, maxD)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

// errRelisten ends a connection so that refused listens are tried again.
var errRelisten = errors.New("retrying refused listens")

// connectAndServe makes one connection (a command link and a listen link)
// and follows the router until it fails. It
// returns how long the connection was up.
func (s *Source) connectAndServe(ctx context.Context) (time.Duration, error) {
	pw, err := s.cfg.password()
	if err != nil {
		return 0, s.errf("%w", err)
	}
	cmd, err := dialLink(ctx, s.cfg, pw, s.onFraming)
	if err != nil {
		return 0, s.errf("%w", err)
	}
	defer cmd.close(s.log)
	identity, version, err := s.check(cmd)
	if err != nil {
		return 0, err
	}
	// Validate makes sure at least one of sessions and log is on, so
	// there is always something to listen to.
	lis, err := dialLink(ctx, s.cfg, pw, s.onFraming)
	if err != nil {
		return 0, s.errf("listen link: %w", err)
	}
	defer lis.close(s.log)
	lis.startListening()
	if s.everUp {
		s.reconnects.Add(1)
	}
	s.everUp = true
	start := time.Now()
	s.setUp(identity, version)
	s.log.Info("routeros: connected", "address", s.cfg.Address, "identity", identity, "version", version)
	err = s.serve(ctx, cmd, lis)
	return time.Since(start), err
}

// check reads the router's identity and version: the connection check an
// admin can repeat by hand (see the package documentation).
func (s *Source) check(cmd *link) (identity, version string, err error) {
	r, err := cmd.run(s.cfg.DialTimeout, "/system/identity/print")
	if err != nil {
		s.countReplyError(err)
		return "", "", s.errf("/system/identity/print: %w", err)
	}
	if len(r.Re) > 0 {
		identity = clean(r.Re[0].Map["name"], 64)
	}
	r, err = cmd.run(s.cfg.DialTimeout, "/system/resource/print", "=.proplist=version,board-name")
	if err != nil {
		s.countReplyError(err)
		return "", "", s.errf("/system/resource/print: %w", err)
	}
	if len(r.Re) > 0 {
		version = clean(r.Re[0].Map["version"], 64)
	}
	return identity, version, nil
}

// pollTimeout bounds one full read of /ppp/active; a router slower than
// that is treated as gone.
func (s *Source) pollTimeout() time.Duration {
	return max(3*s.cfg.PollInterval, 30*time.Second)
}

// serve is the loop of one connection: it owns the known table, reads the
// listens, polls on the ticker, and returns when anything fails.
func (s *Source) serve(ctx context.Context, cmd, lis *link) error {
	sessions, logs := s.cfg.SessionsEnabled(), s.cfg.LogEnabled()
	var sessL, logL *routeros.ListenReply
	var sessC, logC <-chan *proto.Sentence
	var err error
	asyncErr := lis.asyncErr
	if sessions {
		if sessL, err = lis.listen("/ppp/active/listen"); err != nil {
			return s.errf("listen /ppp/active: %w", err)
		}
		sessC = sessL.Chan()
	}
	if logs {
		if logL, err = lis.listen("/log/listen"); err != nil {
			return s.errf("listen /log: %w", err)
		}
		logC = logL.Chan()
	}
	s.setListening(sessC != nil, logC != nil)
	s.off = checksOff{}
	cmds, cmdsGone := s.openCommands()
	defer s.closeCommands(cmdsGone)

	// The first read comes after the listens are up, so that no change can
	// fall between the two; it is also the resync after a reconnect.
	if sessions {
		if err := s.poll(ctx, cmd, true); err != nil {
			return err
		}
	}
	ticker := time.NewTicker(s.cfg.PollInterval)
	defer ticker.Stop()
	var relisten <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()

		case err, ok := <-asyncErr:
			if !ok || err == nil {
				err = errors.New("closed")
			}
			s.countReplyError(err)
			return s.errf("listen link: %w", err)

		case sen, ok := <-sessC:
			if !ok {
				sessC = nil
				if err := s.listenEnded("/ppp/active/listen", sessL); err != nil {
					return err
				}
				s.setListening(false, logC != nil)
				relisten = time.After(relistenAfter)
				continue
			}
			if err := s.logsFirst(ctx, cmd, logC); err != nil {
				return err
			}
			if err := s.onSessions(ctx, cmd, gather(sen, sessC)); err != nil {
				return err
			}

		case sen, ok := <-logC:
			if !ok {
				logC = nil
				if err := s.listenEnded("/log/listen", logL); err != nil {
					return err
				}
				s.setListening(sessC != nil, false)
				relisten = time.After(relistenAfter)
				continue
			}
			if err := s.onLog(ctx, cmd, gather(sen, logC)); err != nil {
				return err
			}

		case <-ticker.C:
			s.pruneCauses(time.Now())
			s.retryUnsent(ctx)
			if !sessions {
				// Nothing to poll: a cheap command still proves the
				// router answers.
				if _, err := cmd.run(s.pollTimeout(), "/system/identity/print"); err != nil {
					s.countReplyError(err)
					return s.errf("/system/identity/print: %w", err)
				}
				continue
			}
			// Apply what the listens already delivered before reading the
			// table, so the read is compared with the freshest state.
			if err := s.logsFirst(ctx, cmd, logC); err != nil {
				return err
			}
			if sessC != nil {
				if batch := gather(nil, sessC); len(batch) > 0 {
					if err := s.onSessions(ctx, cmd, batch); err != nil {
						return err
					}
				}
			}
			if err := s.poll(ctx, cmd, false); err != nil {
				return err
			}
			if err := s.runRechecks(ctx, cmd, time.Now()); err != nil {
				return err
			}

		case rq := <-cmds:
			if err := s.serveRemove(cmd, rq); err != nil {
				return err
			}

		case <-relisten:
			return errRelisten
		}
	}
}

// logsFirst applies the log lines already received, before a change of
// /ppp/active is: the router writes "terminating... - <reason>" before the
// session leaves the table, and both come on the listen connection in that
// order, but from two channels that a select picks between at random. Read
// first, the line gives the stop its reason.
func (s *Source) logsFirst(ctx context.Context, cmd *link, logC <-chan *proto.Sentence) error {
	if logC == nil {
		return nil
	}
	if batch := gather(nil, logC); len(batch) > 0 {
		return s.onLog(ctx, cmd, batch)
	}
	return nil
}

// gather returns first (if not nil) and whatever else c already holds, up to
// maxBatch, without waiting: a burst becomes one commit.
func gather(first *proto.Sentence, c <-chan *proto.Sentence) []*proto.Sentence {
	batch := make([]*proto.Sentence, 0, 8)
	if first != nil {
		batch = append(batch, first)
	}
	for len(batch) < maxBatch {
		select {
		case sen, ok := <-c:
			if !ok {
				return batch
			}
			batch = append(batch, sen)
		default:
			return batch
		}
	}
	return batch
}

// listenEnded decides what a closed listen means. A !trap from the router
// (it refused or failed the listen) is reported and the connection goes on
// without it, until relistenAfter; anything else ends the connection.
func (s *Source) listenEnded(name string, l *routeros.ListenReply) error {
	err := l.Err()
	var de *routeros.DeviceError
	var ue *routeros.UnknownReplyError
	switch {
	case errors.As(err, &de):
		s.malformed.Add(1)
		msg := fmt.Sprintf("routeros %q: %s refused by the router: %s", s.cfg.Name, name, de.Sentence.Map["message"])
		s.setError(errors.New(msg))
		s.log.Warn("routeros: listen refused; going on without it", "listen", name, "message", clean(de.Sentence.Map["message"], 256), "retry_in", relistenAfter)
		return nil
	case errors.As(err, &ue):
		s.malformed.Add(1)
		return s.errf("%s: %w", name, err)
	case err != nil:
		return s.errf("%s: %w", name, err)
	case l.Done != nil:
		// "!trap =category=2 interrupted" or !done: someone cancelled it
		// on the router. Counted as unexpected; reconnecting resumes it.
		s.malformed.Add(1)
		return s.errf("%s: ended by the router", name)
	default:
		return s.errf("%s: connection closed", name)
	}
}

// poll reads the whole /ppp/active table and records the difference with
// what is known. resync marks the read that follows a (re)connect.
func (s *Source) poll(ctx context.Context, cmd *link, resync bool) error {
	r, err := cmd.run(s.pollTimeout(), "/ppp/active/print", "=.proplist="+sessionProps)
	if err != nil {
		var de *routeros.DeviceError
		if errors.As(err, &de) {
			return s.errf("print /ppp/active: refused by the router: %s", de.Sentence.Map["message"])
		}
		s.countReplyError(err)
		return s.errf("print /ppp/active: %w", err)
	}
	now := time.Now()
	snap := make(map[string]row, len(r.Re))
	for _, sen := range r.Re {
		rw, err := parseRow(sen.Map)
		if err != nil {
			s.bad("print /ppp/active", err)
			// Keep what was known of a broken item rather than stop it.
			if old, ok := s.known[sen.Map[".id"]]; ok {
				snap[old.id] = old
			}
			continue
		}
		if _, dup := snap[rw.id]; dup {
			s.bad("print /ppp/active", fmt.Errorf("item %s twice", rw.id))
		}
		snap[rw.id] = rw
	}
	phase := phasePoll
	switch {
	case !s.synced:
		phase = phaseFirst
	case resync:
		phase = phaseResync
	}
	var evs []watcher.Event
	if phase == phaseFirst && len(s.resumed) > 0 {
		evs = s.resumeEvents(snap, now)
	} else {
		evs = s.changeEvents(diff(s.known, snap), now, phase)
	}
	checkErr := s.checkSessions(cmd, evs)
	if !s.commit(ctx, evs) {
		return checkErr // the table stays as recorded; the next poll tries again
	}
	s.known, s.synced, s.resumed = snap, true, nil
	s.mu.Lock()
	s.st.Sessions, s.st.LastPoll = len(snap), now
	s.mu.Unlock()
	return checkErr
}

// phase says which read produced a change, which decides its kind and
// reason.
type phase int

const (
	phaseListen phase = iota // a listen update
	phasePoll                // a periodic read while connected
	phaseResync              // the read after a reconnect
	phaseFirst               // the first read since New
)

func (s *Source) changeEvents(changes []change, now time.Time, ph phase) []watcher.Event {
	evs := make([]watcher.Event, 0, len(changes))
	for _, c := range changes {
		switch c.kind {
		case watcher.SessionStop:
			evs = append(evs, s.stopEvent(c.r, now, ph))
		case watcher.SessionStart:
			evs = append(evs, s.startEvent(c.r, now, ph))
		default:
			evs = append(evs, s.sessionEvent(watcher.SessionUpdate, c.r, now, ""))
		}
	}
	return evs
}

// resumeEvents compares the first read with the sessions Resume said are
// open, matching them by login and session id (a restart of authwatch does
// not know the .ids).
func (s *Source) resumeEvents(snap map[string]row, now time.Time) []watcher.Event {
	current := make(map[string]bool, len(snap))
	for _, r := range snap {
		current[resumeKey(r.name, r.sessionID)] = true
	}
	var evs []watcher.Event
	// Stops first, as diff orders them.
	keys := make([]string, 0, len(s.resumed))
	for k := range s.resumed {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if o := s.resumed[k]; !current[k] {
			r := row{name: o.Login, sessionID: o.SessionID, mac: o.MAC, ip: o.IP}
			evs = append(evs, s.sessionEvent(watcher.SessionStop, r, now, "ended while authwatch was not running"))
		}
	}
	ids := make([]string, 0, len(snap))
	for id := range snap {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		r := snap[id]
		o, ok := s.resumed[resumeKey(r.name, r.sessionID)]
		switch {
		case !ok:
			evs = append(evs, s.startEvent(r, now, phaseFirst))
		case o.IP != r.ip || o.MAC != r.mac:
			evs = append(evs, s.sessionEvent(watcher.SessionUpdate, r, now, ""))
		}
	}
	return evs
}

// onSessions applies listen updates of /ppp/active: full items for new or
// changed sessions, ".dead" items for removed ones. It returns an error only
// when the command link broke while checking the new sessions.
func (s *Source) onSessions(ctx context.Context, cmd *link, batch []*proto.Sentence) error {
	now := time.Now()
	pending := map[string]*row{} // nil: removed
	lookup := func(id string) (row, bool) {
		if p, ok := pending[id]; ok {
			if p == nil {
				return row{}, false
			}
			return *p, true
		}
		r, ok := s.known[id]
		return r, ok
	}
	var evs []watcher.Event
	for _, sen := range batch {
		m := sen.Map
		if d := m[".dead"]; d == "yes" || d == "true" {
			if old, ok := lookup(m[".id"]); ok {
				evs = append(evs, s.stopEvent(old, now, phaseListen))
				pending[old.id] = nil
			}
			continue
		}
		r, err := parseRow(m)
		if err != nil {
			s.bad("listen /ppp/active", err)
			continue
		}
		old, ok := lookup(r.id)
		switch {
		case !ok:
			evs = append(evs, s.startEvent(r, now, phaseListen))
		case !r.sameSession(old):
			evs = append(evs, s.stopEvent(old, now, phaseListen), s.startEvent(r, now, phaseListen))
		case r.ip != old.ip || r.mac != old.mac:
			evs = append(evs, s.sessionEvent(watcher.SessionUpdate, r, now, ""))
		}
		pending[r.id] = &r
	}
	checkErr := s.checkSessions(cmd, evs)
	if !s.commit(ctx, evs) {
		return checkErr // the next poll finds the difference again
	}
	for id, p := range pending {
		if p == nil {
			delete(s.known, id)
		} else {
			s.known[id] = *p
		}
	}
	s.mu.Lock()
	s.st.Sessions = len(s.known)
	s.mu.Unlock()
	return checkErr
}

// sessionEvent builds a session event from a row.
func (s *Source) sessionEvent(kind watcher.Kind, r row, at time.Time, reason string) watcher.Event {
	d := &watcher.Detail{Service: r.service, Uptime: r.uptime, Attributes: map[string]string{}}
	if r.id != "" {
		d.Attributes["id"] = r.id
	}
	if up, ok := parseUptime(r.uptime); ok && up > 0 {
		d.SessionTime = uint32(min(up/time.Second, 1<<32-1))
	}
	if r.encoding != "" {
		d.Attributes["encoding"] = r.encoding
	}
	if r.radius != "" {
		d.Attributes["radius"] = r.radius
	}
	if r.rawSID != "" && r.rawSID != r.sessionID {
		d.Attributes["session-id"] = r.rawSID
	}
	if r.mac == "" && r.callerID != "" {
		d.Attributes["caller-id"] = r.callerID
	}
	ev := watcher.Event{
		At: at, Kind: kind, Login: r.name, Source: s.source, NAS: s.cfg.Name,
		SessionID: r.sessionID, MAC: r.mac, Reason: reason, Detail: d,
	}
	if isIPv6(r.ip) {
		d.IPv6Address = r.ip
	} else {
		ev.IP = r.ip
	}
	return ev
}

func (s *Source) startEvent(r row, now time.Time, ph phase) watcher.Event {
	if ph == phaseFirst {
		return s.sessionEvent(watcher.SessionUpdate, r, now, "already up when authwatch connected")
	}
	// Dated by the router's uptime: after a reconnect the session may have
	// come up minutes ago.
	at := now
	if up, ok := parseUptime(r.uptime); ok && up > 0 && up < 10*365*24*time.Hour {
		at = now.Add(-up)
	}
	return s.sessionEvent(watcher.SessionStart, r, at, "")
}

func (s *Source) stopEvent(r row, now time.Time, ph phase) watcher.Event {
	reason := "gone from /ppp/active"
	if ph == phaseResync {
		reason = "ended while authwatch was not connected to the router"
	}
	var tc string
	if c, ok := s.causes[r.name]; ok && now.Sub(c.at) < causeWindow {
		reason, tc = c.reason, c.cause
		delete(s.causes, r.name)
	}
	ev := s.sessionEvent(watcher.SessionStop, r, now, reason)
	ev.Detail.TerminateCause = tc
	return ev
}

func (s *Source) pruneCauses(now time.Time) {
	for login, c := range s.causes {
		if now.Sub(c.at) >= causeWindow {
			delete(s.causes, login)
		}
	}
}

// onLog turns /log lines into events. It returns an error only when the
// command link broke while checking a session that a log line started.
func (s *Source) onLog(ctx context.Context, cmd *link, batch []*proto.Sentence) error {
	now := time.Now()
	var evs []watcher.Event
	for _, sen := range batch {
		s.logLines.Add(1)
		msg, ok := sen.Map["message"]
		if !ok {
			s.bad("listen /log", errors.New("line without message"))
			continue
		}
		topics := sen.Map["topics"]
		if !keepTopics(topics) {
			continue
		}
		l, ok := parseLogLine(msg)
		if !ok {
			s.logDropped.Add(1)
			continue
		}
		evs = append(evs, s.logEvent(l, topics, msg, sen.Map["time"], now))
	}
	checkErr := s.checkSessions(cmd, evs)
	if len(evs) > 0 && !s.commit(ctx, evs) && ctx.Err() == nil {
		s.keepUnsent(evs)
	}
	return checkErr
}

// logEvent builds the event for one understood log line. With the sessions
// source off, the account lines stand in for /ppp/active: "logged in"
// starts a session and "logged out" stops it (keyed by login, as they carry
// no session id).
func (s *Source) logEvent(l logLine, topics, msg, routerTime string, now time.Time) watcher.Event {
	d := &watcher.Detail{Attributes: map[string]string{
		"topics": clean(topics, 128), "message": clean(msg, maxLogMessage), "rule": l.rule,
	}}
	if routerTime != "" {
		// Router-local time without a zone; At is when it arrived.
		d.Attributes["time"] = clean(routerTime, 32)
	}
	ev := watcher.Event{
		At: now, Kind: watcher.Log, Login: l.login, Source: s.source, NAS: s.cfg.Name,
		MAC: l.mac, Reason: clean(msg, maxLogMessage), Detail: d,
	}
	if isIPv6(l.ip) {
		d.IPv6Address = l.ip
	} else {
		ev.IP = l.ip
	}
	if l.hasCounters {
		d.SessionTime, d.InputOctets, d.OutputOctets = l.sessionTime, l.inOctets, l.outOctets
		d.InputPackets, d.OutputPackets = l.inPackets, l.outPackets
	}
	switch l.meaning {
	case logAuthOK:
		ev.Kind, ev.Reason = watcher.AuthAccept, l.reason
	case logAuthFailed:
		ev.Kind, ev.Reason = watcher.AuthReject, l.reason
		if !s.radiusDown.IsZero() && now.Sub(s.radiusDown) < radiusWindow {
			ev.Reason += " (RADIUS server not responding)"
		}
	case logTerminating:
		d.TerminateCause = l.cause
		s.causes[l.login] = cause{reason: l.reason, cause: l.cause, at: now}
	case logRadiusTimeout:
		// About every customer of this router: no login, the firehose
		// shows it.
		s.radiusDown = now
		d.Attributes["radius_server"] = clean(l.server, 64)
	case logLoggedIn:
		if !s.cfg.SessionsEnabled() {
			ev.Kind, ev.Reason = watcher.SessionStart, ""
		}
	case logLoggedOut:
		if !s.cfg.SessionsEnabled() {
			ev.Kind, ev.Reason = watcher.SessionStop, "logged out"
			if c, ok := s.causes[l.login]; ok && now.Sub(c.at) < causeWindow {
				ev.Reason, d.TerminateCause = c.reason, c.cause
				delete(s.causes, l.login)
			}
		}
	}
	return ev
}

// commit validates and records evs, reporting whether they are stored.
// Events the store would refuse are dropped and counted here, so that one
// bad item cannot make a whole batch fail forever.
func (s *Source) commit(ctx context.Context, evs []watcher.Event) bool {
	ok := make([]watcher.Event, 0, len(evs))
	for _, ev := range evs {
		if err := ev.Validate(); err != nil {
			s.bad("event", err)
			continue
		}
		ok = append(ok, ev)
	}
	if len(ok) == 0 {
		return true
	}
	if _, err := s.rec.Commit(ctx, ok...); err != nil {
		if ctx.Err() == nil {
			s.setError(s.errf("record %d events: %w", len(ok), err))
			s.log.Error("routeros: events not recorded", "events", len(ok), "err", err)
		}
		return false
	}
	s.events.Add(int64(len(ok)))
	return true
}

// keepUnsent holds log events whose commit failed, for retryUnsent; a
// listen cannot replay them. The oldest go first when the store stays down.
func (s *Source) keepUnsent(evs []watcher.Event) {
	s.unsent = append(s.unsent, evs...)
	if over := len(s.unsent) - maxUnsent; over > 0 {
		s.log.Error("routeros: store down too long; dropping oldest log events", "dropped", over)
		s.unsent = append(s.unsent[:0], s.unsent[over:]...)
	}
}

func (s *Source) retryUnsent(ctx context.Context) {
	if len(s.unsent) == 0 {
		return
	}
	if s.commit(ctx, s.unsent) {
		s.unsent = nil
	}
}

// bad counts a malformed reply and logs it, at most once per badLogEvery.
func (s *Source) bad(where string, err error) {
	n := s.malformed.Add(1)
	if now := time.Now(); now.Sub(s.lastBadLog) >= badLogEvery {
		s.lastBadLog = now
		s.log.Warn("routeros: malformed reply ignored", "where", where, "err", err, "malformed_total", n)
	}
}

// countReplyError counts errors of the library that mean the router's reply
// was malformed (as opposed to a lost connection): an unknown reply word, or
// a word that is neither an attribute nor a tag. Framing errors are counted
// by onFraming.
func (s *Source) countReplyError(err error) {
	var ue *routeros.UnknownReplyError
	if errors.As(err, &ue) || strings.Contains(err.Error(), "invalid RouterOS sentence word") {
		s.malformed.Add(1)
	}
}

// onFraming is told by a link's frameGuard about broken framing (on the
// library's goroutine; the connection then fails and is redone).
func (s *Source) onFraming(err error) {
	s.malformed.Add(1)
	s.log.Warn("routeros: malformed reply; dropping the connection", "err", err)
}

// errf wraps err with the router's name, the way every error of the source
// reads: routeros "bras-centro": listen /log: ….
func (s *Source) errf(format string, args ...any) error {
	return fmt.Errorf("routeros %q: "+format, append([]any{s.cfg.Name}, args...)...)
}

func (s *Source) setUp(identity, version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Connected, s.st.Since = true, time.Now()
	s.st.Identity, s.st.Version = identity, version
}

// setDown records a lost or failed connection; err nil means a clean stop.
func (s *Source) setDown(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Connected || s.st.Since.IsZero() {
		s.st.Since = time.Now()
	}
	s.st.Connected, s.st.SessionsListen, s.st.LogListen = false, false, false
	if err != nil {
		s.st.LastError, s.st.LastErrorAt = err.Error(), time.Now()
	}
}

func (s *Source) setError(err error) {
	s.mu.Lock()
	s.st.LastError, s.st.LastErrorAt = err.Error(), time.Now()
	s.mu.Unlock()
}

func (s *Source) setListening(sessions, log bool) {
	s.mu.Lock()
	s.st.SessionsListen, s.st.LogListen = sessions, log
	s.mu.Unlock()
}

func isIPv6(ip string) bool {
	for i := 0; i < len(ip); i++ {
		if ip[i] == ':' {
			return true
		}
	}
	return false
}
