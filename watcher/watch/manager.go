package watch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/probe"
)

// Limits on a watch's timeout.
const (
	DefaultTimeout = 5 * time.Minute
	MaxTimeout     = 2 * time.Hour
	MinTimeout     = 2 * time.Second
)

// Errors of the Manager's API.
var (
	ErrNoLogin    = errors.New("watch: a login is required")
	ErrBadTimeout = fmt.Errorf("watch: timeout must be between %s and %s", MinTimeout, MaxTimeout)
	ErrNoSession  = errors.New("no session with an IP address is known for this login")
)

// Recorder is where probe results go (satisfied by *watcher.Recorder).
type Recorder interface {
	Commit(ctx context.Context, evs ...watcher.Event) ([]watcher.Event, error)
}

// Options build a Manager. Store, State and Recorder are required.
type Options struct {
	Store    watcher.WatchStore
	Events   watcher.Store // to catch up restored watches
	State    *watcher.State
	Recorder Recorder
	Prober   *probe.Prober // nil: the CPE is not probed, online ends a watch
	// Lead, when set, is asked before each probe of a watch's CPE: several
	// instances sharing one database may run the same watch, and only the
	// one Lead says yes to probes it (the others ask again at the next
	// pause, and take over if it goes away). Unlead is told when this
	// instance stops probing the watch. Nil: this instance always probes.
	Lead func(ctx context.Context, watchID string) bool
	// Shared is set when several instances share the store: each then
	// follows the watches the others start, end or cancel (read from the
	// store every few seconds), so an agent on any instance sees every
	// watch's progress.
	Shared  bool
	Unlead  func(watchID string)
	Outages *OutageDetector
	// Notify is told every change of a watch (a copy, safe to keep).
	Notify func(View)
	// NotifyOutage is told of every new outage notice and the logins it
	// touches (those with a session on that NAS).
	NotifyOutage func(Outage, []string)
	Timeout      time.Duration // default for watches that ask for none
	Logger       *slog.Logger
}

// View is a watch as the API and the websocket show it: the watch, its
// elapsed time and its verdict in both languages.
type View struct {
	*Watch
	ElapsedSec  float64         `json:"elapsed"`
	VerdictText map[Lang]string `json:"verdict_text"`
}

// Manager keeps the active watches, feeds them the committed events, ends
// them at their deadline, probes the CPE of those online, and stores every
// change.
type Manager struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex
	active  map[string]*Watch // by id
	probing map[string]bool   // watch ids with a probe loop running
	dirty   chan string       // ids whose change is to be saved and announced

	wg sync.WaitGroup // probe loops
}

// NewManager returns a Manager; call Load, then Run.
func NewManager(o Options) *Manager {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Outages == nil {
		o.Outages = &OutageDetector{}
	}
	return &Manager{o: o, log: o.Logger, active: map[string]*Watch{}, probing: map[string]bool{}, dirty: make(chan string, 4096)}
}

func (m *Manager) view(w *Watch, now time.Time) View {
	cp := *w
	cp.Marks = append([]Mark(nil), w.Marks...)
	cp.Rejects = append([]Reject{}, w.Rejects...)
	cp.Notes = append([]string(nil), w.Notes...)
	return View{Watch: &cp, ElapsedSec: math.Round(w.Elapsed(now).Seconds()*10) / 10,
		VerdictText: map[Lang]string{PtBR: w.VerdictText(PtBR, now), En: w.VerdictText(En, now)}}
}

// Load restores the watches that were running when authwatch stopped and
// applies the events they missed meanwhile.
func (m *Manager) Load(ctx context.Context) error {
	recs, err := m.o.Store.ActiveWatches(ctx)
	if err != nil {
		return fmt.Errorf("watch: restore: %w", err)
	}
	for _, r := range recs {
		w := new(Watch)
		if err := json.Unmarshal(r.Data, w); err != nil {
			m.log.Error("watch: cannot restore a stored watch; skipped", "watch", r.ID, "err", err)
			continue
		}
		if m.o.Events != nil {
			missed, err := m.o.Events.Events(ctx, watcher.Query{Login: w.Login, After: w.LastSeq, Limit: 10000})
			if err != nil {
				return fmt.Errorf("watch %s: catch up: %w", w.ID, err)
			}
			for _, ev := range missed {
				w.Apply(ev)
			}
		}
		m.mu.Lock()
		m.active[w.ID] = w
		m.mu.Unlock()
		m.changed(w.ID)
	}
	if len(recs) > 0 {
		m.log.Info("watch: restored running watches", "watches", len(recs))
	}
	return nil
}

