package app

import (
	"slices"

	"authwatch/internal/config"
	"authwatch/watcher/routeros"
)

// router is one [[routeros]] entry and its running source.
type router struct {
	cfg config.RouterOS
	src *routeros.Source
}

// newRouters is the set of RouterOS sources.
func (d *Daemon) newRouters() *runSet[config.RouterOS, *routeros.Source] {
	return &runSet[config.RouterOS, *routeros.Source]{
		kind: "routeros", log: d.log,
		name:  func(c config.RouterOS) string { return c.Name },
		build: d.routerSource,
	}
}

// routerSource builds a router's source, resumed from what the state
// believes is open on it: the router is the authority on its own sessions,
// and its first poll is compared with that.
func (d *Daemon) routerSource(r config.RouterOS) *routeros.Source {
	cfg := r.Source()
	// The router is asked whether a new session's IP is in one of the
	// address-lists that mean "blocked".
	cfg.BlockedLists = d.blockedLists
	src := routeros.New(cfg, d.rec, d.log)
	logins, sessions := d.state.SessionsOn(r.Name)
	open := make([]routeros.OpenSession, len(sessions))
	for i, ss := range sessions {
		open[i] = routeros.OpenSession{Login: logins[i], SessionID: ss.ID, MAC: ss.MAC, IP: ss.IP}
	}
	src.Resume(open)
	return src
}

// applyRouters makes the running routers match cfgs, asking about the
// blocked address-lists. When the lists change, every router is restarted
// with them (a restart resyncs its sessions without reporting them stopped
// and started again). Only New and Reload call it, one at a time.
func (d *Daemon) applyRouters(cfgs []config.RouterOS, blocked []string) (added, removed, kept int) {
	same := slices.Equal(blocked, d.blockedLists)
	d.blockedLists = slices.Clone(blocked)
	return d.routers.apply(cfgs, !same)
}

// routerList returns the routers, in configuration order.
func (d *Daemon) routerList() []router {
	var out []router
	d.routers.each(func(c config.RouterOS, s *routeros.Source) { out = append(out, router{cfg: c, src: s}) })
	return out
}

func (d *Daemon) routerStatus() []routeros.Status {
	return statuses(d.routers, (*routeros.Source).Status)
}
