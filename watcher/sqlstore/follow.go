package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"authwatch/watcher"
)

// Follower timing.
const (
	// DefaultPollInterval is how often the Follower reads the table even
	// when no notification came: the safety net under LISTEN/NOTIFY.
	DefaultPollInterval = 2 * time.Second
	// followConnectTimeout bounds one attempt to open the LISTEN connection.
	followConnectTimeout = 10 * time.Second
	// maxFollowBackoff caps the pause between reconnection attempts.
	maxFollowBackoff = 5 * time.Second
)

// followChunk is how many events one catch-up read takes (a variable for
// the tests, which make reads stop half-way).
var followChunk = 1000

// FollowerOptions tune a Follower; zero values pick defaults.
type FollowerOptions struct {
	PollInterval time.Duration
	Logger       *slog.Logger
}

// Follower delivers every event of a PostgreSQL store shared by several
// instances to this instance, once each and in seq order, whichever
// instance stored it. Append makes commit order seq order (see
// appendPostgres), so the events after the last one delivered can simply be
// read from the table by seq: nothing below them can appear later.
//
// It reads when woken by a NOTIFY from another instance's Append (on a
// dedicated connection that LISTENs), when this instance's Recorder hands it
// a batch that is not next in line (Committed), and every PollInterval
// anyway. A batch of our own that is next in line is delivered at once,
// without a read. When the LISTEN connection drops it reconnects with
// backoff and reads what it missed: NOTIFY is a wake-up, the table is the
// truth.
type Follower struct {
	s       *Store
	deliver func([]watcher.Event)
	poll    time.Duration
	log     *slog.Logger

	mu      sync.Mutex      // serialises delivery; guards last and pending
	last    int64           // highest seq delivered
	pending []watcher.Event // our own stored events waiting behind a gap, in seq order

	wake     chan struct{} // a read is wanted
	waitMu   sync.Mutex
	stopWait context.CancelFunc // interrupts the wait for a notification

	pid           atomic.Uint32 // backend pid of the LISTEN connection, 0 when down
	reads         atomic.Int64
	notifications atomic.Int64
	reconnects    atomic.Int64
	errMu         sync.Mutex
	lastErr       error
	lastErrAt     time.Time
}

// NewFollower returns a Follower that delivers, through deliver, the events
// after seq from (the seq of the state it feeds, rebuilt from the store).
// Its Committed method is the Recorder's RecorderOptions.Follow.
func (s *Store) NewFollower(from int64, deliver func([]watcher.Event), o FollowerOptions) (*Follower, error) {
	if s.d.seqInWriter {
		return nil, fmt.Errorf("sqlstore: a %s store has one writer and nothing to follow", s.d.name)
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.Logger == nil {
		o.Logger = s.log
	}
	return &Follower{s: s, deliver: deliver, poll: o.PollInterval, log: o.Logger, last: from, wake: make(chan struct{}, 1)}, nil
}

// Committed takes a batch this instance just stored. When it comes right
// after the last event delivered it is delivered now, on the caller's
// goroutine. Otherwise another instance's events lie between: the batch
// waits, and the Follower's loop is woken to read the gap before it from the
// table, then delivers the gap and the batch, in order.
func (f *Follower) Committed(evs []watcher.Event) {
	f.mu.Lock()
	if len(f.pending) > 0 {
		f.pending = append(f.pending, evs...) // after the batches already waiting
	} else {
		i := 0
		for i < len(evs) && evs[i].Seq <= f.last {
			i++ // already read from the table
		}
		j := i
		for j < len(evs) && evs[j].Seq == f.last+int64(j-i)+1 {
			j++
		}
		if j > i {
			f.deliver(evs[i:j])
			f.last = evs[j-1].Seq
		}
		f.pending = append(f.pending, evs[j:]...)
	}
	behind := len(f.pending) > 0
	f.mu.Unlock()
	if behind {
		f.kick()
	}
}

// Last returns the highest seq delivered.
func (f *Follower) Last() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// kick wakes the loop for a read.
func (f *Follower) kick() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
	f.waitMu.Lock()
	if f.stopWait != nil {
		f.stopWait()
	}
	f.waitMu.Unlock()
}

// catchUp reads from the table what lies between the last event delivered
// and our own batches waiting in f.pending, and delivers both in seq order;
// with all set it then reads on, to the end of the table.
func (f *Follower) catchUp(ctx context.Context, all bool) error {
	for {
		f.mu.Lock()
		q := watcher.Query{After: f.last, Limit: followChunk}
		if len(f.pending) > 0 {
			q.Before = f.pending[0].Seq
		}
		f.mu.Unlock()
		if q.Before == 0 && !all {
			return nil
		}
		f.reads.Add(1)
		evs, err := f.s.Events(ctx, q)
		if err != nil {
			return err
		}
		f.mu.Lock()
		// Committed may have delivered some of them meanwhile; the read
		// holds every committed event up to its last (and, commit order
		// being seq order, every one below q.Before), so the rest follow on
		// without a gap.
		k := 0
		for k < len(evs) && evs[k].Seq <= f.last {
			k++
		}
		if k < len(evs) {
			f.deliver(evs[k:])
			f.last = evs[len(evs)-1].Seq
		}
		gapRead := len(evs) < followChunk
		if gapRead && q.Before > 0 {
			// Every event below q.Before, our first waiting one, is
			// delivered now: that one is next, and so are those right
			// after it. Waiting events that a read delivered already are
			// dropped; the first left is next only if it follows on.
			p := f.pending
			i := 0
			for i < len(p) && p[i].Seq <= f.last {
				i++
			}
			j := i
			if i < len(p) && (i == 0 || p[i].Seq == f.last+1) {
				for j++; j < len(p) && p[j].Seq == p[j-1].Seq+1; j++ {
				}
				f.deliver(p[i:j])
				f.last = p[j-1].Seq
			}
			f.pending = append(p[:0:0], p[j:]...)
		}
		morePending := len(f.pending) > 0
		f.mu.Unlock()
		switch {
		case !gapRead: // more to read before the next waiting event, or the end
		case morePending: // the gap before the next waiting batch
		case q.Before > 0 && all: // on past our batches, to the end
		default:
			return nil
		}
	}
}

