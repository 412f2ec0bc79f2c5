package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// NotifyChannel is the PostgreSQL channel every Append notifies, in its own
// transaction, with the highest seq it stored: a wake-up for the Followers
// of the other instances. The payload is only a hint; the table is the truth.
const NotifyChannel = "authwatch_events"

// appendLockKey is the transaction-level advisory lock that every Append
// takes before it allocates seqs ("awevents" in ASCII).
const appendLockKey int64 = 0x61776576656e7473

// migrateLockID keeps two instances that start together from applying the
// migrations at the same time.
const migrateLockID int64 = 0x61776d6967726174 // "awmigrat"

// openPostgres opens the pool, waits for the server to answer and applies
// the migrations.
func openPostgres(ctx context.Context, d dialect, o Options) (*Store, error) {
	if o.DSN == "" {
		return nil, errors.New("sqlstore: no dsn for PostgreSQL")
	}
	cfg, err := pgx.ParseConfig(o.DSN)
	if err != nil {
		return nil, errors.New("sqlstore: dsn is not a PostgreSQL connection string") // err may quote a password
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "authwatch"
	}
	// Append holds the append lock that every instance's commits wait for:
	// a client that vanishes mid-transaction (a frozen VM, a cut link) must
	// not hold it until TCP keepalive notices, hours later. The server ends
	// such a session, rolls back, and the lock is free.
	if cfg.RuntimeParams["idle_in_transaction_session_timeout"] == "" {
		cfg.RuntimeParams["idle_in_transaction_session_timeout"] = "15s"
	}
	db := sqlx.NewDb(stdlib.OpenDB(*cfg), d.driver)
	// One connection commits at a time (the Recorder's); the others serve
	// the API, websocket snapshots, the Follower's reads and pruning.
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{d: d, w: db, r: db, log: o.Logger, dsn: o.DSN, inserts: map[int]*sql.Stmt{}}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlstore: connect to PostgreSQL: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrateLockID))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlstore: migrations: %w", err)
	}
	if err := s.migrate(ctx, goose.WithSessionLocker(locker)); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// appendPostgres stores evs in one transaction.
//
// The seq must be global across instances, and — for websocket resume and
// for the Followers — a seq must never become visible after a higher one
// was seen: a reader that has seen seq N must be able to trust that every
// event <= N it will ever see is already visible. A plain sequence does not
// give that (transaction A takes 10, B takes 11, B commits first: a reader
// sees 11, moves its cursor past 10, and 10 appears later). So every Append
// first takes one transaction-level advisory lock, and only then allocates
// its seqs: the transaction holding the lock is the only one allocating,
// and PostgreSQL makes a commit visible before it releases the
// transaction's locks, so the next holder's seqs are all higher than every
// seq already visible, and commit order is seq order. The lock is held for
// one batch's insert and commit; group commit keeps batches few.
//
// Seqs rolled back with a failed transaction are never used: seq has gaps,
// which readers tolerate (they read seq > cursor, not cursor+1).
func (s *Store) appendPostgres(ctx context.Context, evs []Event) error {
	n := len(evs)
	var (
		at                                                   = make([]int64, n)
		login, kind, source, nas, sessionID, mac, ip, reason = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		detail                                               = make([]*string, n)
		seqs                                                 = make([]int64, n)
	)
	for i := range evs {
		ev := &evs[i]
		if ev.Detail != nil {
			b, err := ev.DetailJSON()
			if err != nil {
				return err
			}
			d := string(b)
			detail[i] = &d
		}
		at[i], login[i], kind[i], source[i], nas[i] = ev.At.UnixMicro(), ev.Login, string(ev.Kind), ev.Source, ev.NAS
		sessionID[i], mac[i], ip[i], reason[i] = ev.SessionID, ev.MAC, ev.IP, ev.Reason
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", appendLockKey); err != nil {
		return fmt.Errorf("append lock: %w", err)
	}
	// n seqs in one step: nextval gives the first, setval moves the
	// sequence past the last. Safe because only the lock holder touches it.
	var last int64
	if err := tx.QueryRowContext(ctx, "SELECT setval('events_seq', nextval('events_seq') + $1 - 1)", n).Scan(&last); err != nil {
		return fmt.Errorf("allocate seq: %w", err)
	}
	for i := range seqs {
		seqs[i] = last - int64(n) + 1 + int64(i)
	}
	// One statement whatever the batch size (arrays, not n×11 parameters);
	// the NOTIFY is delivered only if and when the transaction commits.
	_, err = tx.ExecContext(ctx, `WITH ins AS (
		INSERT INTO events (`+eventColumns+`)
		SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
	) SELECT pg_notify($12, $13)`,
		seqs, at, login, kind, source, nas, sessionID, mac, ip, reason, detail, NotifyChannel, strconv.FormatInt(last, 10))
	if err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for i := range evs {
		evs[i].Seq = seqs[i]
	}
	return nil
}
