package app

import (
	"context"

	"authwatch/watcher"
	"authwatch/watcher/sqlstore"
	"authwatch/webui"
)

// shared is what a PostgreSQL store shared by several instances adds to the
// daemon: the Follower, through which every event (ours and the other
// instances') reaches the state, the watches and the websockets in seq
// order; and the advisory locks that let one instance at a time probe a
// watch's CPE and prune old events. It is nil with SQLite, where this
// instance is the only one; its methods are then no-ops.
type shared struct {
	follower *sqlstore.Follower
	locks    *sqlstore.Locks
}

// openShared sets up the follower from the rebuilt state's seq, when the
// store is shared.
func (d *Daemon) openShared(st *sqlstore.Store) error {
	locks := st.Locks()
	if locks == nil {
		return nil
	}
	f, err := st.NewFollower(d.state.Seq(), func(evs []watcher.Event) { d.rec.Deliver(evs) }, sqlstore.FollowerOptions{Logger: d.log})
	if err != nil {
		return err
	}
	d.shared = &shared{follower: f, locks: locks}
	return nil
}

// follow is the Recorder's RecorderOptions.Follow (nil: it delivers itself).
func (s *shared) follow() func([]watcher.Event) {
	if s == nil {
		return nil
	}
	return s.follower.Committed
}

// run follows the store until ctx ends.
func (s *shared) run(ctx context.Context) error {
	if s == nil {
		return nil
	}
	return s.follower.Run(ctx)
}

// leads reports whether this instance should do the work named name now.
func (s *shared) leads(ctx context.Context, name string) bool {
	return s == nil || s.locks.TryLock(ctx, name)
}

// watchLead and watchUnlead are the watch Manager's Lead and Unlead.
func (s *shared) watchLead() func(context.Context, string) bool {
	if s == nil {
		return nil
	}
	return func(ctx context.Context, id string) bool { return s.locks.TryLock(ctx, "watch:"+id) }
}

func (s *shared) watchUnlead() func(string) {
	if s == nil {
		return nil
	}
	return func(id string) { s.locks.Unlock(context.Background(), "watch:"+id) }
}

// checks adds the follower to /healthz: failing while it cannot listen,
// since events of the other instances then arrive only by polling, if at all.
func (s *shared) checks() []webui.Check {
	if s == nil {
		return nil
	}
	return []webui.Check{{Name: "follower", Run: func(context.Context) webui.Status {
		st := s.follower.Stats()
		return webui.Status{OK: st.LastError == "", Error: st.LastError, Detail: st}
	}}}
}

func (s *shared) close() {
	if s != nil {
		s.locks.Close()
	}
}