// StartRequest is the body of POST /api/watches.
type StartRequest struct {
	Login   string   `json:"login"`
	Ticket  string   `json:"ticket,omitempty"`
	Agent   string   `json:"agent,omitempty"`
	Timeout Duration `json:"timeout,omitempty"`
}

// Duration reads a JSON number of seconds or a Go duration string ("5m").
type Duration time.Duration

// UnmarshalJSON accepts 300 or "5m".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var secs float64
	if err := json.Unmarshal(b, &secs); err == nil {
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("timeout: a number of seconds or a duration like \"5m\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("timeout: %w", err)
	}
	*d = Duration(v)
	return nil
}

// Start begins watching a login from its current state.
func (m *Manager) Start(ctx context.Context, req StartRequest) (View, error) {
	if req.Login == "" || req.Login == watcher.Firehose {
		return View{}, ErrNoLogin
	}
	if len(req.Ticket) > 64 || len(req.Agent) > 64 {
		return View{}, errors.New("watch: ticket and agent are at most 64 characters")
	}
	timeout := time.Duration(req.Timeout)
	if timeout == 0 {
		timeout = m.o.Timeout
	}
	if timeout < MinTimeout || timeout > MaxTimeout {
		return View{}, ErrBadTimeout
	}
	c, _ := m.o.State.Customer(req.Login)
	now := time.Now().UTC()
	w := Begin(newID(), c, now, timeout, m.o.Prober != nil)
	w.Ticket, w.Agent = req.Ticket, req.Agent
	for _, o := range m.o.Outages.Active(now) {
		if w.Before != nil && w.Before.NAS == o.NAS {
			w.SetOutage(o)
		}
	}
	if err := m.save(ctx, w); err != nil {
		return View{}, err
	}
	m.mu.Lock()
	m.active[w.ID] = w
	m.mu.Unlock()
	// Events committed between reading the state and registering the watch
	// would be missed by Observe: catch up from the store.
	if m.o.Events != nil {
		if missed, err := m.o.Events.Events(ctx, watcher.Query{Login: w.Login, After: w.LastSeq, Limit: 1000}); err == nil {
			m.mu.Lock()
			for _, ev := range missed {
				w.Apply(ev)
			}
			m.mu.Unlock()
		}
	}
	m.mu.Lock()
	v := m.view(w, now)
	m.mu.Unlock()
	m.log.Info("watch started", "watch", w.ID, "login", w.Login, "ticket", w.Ticket, "agent", w.Agent)
	m.changed(w.ID)
	return v, nil
}

// Get returns a watch, running or ended.
func (m *Manager) Get(ctx context.Context, id string) (View, error) {
	m.mu.Lock()
	if w, ok := m.active[id]; ok {
		v := m.view(w, time.Now())
		m.mu.Unlock()
		return v, nil
	}
	m.mu.Unlock()
	r, err := m.o.Store.LoadWatch(ctx, id)
	if err != nil {
		return View{}, err
	}
	w := new(Watch)
	if err := json.Unmarshal(r.Data, w); err != nil {
		return View{}, fmt.Errorf("watch %s: %w", id, err)
	}
	return m.view(w, time.Now()), nil
}

// ForLogin returns the login's running watches.
func (m *Manager) ForLogin(login string) []View {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []View
	now := time.Now()
	for _, w := range m.active {
		if w.Login == login {
			out = append(out, m.view(w, now))
		}
	}
	return out
}

// Running returns every running watch, oldest first: the supervisor's list
// of customers being followed right now.
func (m *Manager) Running() []View {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	out := make([]View, 0, len(m.active))
	for _, w := range m.active {
		if w.Active() {
			out = append(out, m.view(w, now))
		}
	}
	slices.SortFunc(out, func(a, b View) int { return a.Started.Compare(b.Started) })
	return out
}

// Outages returns the mass-outage notices in force at now, newest first, so
// that a page opened after the notice was raised still shows it.
func (m *Manager) Outages(now time.Time) []Outage {
	out := m.o.Outages.Active(now)
	slices.SortFunc(out, func(a, b Outage) int { return b.Since.Compare(a.Since) })
	return out
}

// Cancel ends a running watch at an agent's request; an ended one is
// returned as it is.
func (m *Manager) Cancel(ctx context.Context, id string) (View, error) {
	m.mu.Lock()
	w, ok := m.active[id]
	if ok {
		w.Cancel(time.Now().UTC())
	}
	m.mu.Unlock()
	if !ok {
		return m.Get(ctx, id)
	}
	m.changed(id)
	return m.Get(ctx, id)
}

