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
	// followChunk is how many events one catch-up read takes.
	followChunk = 1000
)

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

	mu   sync.Mutex // serialises delivery
	last int64      // highest seq delivered

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
// goroutine; otherwise (another instance's events lie between) the
// Follower's loop is woken to read them from the table, in order.
func (f *Follower) Committed(evs []watcher.Event) {
	f.mu.Lock()
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
	behind := j < len(evs)
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

// catchUp delivers every event in the table after the last one delivered.
func (f *Follower) catchUp(ctx context.Context) error {
	for {
		from := f.Last()
		f.reads.Add(1)
		evs, err := f.s.Events(ctx, watcher.Query{After: from, Limit: followChunk})
		if err != nil {
			return err
		}
		f.mu.Lock()
		// Committed may have delivered some of them meanwhile; the read
		// holds every committed event up to its last, so the rest follow
		// on without a gap.
		k := 0
		for k < len(evs) && evs[k].Seq <= f.last {
			k++
		}
		if k < len(evs) {
			f.deliver(evs[k:])
			f.last = evs[len(evs)-1].Seq
		}
		f.mu.Unlock()
		if len(evs) < followChunk {
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
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
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
	if err := f.catchUp(ctx); err != nil {
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
		if err := f.catchUp(ctx); err != nil {
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
