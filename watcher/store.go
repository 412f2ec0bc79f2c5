package watcher

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by stores when the thing asked for does not exist.
var ErrNotFound = errors.New("not found")

// Query selects events from a Store.
type Query struct {
	Login string // "" or "*" for every login
	After int64  // only events with seq > After
	// Before, when > 0, selects only events with seq < Before.
	Before int64
	// Limit caps the number of events returned (0 means the store's default).
	Limit int
	// Newest returns the newest events matching (still in increasing seq order)
	// instead of the oldest.
	Newest bool
}

// Find asks a store which logins were seen with a login prefix, a MAC or an IP.
type Find struct {
	Field string // "login" (prefix), "mac" or "ip"
	Value string
	Limit int
}

// Store keeps events durably. Implementations serialise their own writes;
// Append is called by one Recorder at a time.
type Store interface {
	// Append stores evs in one transaction and sets each one's Seq, in order.
	// When it returns nil every event is durable; on error none is.
	Append(ctx context.Context, evs []Event) error
	// Events returns the events selected by q in increasing seq order.
	Events(ctx context.Context, q Query) ([]Event, error)
	// Replay calls fn for every event with seq > after, in order.
	Replay(ctx context.Context, after int64, fn func(Event) error) error
	// FindLogins returns distinct logins matching f, most recently seen first.
	FindLogins(ctx context.Context, f Find) ([]string, error)
	// LastSeq returns the highest seq stored (0 when empty).
	LastSeq(ctx context.Context) (int64, error)
	// Prune deletes events older than before and returns how many.
	Prune(ctx context.Context, before time.Time) (int64, error)
	// SaveCheckpoint replaces the saved Checkpoint with cp, whole or not at
	// all. LoadCheckpoint hands the saved one's parts to part, in order, and
	// returns its seq; ErrNotFound when there is none.
	SaveCheckpoint(ctx context.Context, cp Checkpoint) error
	LoadCheckpoint(ctx context.Context, part func([]byte) error) (seq int64, err error)
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	Close() error
}

// Rebuild restores state from the store's checkpoint, if any, then replays the
// events after it. It returns the checkpoint's seq (0 without one).
func Rebuild(ctx context.Context, st Store, s *State) (checkpoint int64, err error) {
	r := newRestorer()
	seq, err := st.LoadCheckpoint(ctx, r.add)
	switch {
	case err == nil:
		s.install(r, seq)
	case !errors.Is(err, ErrNotFound):
		return 0, err
	}
	return seq, st.Replay(ctx, seq, func(ev Event) error {
		s.Apply(ev)
		return nil
	})
}

// WatchRecord is a reboot watch as stored: its identity, whether it is still
// running, and its JSON. The watch package owns what is inside Data.
type WatchRecord struct {
	ID      string
	Login   string
	Active  bool
	Started time.Time
	Data    []byte
}

// WatchStore keeps reboot watches, so that they survive a restart and every
// instance sees the same ones.
type WatchStore interface {
	// SaveWatch inserts or replaces a watch; an ended watch stays ended.
	SaveWatch(ctx context.Context, r WatchRecord) error
	// LoadWatch returns one watch, or ErrNotFound.
	LoadWatch(ctx context.Context, id string) (WatchRecord, error)
	// ActiveWatches returns every watch still running.
	ActiveWatches(ctx context.Context) ([]WatchRecord, error)
	// Watches returns a login's watches, newest first.
	Watches(ctx context.Context, login string, limit int) ([]WatchRecord, error)
	// PruneWatches deletes the ended watches started before before and
	// returns how many.
	PruneWatches(ctx context.Context, before time.Time) (int64, error)
}