// Observe feeds a committed event to the watches it concerns. It is called
// on the recorder's path, so it only updates memory; saving and announcing
// happen in Run.
func (m *Manager) Observe(ev watcher.Event, logins []string) {
	closed := 0
	if ev.Kind == watcher.NASDown || ev.Kind == watcher.NASUp {
		closed = len(logins)
	}
	o := m.o.Outages.Observe(ev, closed)
	m.mu.Lock()
	var changed []string
	for id, w := range m.active {
		hit := w.Login == ev.Login
		for _, l := range logins {
			hit = hit || l == w.Login
		}
		if hit {
			applied := w.Apply(ev)
			// Online, but in the provider's block: that is the verdict.
			// The block comes before the session (the accept), with it,
			// or just after it (what its RouterOS router says of it once
			// the session has its address; the state may already know
			// it when an earlier event of the same batch gets here).
			blocked := false
			if a := w.After; a != nil && (a.IP != "" || a.IPv6 != "") && w.Blocked == nil {
				if c, _ := m.o.State.Customer(w.Login); c.Blocked != nil {
					blocked = w.SetBlocked(*c.Blocked, ev.At)
				}
			}
			if applied || blocked {
				changed = append(changed, id)
			}
		}
		if o != nil && w.Before != nil && w.Before.NAS == o.NAS && w.SetOutage(*o) && (len(changed) == 0 || changed[len(changed)-1] != id) {
			changed = append(changed, id)
		}
	}
	m.mu.Unlock()
	for _, id := range changed {
		m.changed(id)
	}
	if o != nil {
		m.log.Warn("outage: many customers of one NAS dropped", "nas", o.NAS, "cause", o.Cause)
		if m.o.NotifyOutage != nil {
			m.o.NotifyOutage(*o, m.loginsOn(o.NAS))
		}
	}
}

func (m *Manager) loginsOn(nas string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, w := range m.active {
		if w.Before != nil && w.Before.NAS == nas {
			out = append(out, w.Login)
		}
	}
	return out
}

// changed queues a watch to be saved and announced by Run.
func (m *Manager) changed(id string) {
	select {
	case m.dirty <- id:
	default:
		// Run is far behind; the next tick saves every active watch anyway.
		m.log.Warn("watch: change queue full; will catch up", "watch", id)
	}
}

// Run saves and announces changes, ends watches at their deadline and runs
// the CPE probes, until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	var lastSync time.Time
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	defer m.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case id := <-m.dirty:
			m.flush(ctx, id)
		case now := <-tick.C:
			if m.o.Shared && now.Sub(lastSync) >= syncEvery {
				lastSync = now
				if err := m.sync(ctx); err != nil && ctx.Err() == nil {
					m.log.Warn("watch: reading other instances' watches failed", "err", err)
				}
			}
			m.mu.Lock()
			var expired []string
			for id, w := range m.active {
				if w.Expire(now) {
					expired = append(expired, id)
				}
			}
			m.mu.Unlock()
			for _, id := range expired {
				m.flush(ctx, id)
			}
		}
	}
}

// syncEvery is how often a shared Manager reads the store's running watches.
const syncEvery = 2 * time.Second

// sync adopts the watches other instances started, and lets go of the ones
// they ended. A new watch catches up on the events it missed while the
// lock is held, so Observe neither skips nor repeats one.
func (m *Manager) sync(ctx context.Context) error {
	recs, err := m.o.Store.ActiveWatches(ctx)
	if err != nil {
		return err
	}
	running := make(map[string]bool, len(recs))
	for _, r := range recs {
		running[r.ID] = true
		m.mu.Lock()
		_, have := m.active[r.ID]
		m.mu.Unlock()
		if have {
			continue
		}
		w := new(Watch)
		if err := json.Unmarshal(r.Data, w); err != nil {
			continue
		}
		m.mu.Lock()
		if m.o.Events != nil {
			missed, err := m.o.Events.Events(ctx, watcher.Query{Login: w.Login, After: w.LastSeq, Limit: 10000})
			if err != nil {
				m.mu.Unlock()
				return err
			}
			for _, ev := range missed {
				w.Apply(ev)
			}
		}
		m.active[w.ID] = w
		m.mu.Unlock()
		m.changed(w.ID)
	}
	m.mu.Lock()
	var gone []string
	for id := range m.active {
		if !running[id] {
			gone = append(gone, id)
		}
	}
	m.mu.Unlock()
	for _, id := range gone {
		r, err := m.o.Store.LoadWatch(ctx, id)
		if err != nil || r.Active {
			continue // not saved yet (just started here), or a read that raced a save
		}
		w := new(Watch)
		if err := json.Unmarshal(r.Data, w); err != nil {
			continue
		}
		// Ended by another instance: take its verdict, announce it, forget it.
		m.mu.Lock()
		m.active[id] = w
		m.mu.Unlock()
		m.changed(id)
	}
	return nil
}

