package sqlstore

import (
	"context"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// lockCheckEvery is how long a lock is believed held without asking the
// server whether its connection is still alive.
const lockCheckEvery = time.Second

// lockTimeout bounds one lock operation, so that a database that stopped
// answering makes TryLock say no rather than hang.
const lockTimeout = 5 * time.Second

// Locks are named PostgreSQL session-level advisory locks, for work that one
// instance of several should do at a time (a watch's CPE probes, retention
// pruning). They are held on one dedicated connection, so they go with it:
// when this instance dies or loses the database, the server ends the
// session and another instance takes the lock on its next try. No lease to
// renew, no table to clean up.
//
// A lock is a best effort, not a fence: an instance cut off from the
// database believes it holds its locks until its next check (at most
// lockCheckEvery later). What they guard is harmless to do twice.
type Locks struct {
	dsn string
	log *slog.Logger

	mu      sync.Mutex
	conn    *pgx.Conn
	held    map[string]bool
	checked time.Time // when the connection last answered
}

// Locks returns the store's advisory locks, or nil when the database is not
// shared (SQLite: this instance is the only one and always leads).
func (s *Store) Locks() *Locks {
	if s.d.seqInWriter {
		return nil
	}
	return &Locks{dsn: s.dsn, log: s.log, held: map[string]bool{}}
}

// lockKey maps a name to the 64-bit advisory lock key space.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("authwatch:" + name))
	return int64(h.Sum64())
}

// TryLock takes the lock named name, or confirms it is still held, without
// waiting. It reports false when another instance holds it or the database
// cannot be reached.
func (l *Locks) TryLock(ctx context.Context, name string) bool {
	ctx, cancel := context.WithTimeout(ctx, lockTimeout)
	defer cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil || l.conn.IsClosed() {
		if !l.connect(ctx) {
			return false
		}
	}
	if l.held[name] {
		if time.Since(l.checked) < lockCheckEvery {
			return true
		}
		if err := l.conn.Ping(ctx); err != nil {
			l.drop("ping", err)
			return false
		}
		l.checked = time.Now()
		return true
	}
	var ok bool
	if err := l.conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", lockKey(name)).Scan(&ok); err != nil {
		l.drop("lock "+name, err)
		return false
	}
	l.checked = time.Now()
	if ok {
		l.held[name] = true
		l.log.Info("store: lock taken", "lock", name)
	}
	return ok
}

// Unlock releases the lock named name if this instance holds it.
func (l *Locks) Unlock(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(ctx, lockTimeout)
	defer cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held[name] {
		return
	}
	delete(l.held, name)
	if l.conn == nil || l.conn.IsClosed() {
		return
	}
	if _, err := l.conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", lockKey(name)); err != nil {
		l.drop("unlock "+name, err)
	}
}

// Close releases every lock (by ending the session).
func (l *Locks) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := l.conn.Close(ctx)
	l.conn, l.held = nil, map[string]bool{}
	return err
}

// connect opens the lock connection; l.mu is held.
func (l *Locks) connect(ctx context.Context) bool {
	cfg, err := pgx.ParseConfig(l.dsn)
	if err != nil {
		l.log.Error("store: locks: bad dsn", "err", err)
		return false
	}
	cfg.RuntimeParams["application_name"] = "authwatch-locks"
	cctx, cancel := context.WithTimeout(ctx, followConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		l.log.Warn("store: locks: cannot connect", "err", err)
		return false
	}
	l.conn, l.held, l.checked = conn, map[string]bool{}, time.Now()
	return true
}

// drop forgets the connection and with it every lock; l.mu is held.
func (l *Locks) drop(what string, err error) {
	if len(l.held) > 0 {
		l.log.Warn("store: lock connection lost; locks released", "while", what, "err", err, "locks", len(l.held))
	}
	if l.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		l.conn.Close(ctx)
		cancel()
	}
	l.conn, l.held = nil, map[string]bool{}
}
