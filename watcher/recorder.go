package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrStopped is returned by Record once the Recorder has stopped.
var ErrStopped = errors.New("recorder stopped")

// Done is called once for every recorded event: with the event as stored
// (Seq set) and nil after it was committed, or with the error that kept it
// from being stored. It runs on the Recorder's goroutine and must not block.
type Done func(ev Event, err error)

type pending struct {
	ev   Event
	done Done
}

// Recorder is the single path by which events enter authwatch. It group-commits
// what sources hand it (many events per transaction), and only after the
// commit calls each event's Done (a RADIUS source sends its Accounting-Response
// there), folds the events into the State and publishes them on the Hub.
type Recorder struct {
	store    Store
	state    *State
	hub      *Hub
	log      *slog.Logger
	maxBatch int

	in      chan pending
	stopped chan struct{}

	committed atomic.Int64
	batches   atomic.Int64
	failures  atomic.Int64
	failing   atomic.Bool // the last commit failed
	mu        sync.Mutex
	lastErr   error
	lastErrAt time.Time
	hooks     []func(batch []Event, took time.Duration, err error)
	applied   []func(ev Event, logins []string)

	follow    func(stored []Event)
	deliverMu sync.Mutex // one Deliver at a time
}

// RecorderOptions tune a Recorder; zero values pick defaults.
type RecorderOptions struct {
	Queue    int // events waiting to be committed (default 16384)
	MaxBatch int // events per transaction (default 2048)
	Logger   *slog.Logger
	// Follow, when set, leaves delivery to a follower of the store, for
	// stores shared by several instances: their events must reach the
	// State and the Hub too, interleaved with ours in seq order, along one
	// path. After each commit the Recorder then calls Follow with the
	// stored batch (Seq set) and then the events' Done; nothing reaches the
	// State, the OnApplied observers or the Hub until the follower passes
	// it to Deliver. Follow runs on the Recorder's path: it may deliver the
	// batch itself when it is next in seq order, and must not block on I/O.
	Follow func(stored []Event)
}