// flush saves one watch, announces it, starts its probe loop when it just
// came online and forgets it once ended.
func (m *Manager) flush(ctx context.Context, id string) {
	m.mu.Lock()
	w, ok := m.active[id]
	if !ok {
		m.mu.Unlock()
		return
	}
	cp := *w
	v := m.view(w, time.Now())
	ended := !w.Active()
	if ended {
		delete(m.active, id)
	}
	startProbe := !ended && w.Probing && w.After != nil && (w.After.IP != "" || w.After.IPv6 != "") && !m.probing[id]
	if startProbe {
		m.probing[id] = true
	}
	m.mu.Unlock()

	if err := m.save(ctx, &cp); err != nil && ctx.Err() == nil {
		m.log.Error("watch: save failed", "watch", id, "err", err)
	}
	if m.o.Notify != nil {
		m.o.Notify(v)
	}
	if ended {
		m.log.Info("watch ended", "watch", id, "login", cp.Login, "verdict", cp.Verdict, "elapsed", cp.Elapsed(time.Now()).Round(time.Second))
	}
	if startProbe {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.probeLoop(ctx, id, cp.Login)
		}()
	}
}

func (m *Manager) save(ctx context.Context, w *Watch) error {
	data, err := json.Marshal(w)
	if err != nil {
		return err
	}
	return m.o.Store.SaveWatch(ctx, watcher.WatchRecord{ID: w.ID, Login: w.Login, Active: w.Active(), Started: w.Started, Data: data})
}

// probeLoop probes a watched CPE with growing pauses until it answers, the
// watch ends or ctx ends: at the new session's IPv4 address, then at its
// IPv6 address when the NAS reported one. Each result is an event, which
// reaches the watch through Observe like any other.
func (m *Manager) probeLoop(ctx context.Context, id, login string) {
	defer func() {
		m.mu.Lock()
		delete(m.probing, id)
		m.mu.Unlock()
		if m.o.Unlead != nil {
			m.o.Unlead(id)
		}
	}()
	pause := 2 * time.Second
	for {
		m.mu.Lock()
		w, running := m.active[id]
		running = running && w.Active()
		var addrs []netip.Addr
		if running && w.After != nil {
			// Read each time: the IPv6 address may come with a later update.
			addrs = cpeAddrs(w.After.IP, w.After.IPv6)
		}
		m.mu.Unlock()
		if !running {
			return
		}
		if m.o.Lead == nil || m.o.Lead(ctx, id) {
			ev, err := m.o.Prober.ProbeAddrs(ctx, login, addrs)
			switch {
			case errors.Is(err, probe.ErrNotAllowed):
				m.log.Info("watch: session address not in [probe] allow; not probing", "watch", id, "addresses", addrs)
				return
			case err == nil:
				if _, err := m.o.Recorder.Commit(ctx, ev); err != nil && ctx.Err() == nil {
					m.log.Error("watch: recording probe result failed", "watch", id, "err", err)
				}
				if ev.Kind == watcher.HTTPUp {
					return
				}
			}
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		pause = min(pause*2, 20*time.Second)
	}
}

// ProbeNow probes the CPE of login's newest session at once, records the
// result and returns it: the "test HTTP access" button.
func (m *Manager) ProbeNow(ctx context.Context, login string) (watcher.Event, error) {
	if m.o.Prober == nil {
		return watcher.Event{}, errors.New("probing is not configured ([probe])")
	}
	c, _ := m.o.State.Customer(login)
	var addrs []netip.Addr
	for _, s := range c.Sessions { // the newest session with an address wins
		if a := cpeAddrs(s.IP, s.IPv6Address); len(a) > 0 {
			addrs = a
		}
	}
	if len(addrs) == 0 {
		return watcher.Event{}, ErrNoSession
	}
	ev, err := m.o.Prober.ProbeAddrs(ctx, login, addrs)
	if err != nil {
		return watcher.Event{}, err
	}
	stored, err := m.o.Recorder.Commit(ctx, ev)
	if err != nil {
		return watcher.Event{}, err
	}
	return stored[0], nil
}

// cpeAddrs returns the addresses the customer's equipment answers at: the
// session's IPv4 address, then its IPv6 address (Framed-IPv6-Address, or
// what the NAS reports). An address inside a framed or delegated prefix is
// not one: the prefix is the customer's LAN, not the CPE.
func cpeAddrs(ip, ipv6 string) []netip.Addr {
	var out []netip.Addr
	for _, s := range []string{ip, ipv6} {
		if a, err := netip.ParseAddr(s); err == nil && !a.IsUnspecified() {
			out = append(out, a.Unmap())
		}
	}
	return out
}

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
