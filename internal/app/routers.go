package app

import (
	"context"
	"reflect"
	"slices"
	"sync"

	"authwatch/internal/config"
	"authwatch/watcher/routeros"
)

// routerSet runs one RouterOS source per [[routeros]] entry and, on reload,
// stops the routers removed or changed and starts the new ones, leaving the
// unchanged ones connected.
type routerSet struct {
	d *Daemon

	mu      sync.Mutex
	ctx     context.Context // set while run runs
	wg      sync.WaitGroup
	routers []*router // in configuration order
	// blocked are the address-lists that mean "blocked" ([blocked]): each
	// router is asked whether a new session's IP is in one.
	blocked []string
}

type router struct {
	cfg    config.RouterOS
	src    *routeros.Source
	cancel context.CancelFunc
}

// source builds a router's source, resumed from what the state believes is
// open on it: the router is the authority on its own sessions, and its
// first poll is compared with that.
func (s *routerSet) source(r config.RouterOS) *routeros.Source {
	cfg := r.Source()
	cfg.BlockedLists = s.blocked
	src := routeros.New(cfg, s.d.rec, s.d.log)
	logins, sessions := s.d.state.SessionsOn(r.Name)
	open := make([]routeros.OpenSession, len(sessions))
	for i, ss := range sessions {
		open[i] = routeros.OpenSession{Login: logins[i], SessionID: ss.ID, MAC: ss.MAC, IP: ss.IP}
	}
	src.Resume(open)
	return src
}

// start runs r; s.mu must be held and s.ctx set.
func (s *routerSet) start(r *router) {
	ctx, cancel := context.WithCancel(s.ctx)
	r.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := r.src.Run(ctx); err != nil {
			s.d.log.Error("routeros: stopped", "router", r.cfg.Name, "err", err)
		}
	}()
}

// run starts every router and stops them all when ctx ends.
func (s *routerSet) run(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	for _, r := range s.routers {
		s.start(r)
	}
	s.mu.Unlock()
	<-ctx.Done()
	s.wg.Wait()
	return nil
}

// apply makes the running set match cfgs, each router asking about the
// blocked address-lists. Before run, it only builds them. When the lists
// change, every router is restarted with them (a restart resyncs its
// sessions without reporting them stopped and started again).
func (s *routerSet) apply(cfgs []config.RouterOS, blocked []string) (added, removed, kept int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	same := slices.Equal(blocked, s.blocked)
	s.blocked = slices.Clone(blocked)
	old := map[string]*router{}
	for _, r := range s.routers {
		old[r.cfg.Name] = r
	}
	next := make([]*router, 0, len(cfgs))
	for _, c := range cfgs {
		if r, ok := old[c.Name]; ok && same && reflect.DeepEqual(r.cfg, c) {
			next = append(next, r)
			delete(old, c.Name)
			kept++
			continue
		}
		r := &router{cfg: c, src: s.source(c)}
		next = append(next, r)
		added++
	}
	for _, r := range old {
		if r.cancel != nil {
			r.cancel()
		}
		removed++
	}
	s.routers = next
	if s.ctx != nil && s.ctx.Err() == nil {
		for _, r := range next {
			if r.cancel == nil {
				s.start(r)
			}
		}
	}
	return added, removed, kept
}

func (s *routerSet) status() []routeros.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]routeros.Status, len(s.routers))
	for i, r := range s.routers {
		out[i] = r.src.Status()
	}
	return out
}
