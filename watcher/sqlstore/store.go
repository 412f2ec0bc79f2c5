package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"authwatch/watcher"
)

// Options say which database to open.
type Options struct {
	Driver      string // "sqlite" (default) or "postgres"
	Path        string // SQLite file
	Synchronous string // SQLite: "full" (default) or "normal"
	// DSN is PostgreSQL's connection string (a URL or key=value pairs, as
	// libpq and pgx read them).
	DSN    string
	Logger *slog.Logger
}

// Store is a watcher.Store in a SQL database.
type Store struct {
	d   dialect
	w   *sqlx.DB // SQLite: the one writer connection; PostgreSQL: the pool
	r   *sqlx.DB // readers (PostgreSQL: the same pool as w)
	log *slog.Logger
	dsn string // PostgreSQL: for the Follower's and the Locks' own connections

	mu      sync.Mutex // serialises writes; guards the fields below
	lastSeq int64      // seqInWriter dialects: highest seq committed
	inserts map[int]*sql.Stmt
}

var _ watcher.Store = (*Store)(nil)

// Open opens (creating if needed) the database and applies its migrations.
func Open(ctx context.Context, o Options) (*Store, error) {
	d, err := dialectFor(o.Driver)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if d.name == "postgres" {
		return openPostgres(ctx, d, o)
	}
	if o.Path == "" {
		return nil, errors.New("sqlstore: no path for the SQLite file")
	}
	w, err := sqlx.Open(d.driver, sqliteDSN(o.Path, o.Synchronous, true))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", o.Path, err)
	}
	// SQLite has one writer at a time; one connection makes that explicit and
	// lets the single writer assign seq without a round trip.
	w.SetMaxOpenConns(1)
	w.SetConnMaxLifetime(0)
	s := &Store{d: d, w: w, log: o.Logger, inserts: map[int]*sql.Stmt{}}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sqlx.Open(d.driver, sqliteDSN(o.Path, o.Synchronous, false))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlstore: open %s: %w", o.Path, err)
	}
	r.SetMaxOpenConns(4)
	s.r = r
	if err := w.GetContext(ctx, &s.lastSeq, "SELECT COALESCE(MAX(seq), 0) FROM events"); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlstore: read last seq: %w", err)
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context, opts ...goose.ProviderOption) error {
	fsys, err := s.d.migrations()
	if err != nil {
		return fmt.Errorf("sqlstore: migrations: %w", err)
	}
	p, err := goose.NewProvider(s.d.goose, s.w.DB, fsys, opts...)
	if err != nil {
		return fmt.Errorf("sqlstore: migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: apply migrations: %w", err)
	}
	for _, r := range res {
		s.log.Info("store: migration applied", "version", r.Source.Version, "file", r.Source.Path)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.inserts {
		st.Close()
	}
	var errs []error
	if s.r != nil && s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	return nil
}

const eventColumns = "seq, at, login, kind, source, nas, session_id, mac, ip, reason, detail"

// rowsPerInsert is how many events one INSERT statement carries: enough to
// cut per-statement overhead, few enough that statements stay cached.
const rowsPerInsert = 128

// Append stores evs in one transaction and sets their Seq.
func (s *Store) Append(ctx context.Context, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	if !s.d.seqInWriter {
		return s.appendPostgres(ctx, evs)
	}
	args := make([]any, 0, 11*min(len(evs), rowsPerInsert))
	s.mu.Lock()
	defer s.mu.Unlock()
	// Prepare before BEGIN: the writer has a single connection, which the
	// transaction then holds.
	for _, n := range []int{min(len(evs), rowsPerInsert), len(evs) % rowsPerInsert} {
		if n > 0 {
			if _, err := s.insertStmt(ctx, n); err != nil {
				return err
			}
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	seq := s.lastSeq
	for start := 0; start < len(evs); start += rowsPerInsert {
		chunk := evs[start:min(start+rowsPerInsert, len(evs))]
		args = args[:0]
		for i := range chunk {
			seq++
			ev := &chunk[i]
			var detail any
			if ev.Detail != nil {
				b, err := ev.DetailJSON()
				if err != nil {
					return err
				}
				detail = string(b)
			}
			args = append(args, seq, ev.At.UnixMicro(), ev.Login, string(ev.Kind), ev.Source, ev.NAS, ev.SessionID, ev.MAC, ev.IP, ev.Reason, detail)
		}
		st, err := s.insertStmt(ctx, len(chunk))
		if err != nil {
			return err
		}
		if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for i := range evs {
		s.lastSeq++
		evs[i].Seq = s.lastSeq
	}
	return nil
}

// writer takes the single-writer lock where the dialect has a single writer
// (SQLite) and returns its release; PostgreSQL takes concurrent writes.
func (s *Store) writer() (unlock func()) {
	if !s.d.seqInWriter {
		return func() {}
	}
	s.mu.Lock()
	return s.mu.Unlock
}

// insertStmt returns the cached INSERT for n rows; s.mu must be held.
func (s *Store) insertStmt(ctx context.Context, n int) (*sql.Stmt, error) {
	if st, ok := s.inserts[n]; ok {
		return st, nil
	}
	var b strings.Builder
	b.WriteString("INSERT INTO events (" + eventColumns + ") VALUES ")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?,?,?,?)")
	}
	st, err := s.w.PrepareContext(ctx, s.w.Rebind(b.String()))
	if err != nil {
		return nil, fmt.Errorf("prepare insert: %w", err)
	}
	s.inserts[n] = st
	return st, nil
}

// Event is an alias kept short for the signatures above.
type Event = watcher.Event

type eventRow struct {
	Seq       int64          `db:"seq"`
	At        int64          `db:"at"`
	Login     string         `db:"login"`
	Kind      string         `db:"kind"`
	Source    string         `db:"source"`
	NAS       string         `db:"nas"`
	SessionID string         `db:"session_id"`
	MAC       string         `db:"mac"`
	IP        string         `db:"ip"`
	Reason    string         `db:"reason"`
	Detail    sql.NullString `db:"detail"`
}

func (r *eventRow) event() (Event, error) {
	ev := Event{
		Seq: r.Seq, At: time.UnixMicro(r.At).UTC(), Login: r.Login, Kind: watcher.Kind(r.Kind),
		Source: r.Source, NAS: r.NAS, SessionID: r.SessionID, MAC: r.MAC, IP: r.IP, Reason: r.Reason,
	}
	if r.Detail.Valid && r.Detail.String != "" {
		ev.Detail = new(watcher.Detail)
		if err := json.Unmarshal([]byte(r.Detail.String), ev.Detail); err != nil {
			return ev, fmt.Errorf("event %d: detail: %w", r.Seq, err)
		}
	}
	return ev, nil
}

// DefaultLimit is how many events Events returns when the query sets none.
const DefaultLimit = 1000

// Events returns the events selected by q in increasing seq order.
func (s *Store) Events(ctx context.Context, q watcher.Query) ([]Event, error) {
	var (
		where []string
		args  []any
	)
	if q.Login != "" && q.Login != watcher.Firehose {
		where, args = append(where, "login = ?"), append(args, q.Login)
	}
	if q.After > 0 {
		where, args = append(where, "seq > ?"), append(args, q.After)
	}
	if q.Before > 0 {
		where, args = append(where, "seq < ?"), append(args, q.Before)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	query := "SELECT " + eventColumns + " FROM events"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	if q.Newest {
		query += " ORDER BY seq DESC"
	} else {
		query += " ORDER BY seq"
	}
	query += " LIMIT ?"
	args = append(args, limit)
	rows, err := s.r.QueryxContext(ctx, s.r.Rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var r eventRow
		if err := rows.StructScan(&r); err != nil {
			return nil, fmt.Errorf("sqlstore: events: %w", err)
		}
		ev, err := r.event()
		if err != nil {
			return nil, fmt.Errorf("sqlstore: %w", err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: events: %w", err)
	}
	if q.Newest {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out, nil
}

// replayChunk bounds how many rows one replay query reads, so that a long
// replay never holds one read transaction open for its whole length.
const replayChunk = 10000

// Replay calls fn for every event with seq > after, in order.
func (s *Store) Replay(ctx context.Context, after int64, fn func(Event) error) error {
	for {
		evs, err := s.Events(ctx, watcher.Query{After: after, Limit: replayChunk})
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := fn(ev); err != nil {
				return err
			}
			after = ev.Seq
		}
		if len(evs) < replayChunk {
			return nil
		}
	}
}

// FindLogins returns distinct logins matching f, most recently seen first.
func (s *Store) FindLogins(ctx context.Context, f watcher.Find) ([]string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 20
	}
	var where string
	var args []any
	switch f.Field {
	case "login":
		// A range on the (login, seq) index: "prefix" <= login < "prefix\xff"
		// (or its PostgreSQL equivalent, see dialect.loginBelow).
		if below, ok := s.d.loginBelow(f.Value); ok {
			where, args = "login >= ? AND login < ? AND login <> ''", []any{f.Value, below}
		} else {
			where, args = "login >= ? AND login <> ''", []any{f.Value}
		}
	case "mac", "ip":
		if f.Value == "" {
			return nil, nil // an absent MAC or IP matches nobody
		}
		// The same predicate as the partial indexes (migration 00005), so
		// they are used: interim updates repeat what the start said.
		where, args = f.Field+" = ? AND login <> '' AND "+f.Field+" <> '' AND kind <> 'session.update'", []any{f.Value}
	default:
		return nil, fmt.Errorf("sqlstore: find by %q", f.Field)
	}
	var logins []string
	q := "SELECT login FROM events WHERE " + where + " GROUP BY login ORDER BY MAX(seq) DESC LIMIT ?"
	if err := s.r.SelectContext(ctx, &logins, s.r.Rebind(q), append(args, limit)...); err != nil {
		return nil, fmt.Errorf("sqlstore: find logins by %s: %w", f.Field, err)
	}
	return logins, nil
}

// LastSeq returns the highest seq stored.
func (s *Store) LastSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.r.GetContext(ctx, &seq, "SELECT COALESCE(MAX(seq), 0) FROM events"); err != nil {
		return 0, fmt.Errorf("sqlstore: last seq: %w", err)
	}
	return seq, nil
}

// pruneChunk bounds one DELETE, so that pruning never holds the write lock
// long enough to delay accounting acks noticeably.
const pruneChunk = 5000

// Prune deletes events older than before, in small transactions.
func (s *Store) Prune(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.deleteOlder(ctx, "SELECT seq FROM events WHERE at < ? ORDER BY at LIMIT ?", "DELETE FROM events WHERE seq IN", before)
	if err != nil {
		return n, fmt.Errorf("sqlstore: prune: %w", err)
	}
	return n, nil
}

// deleteOlder deletes, pruneChunk rows per transaction, the rows whose keys
// pick (a SELECT taking the time and a limit) returns: "del (pick)". It
// pauses between transactions so that writers waiting for the lock go first.
func (s *Store) deleteOlder(ctx context.Context, pick, del string, before time.Time) (int64, error) {
	var total int64
	q := s.w.Rebind(del + " (" + pick + ")")
	for {
		unlock := s.writer()
		res, err := s.w.ExecContext(ctx, q, before.UnixMicro(), pruneChunk)
		unlock()
		if err != nil {
			return total, err
		}
		n, _ := res.RowsAffected()
		total += n
		if n < pruneChunk {
			return total, nil
		}
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// SaveCheckpoint replaces the saved checkpoint with cp in one transaction:
// the header row, then its parts.
func (s *Store) SaveCheckpoint(ctx context.Context, cp watcher.Checkpoint) error {
	defer s.writer()()
	fail := func(err error) error { return fmt.Errorf("sqlstore: save checkpoint: %w", err) }
	tx, err := s.w.BeginTxx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	q := `INSERT INTO state_checkpoint (id, seq, saved_at) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, saved_at = excluded.saved_at`
	if s.d.keepNewestCheckpoint {
		// The row lock this takes serialises instances saving at once.
		q += " WHERE state_checkpoint.seq <= excluded.seq"
	}
	res, err := tx.ExecContext(ctx, tx.Rebind(q), cp.Seq, time.Now().UnixMicro())
	if err != nil {
		return fail(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fail(err)
	} else if n == 0 {
		return nil // another instance saved a newer one
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM state_checkpoint_parts"); err != nil {
		return fail(err)
	}
	ins, err := tx.PreparexContext(ctx, tx.Rebind("INSERT INTO state_checkpoint_parts (idx, data) VALUES (?, ?)"))
	if err != nil {
		return fail(err)
	}
	defer ins.Close()
	for i, p := range cp.Parts {
		if _, err := ins.ExecContext(ctx, i, p); err != nil {
			return fail(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return nil
}

// LoadCheckpoint hands the saved checkpoint's parts to part, in order, from
// one read transaction (the parts and the seq of one save), and returns its
// seq, or watcher.ErrNotFound.
func (s *Store) LoadCheckpoint(ctx context.Context, part func([]byte) error) (int64, error) {
	fail := func(err error) (int64, error) { return 0, fmt.Errorf("sqlstore: load checkpoint: %w", err) }
	tx, err := s.r.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	var seq int64
	err = tx.GetContext(ctx, &seq, "SELECT seq FROM state_checkpoint WHERE id = 1")
	if errors.Is(err, sql.ErrNoRows) {
		return 0, watcher.ErrNotFound
	}
	if err != nil {
		return fail(err)
	}
	rows, err := tx.QueryContext(ctx, "SELECT data FROM state_checkpoint_parts ORDER BY idx")
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	for rows.Next() {
		// RawBytes: the driver's own buffer, valid until Next, not a copy.
		var data sql.RawBytes
		if err := rows.Scan(&data); err != nil {
			return fail(err)
		}
		if err := part(data); err != nil {
			return fail(err)
		}
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return seq, nil
}