// NewRecorder returns a Recorder writing to store and updating state and hub.
func NewRecorder(store Store, state *State, hub *Hub, o RecorderOptions) *Recorder {
	if o.Queue <= 0 {
		o.Queue = 16384
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 2048
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Recorder{
		store: store, state: state, hub: hub, log: o.Logger, maxBatch: o.MaxBatch,
		in: make(chan pending, o.Queue), stopped: make(chan struct{}), follow: o.Follow,
	}
}

// OnCommit registers f to be called after every transaction with the batch,
// how long the commit took and its error. Metrics use it. Call before Run.
func (r *Recorder) OnCommit(f func(batch []Event, took time.Duration, err error)) {
	r.hooks = append(r.hooks, f)
}

// OnApplied registers f to be called with every committed event, after it
// was folded into the state and before it is published, with the logins it
// changed. It runs on the recorder's path and must be quick. Call before Run.
func (r *Recorder) OnApplied(f func(ev Event, logins []string)) {
	r.applied = append(r.applied, f)
}

// Record queues ev to be stored; done (which may be nil) is called after the
// commit. It blocks while the queue is full, until ctx ends. An invalid event
// is refused at once with an error and done is not called.
func (r *Recorder) Record(ctx context.Context, ev Event, done Done) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	// The stores keep microseconds: the live copy of an event (the
	// websocket, the state) must say the same time as the stored one.
	ev.At = ev.At.UTC().Truncate(time.Microsecond)
	var err error
	if ev.detailJSON, err = ev.DetailJSON(); err != nil {
		return err
	}
	select {
	case <-r.stopped:
		return ErrStopped
	default:
	}
	select {
	case r.in <- pending{ev: ev, done: done}:
		return nil
	case <-r.stopped:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Commit records evs and waits until they are stored, returning them with
// their Seq. Sources that need no per-event callback use it.
func (r *Recorder) Commit(ctx context.Context, evs ...Event) ([]Event, error) {
	out := make([]Event, len(evs))
	errs := make([]error, len(evs))
	var wg sync.WaitGroup
	for i, ev := range evs {
		wg.Add(1)
		err := r.Record(ctx, ev, func(stored Event, err error) {
			out[i], errs[i] = stored, err
			wg.Done()
		})
		if err != nil {
			wg.Done()
			errs[i] = err
		}
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// Run commits queued events until ctx ends, then commits what is still queued
// and returns.
func (r *Recorder) Run(ctx context.Context) error {
	post := make(chan []pending, 4)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for batch := range post {
			r.publish(batch)
		}
	}()
	defer func() {
		close(post)
		wg.Wait()
	}()

	batch := make([]pending, 0, r.maxBatch)
	for {
		select {
		case p := <-r.in:
			batch = append(batch[:0], p)
		case <-ctx.Done():
			close(r.stopped)
			r.drain(post)
			return nil
		}
		batch = r.fill(batch)
		if r.commit(ctx, batch) {
			post <- append([]pending(nil), batch...)
		}
	}
}

// fill takes whatever else is already queued, up to maxBatch: under load the
// batch grows by itself while the previous one commits.
func (r *Recorder) fill(batch []pending) []pending {
	for len(batch) < r.maxBatch {
		select {
		case p := <-r.in:
			batch = append(batch, p)
		default:
			return batch
		}
	}
	return batch
}

// drain commits what is queued when Run is asked to stop, so that sources
// that stopped first get their answers.
func (r *Recorder) drain(post chan<- []pending) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		batch := r.fill(make([]pending, 0, r.maxBatch))
		if len(batch) == 0 {
			return
		}
		if r.commit(ctx, batch) {
			post <- batch
		}
	}
}

// commit stores one batch. On failure it reports the error to every event's
// Done and returns false.
func (r *Recorder) commit(ctx context.Context, batch []pending) bool {
	evs := make([]Event, len(batch))
	for i := range batch {
		evs[i] = batch[i].ev
	}
	start := time.Now()
	err := r.store.Append(ctx, evs)
	took := time.Since(start)
	for i := range batch {
		evs[i].detailJSON, batch[i].ev.detailJSON = nil, nil
	}
	for _, h := range r.hooks {
		h(evs, took, err)
	}
	if err != nil {
		r.failures.Add(1)
		r.failing.Store(true)
		r.mu.Lock()
		r.lastErr, r.lastErrAt = err, time.Now()
		r.mu.Unlock()
		r.log.Error("store: commit failed; events not acknowledged", "events", len(evs), "err", err)
		err = fmt.Errorf("store: %w", err)
		for _, p := range batch {
			if p.done != nil {
				p.done(p.ev, err)
			}
		}
		return false
	}
	for i := range batch {
		batch[i].ev = evs[i]
	}
	r.committed.Add(int64(len(evs)))
	r.batches.Add(1)
	r.failing.Store(false)
	return true
}

// publish runs after a commit: the state first, so that whoever is told the
// event is stored (an acked NAS, a Commit caller) finds it applied; then the
// acknowledgements; then observers and subscribers.
func (r *Recorder) publish(batch []pending) {
	if r.follow != nil {
		evs := make([]Event, len(batch))
		for i, p := range batch {
			evs[i] = p.ev
		}
		r.follow(evs)
		for _, p := range batch {
			if p.done != nil {
				p.done(p.ev, nil)
			}
		}
		return
	}
	logins := make([][]string, len(batch))
	for i, p := range batch {
		logins[i] = r.state.Apply(p.ev)
	}
	for _, p := range batch {
		if p.done != nil {
			p.done(p.ev, nil)
		}
	}
	for i, p := range batch {
		for _, f := range r.applied {
			f(p.ev, logins[i])
		}
		r.hub.Publish(p.ev, logins[i])
	}
}

// Deliver folds committed events into the State, then tells the OnApplied
// observers and publishes them on the Hub, event by event, in the order
// given. It is the follower's half of RecorderOptions.Follow: evs must be in
// increasing seq order, and follow every event delivered before without a
// committed event missing in between. An event the State already has (seq
// at or below its seq, e.g. from the rebuild at start) is skipped, so a
// follower that reads a batch twice delivers it once.
func (r *Recorder) Deliver(evs []Event) {
	r.deliverMu.Lock()
	defer r.deliverMu.Unlock()
	for _, ev := range evs {
		if ev.Seq <= r.state.Seq() {
			continue
		}
		logins := r.state.Apply(ev)
		for _, f := range r.applied {
			f(ev, logins)
		}
		r.hub.Publish(ev, logins)
	}
}

// RecorderStats tells how the store is doing.
type RecorderStats struct {
	Committed int64     `json:"committed"`
	Batches   int64     `json:"batches"`
	Failures  int64     `json:"failures"`
	Failing   bool      `json:"failing"` // the last commit failed: acks are held back
	Queued    int       `json:"queued"`
	LastError string    `json:"last_error,omitempty"`
	LastErrAt time.Time `json:"last_error_at,omitzero"`
}

// Stats returns counters and the last store error.
func (r *Recorder) Stats() RecorderStats {
	st := RecorderStats{Committed: r.committed.Load(), Batches: r.batches.Load(), Failures: r.failures.Load(), Failing: r.failing.Load(), Queued: len(r.in)}
	r.mu.Lock()
	if r.lastErr != nil {
		st.LastError, st.LastErrAt = r.lastErr.Error(), r.lastErrAt
	}
	r.mu.Unlock()
	return st
}