// Run follows the store until ctx ends, reconnecting with backoff whenever
// the LISTEN connection or the database fails.
func (f *Follower) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		connected, err := f.session(ctx)
		f.pid.Store(0)
		if ctx.Err() != nil {
			return nil
		}
		f.errMu.Lock()
		f.lastErr, f.lastErrAt = err, time.Now()
		f.errMu.Unlock()
		if connected {
			backoff = 100 * time.Millisecond
		}
		f.reconnects.Add(1)
		f.log.Warn("store follower: connection lost; reconnecting", "err", err, "in", backoff)
		// Our own commits still go out meanwhile, read through the pool,
		// if the database answers at all.
		t := time.NewTimer(backoff)
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-f.wake:
				f.catchUp(ctx, true)
			case <-t.C:
				waiting = false
			}
		}
		backoff = min(backoff*2, maxFollowBackoff)
	}
}

// session opens the LISTEN connection, catches up, then waits for
// notifications, wake-ups and poll ticks until something fails.
func (f *Follower) session(ctx context.Context) (connected bool, err error) {
	cfg, err := pgx.ParseConfig(f.s.dsn)
	if err != nil {
		return false, errors.New("dsn is not a PostgreSQL connection string") // err may quote a password
	}
	cfg.RuntimeParams["application_name"] = "authwatch-follower"
	cctx, cancel := context.WithTimeout(ctx, followConnectTimeout)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(cctx)
		cancel()
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	f.pid.Store(conn.PgConn().PID())
	// Listening now: whatever was committed before is in the table.
	if err := f.catchUp(ctx, true); err != nil {
		return false, fmt.Errorf("catch up: %w", err)
	}
	f.errMu.Lock()
	f.lastErr = nil
	f.errMu.Unlock()
	for {
		wctx, stop := context.WithTimeout(ctx, f.poll)
		f.waitMu.Lock()
		f.stopWait = stop
		f.waitMu.Unlock()
		select {
		case <-f.wake:
			stop() // a kick came before the wait began
		default:
		}
		n, err := conn.WaitForNotification(wctx)
		woken := wctx.Err() != nil // before stop, which ends wctx too
		tick := errors.Is(wctx.Err(), context.DeadlineExceeded)
		f.waitMu.Lock()
		f.stopWait = nil
		f.waitMu.Unlock()
		stop()
		switch {
		case ctx.Err() != nil:
			return true, nil
		case err == nil:
			f.notifications.Add(1)
			if seq, perr := strconv.ParseInt(n.Payload, 10, 64); perr == nil && seq <= f.Last() {
				continue // ours, or read already
			}
		case woken && !conn.IsClosed():
			// A poll tick or a kick: read. The kick's token, if any, is
			// spent by this read.
			select {
			case <-f.wake:
			default:
			}
			// A connection cut without a word (a dead link, a NAT that
			// forgot it) would never deliver another notification: check
			// it at every poll.
			if tick {
				pctx, cancel := context.WithTimeout(ctx, followConnectTimeout)
				err := conn.Ping(pctx)
				cancel()
				if err != nil && ctx.Err() == nil {
					return true, fmt.Errorf("ping: %w", err)
				}
			}
		default:
			return true, fmt.Errorf("wait for notification: %w", err)
		}
		// A kick needs only the gaps before our own batches; a
		// notification or a poll reads to the end.
		if err := f.catchUp(ctx, !woken || tick); err != nil {
			return true, fmt.Errorf("catch up: %w", err)
		}
	}
}

// FollowerStats tell how the Follower is doing, for /healthz.
type FollowerStats struct {
	Listening     bool      `json:"listening"`
	Last          int64     `json:"last_seq"`
	Reads         int64     `json:"reads"`
	Notifications int64     `json:"notifications"`
	Reconnects    int64     `json:"reconnects"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrAt     time.Time `json:"last_error_at,omitzero"`
}

// Stats returns the Follower's counters and its last error, cleared once it
// is listening again.
func (f *Follower) Stats() FollowerStats {
	st := FollowerStats{Listening: f.pid.Load() != 0, Last: f.Last(), Reads: f.reads.Load(),
		Notifications: f.notifications.Load(), Reconnects: f.reconnects.Load()}
	f.errMu.Lock()
	if f.lastErr != nil {
		st.LastError, st.LastErrAt = f.lastErr.Error(), f.lastErrAt
	}
	f.errMu.Unlock()
	return st
}

// ListenPID is the server process id of the LISTEN connection (0 while it
// is down), for tests that cut it.
func (f *Follower) ListenPID() uint32 { return f.pid.Load() }
