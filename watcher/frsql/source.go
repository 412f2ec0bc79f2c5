package frsql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"

	"authwatch/watcher"
)

// Timing and sizes of the source, named so the choices are visible.
const (
	// batchRows is how many rows one query reads, and so the most events
	// one commit carries.
	batchRows = 500
	// maxPages bounds the queries of one table per poll; a backlog (a
	// backfill, a long stop) is read over several polls, so that the
	// other table and the status keep moving.
	maxPages = 20
	// queryTimeout bounds one poll's work on the database.
	queryTimeout = 30 * time.Second
	// dialTimeout bounds connecting, when the DSN sets no timeout.
	dialTimeout = 10 * time.Second
	// lookback is how far before the database's clock a sweep looks for
	// changes of radacct again, every sweepEvery (see changeCursor): how
	// late a change may become visible, or how far behind a NAS's clock
	// may be, and still be recorded.
	lookback   = time.Minute
	sweepEvery = 10 * time.Second
	// maxSeen bounds the changes remembered (and saved) as recorded
	// within lookback.
	maxSeen = 20000
	// holeWait is how long an id skipped by the sequence is looked for
	// again: an insert that took its id before another but committed
	// after it. Ids of rolled-back inserts never come.
	holeWait = 30 * time.Second
	// maxGap and maxHoles bound the ids looked for again: a larger jump
	// is a deletion, an auto_increment change, a sequence restart.
	maxGap   = 100
	maxHoles = 1000
	// maxOwners bounds the sessions whose owner (this source, or another
	// that already reported it) is remembered.
	maxOwners = 200000
	// backoffMax bounds the wait between attempts while the database
	// fails.
	backoffMax = 30 * time.Second
	// errorLogEvery rate-limits repeating the same error in the log.
	errorLogEvery = time.Minute
	// restoreRetry is the wait between attempts to read the saved
	// position from a store that fails.
	restoreRetry = 2 * time.Second
)

// Recorder is where the source hands its events: Commit stores them durably
// and returns once they are (or with the error that kept them out).
// *watcher.Recorder is one.
type Recorder interface {
	Commit(ctx context.Context, evs ...watcher.Event) ([]watcher.Event, error)
}

var _ Recorder = (*watcher.Recorder)(nil)

// Status is how following one database is going, for /healthz and the
// sources' status page.
type Status struct {
	Name   string `json:"name"`
	Driver string `json:"driver"`
	// Connected says the last poll succeeded; Since is when that state
	// began.
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since,omitzero"`
	LastPoll  time.Time `json:"last_poll,omitzero"`
	// LastError is the last thing that went wrong (connecting, a missing
	// table or column, a refused SELECT, the store); it stays after
	// recovery, with its time.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	PostAuth    Table     `json:"postauth"`
	Acct        Table     `json:"acct"`
	// Events counts events recorded; Skipped radacct rows of sessions
	// another source (RADIUS accounting, RouterOS) already reports;
	// Invalid rows that could not become an event (an unknown reply, a
	// login that is not UTF-8…); Failures failed polls.
	Events   int64 `json:"events"`
	Skipped  int64 `json:"skipped"`
	Invalid  int64 `json:"invalid"`
	Polls    int64 `json:"polls"`
	Failures int64 `json:"failures"`
}

// Table is how one table is followed.
type Table struct {
	Table   string `json:"table"`
	Enabled bool   `json:"enabled"`
	// Columns are the columns read, as detected at connect.
	Columns []string `json:"columns,omitempty"`
	// LastID is the highest id read; LastRow the time of the last row
	// read (authdate, or the start, update or stop time).
	LastID  int64     `json:"last_id"`
	LastRow time.Time `json:"last_row,omitzero"`
	Rows    int64     `json:"rows"`
}

// Source follows FreeRADIUS's radpostauth and radacct tables in one
// database and records what they show as watcher events with Source
// "frsql:<name>".
type Source struct {
	cfg       Config
	cfgErr    error
	loc       *time.Location
	d         dialect
	conv      converter
	rec       Recorder
	positions watcher.PositionStore
	log       *slog.Logger
	source    string
	known     func(nas, sessionID string) bool

	// Set by tests.
	pollEvery  time.Duration
	backoffMax time.Duration
	lookback   time.Duration
	sweepEvery time.Duration
	batch      int
	stepped    chan<- error // told after every step, with its error

	running atomic.Bool

	events, skipped, invalid, polls, failures, paRows, acRows atomic.Int64

	mu sync.Mutex
	st Status // the fields not kept in the counters above

	// Owned by Run's goroutine.
	db          *sqlx.DB
	secret      string // the DSN's password, scrubbed from errors
	pa, ac      *schema
	pos         position
	dirty       bool // pos changed since it was saved
	paHoles     holes
	acHoles     holes
	upd, stop   *changeCursor
	sweptAt     time.Time      // when radacct was last swept
	owners      map[int64]bool // radacctid → another source reports it
	failing     bool
	lastErrLog  string
	lastErrTime time.Time
	lastBadLog  time.Time
}

// New returns a source for one database. cfg is validated by Run (and should
// be at start, with Validate). positions keeps how far the tables were read
// across restarts; with nil every run starts like a first one. logger may
// be nil.
func New(cfg Config, rec Recorder, positions watcher.PositionStore, logger *slog.Logger) *Source {
	if logger == nil {
		logger = slog.Default()
	}
	s := &Source{
		cfgErr:     cfg.Validate(),
		cfg:        cfg.withDefaults(),
		d:          dialect{driver: cfg.Driver},
		rec:        rec,
		positions:  positions,
		source:     "frsql:" + cfg.Name,
		backoffMax: backoffMax,
		lookback:   lookback,
		sweepEvery: sweepEvery,
		batch:      batchRows,
		owners:     map[int64]bool{},
		paHoles:    holes{},
		acHoles:    holes{},
	}
	s.pollEvery = s.cfg.PollInterval
	if cfg.Driver == MySQL {
		driverLogOnce.Do(func() { mysql.SetLogger(driverLog{}) })
	}
	s.log = logger.With("source", s.source)
	s.loc = time.Local
	if s.cfgErr == nil {
		s.loc, _ = cfg.location()
	}
	s.conv = converter{cfg: s.cfg, loc: s.loc, source: s.source, now: time.Now}
	s.st = Status{
		Name: cfg.Name, Driver: cfg.Driver, Since: time.Now(),
		PostAuth: Table{Table: s.cfg.PostAuthTable, Enabled: s.cfg.FollowPostAuth()},
		Acct:     Table{Table: s.cfg.AcctTable, Enabled: s.cfg.FollowAcct()},
	}
	return s
}

// SetKnown gives the source a way to ask whether another source (RADIUS
// accounting, RouterOS) already reports a session, by NAS name and
// Acct-Session-Id; KnownFrom makes one from the State. A radacct row whose
// session is known when the source first sees it is left to that source:
// neither its start nor its updates nor its stop are recorded from the
// table. Call before Run.
func (s *Source) SetKnown(known func(nas, sessionID string) bool) {
	if s.running.Load() {
		s.log.Error("frsql: SetKnown called while running; ignored")
		return
	}
	s.known = known
}

// Name returns the source's name from the configuration.
func (s *Source) Name() string { return s.cfg.Name }

// Status returns how following the database is going.
func (s *Source) Status() Status {
	s.mu.Lock()
	st := s.st
	st.PostAuth.Columns = append([]string(nil), st.PostAuth.Columns...)
	st.Acct.Columns = append([]string(nil), st.Acct.Columns...)
	s.mu.Unlock()
	st.Events, st.Skipped, st.Invalid = s.events.Load(), s.skipped.Load(), s.invalid.Load()
	st.Polls, st.Failures = s.polls.Load(), s.failures.Load()
	st.PostAuth.Rows, st.Acct.Rows = s.paRows.Load(), s.acRows.Load()
	return st
}

// Run follows the tables until ctx ends. It returns nil then, and an error
// only for a configuration that can never work; an unreachable database, a
// missing table or column, a refused SELECT or a failing store are
// reported in Status and retried with backoff. Run must not be called
// twice at once.
func (s *Source) Run(ctx context.Context) error {
	if s.cfgErr != nil {
		return fmt.Errorf("sql_source %q: %w", s.cfg.Name, s.cfgErr)
	}
	if !s.running.CompareAndSwap(false, true) {
		return fmt.Errorf("sql_source %q: already running", s.cfg.Name)
	}
	defer s.running.Store(false)
	defer s.closeDB()

	saved, ok := s.loadPosition(ctx)
	if !ok {
		return nil // ctx ended
	}
	if saved != nil {
		s.pos = *saved
	}
	s.pos.V = positionVersion
	s.log.Info("frsql: following", "driver", s.cfg.Driver, "postauth", s.cfg.FollowPostAuth(), "acct", s.cfg.FollowAcct(), "resume", saved != nil)

	fails := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		err := s.step(ctx)
		if ctx.Err() != nil {
			err = nil
		}
		s.noteErr(err)
		wait := s.pollEvery
		if err != nil {
			fails++
			wait = s.backoff(fails)
		} else {
			fails = 0
		}
		if s.stepped != nil {
			select {
			case s.stepped <- err:
			case <-ctx.Done():
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := s.savePosition(sctx); err != nil {
				s.log.Warn("frsql: position not saved at stop; the last rows may be read again", "err", err)
			}
			cancel()
			return nil
		case <-timer.C:
		}
	}
}

// backoff is the wait after the n-th failure in a row: doubling from the
// poll interval, with jitter, up to backoffMax.
func (s *Source) backoff(n int) time.Duration {
	d := s.pollEvery
	for i := 1; i < n && d < s.backoffMax; i++ {
		d *= 2
	}
	d = min(d, s.backoffMax)
	return d/2 + rand.N(d/2+1)
}

// step is one poll: connect and look at the schema when needed, then read
// what is new in each table.
func (s *Source) step(ctx context.Context) (err error) {
	s.polls.Add(1)
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	defer func() {
		if err != nil {
			// Look at the schema again next time: a column may have
			// been renamed, a grant changed. The connection pool is
			// closed, so that a rotated DSN file is read again.
			s.pa, s.ac = nil, nil
			s.closeDB()
			s.setConnected(false)
		}
	}()
	if s.db == nil {
		if s.db, err = s.open(); err != nil {
			return err
		}
	}
	if err := s.prepare(ctx); err != nil {
		return err
	}
	if s.cfg.FollowPostAuth() {
		if err := s.pollPostAuth(ctx); err != nil {
			return err
		}
	}
	if s.cfg.FollowAcct() {
		if err := s.pollAcct(ctx); err != nil {
			return err
		}
	}
	if s.dirty {
		if err := s.savePosition(ctx); err != nil {
			return err
		}
	}
	s.setConnected(true)
	return nil
}

// open makes the connection pool. Nothing is dialled until the first query.
func (s *Source) open() (*sqlx.DB, error) {
	dsn := s.cfg.DSN
	if s.cfg.DSNFile != "" {
		b, err := os.ReadFile(s.cfg.DSNFile)
		if err != nil {
			return nil, fmt.Errorf("read dsn_file: %w", err)
		}
		dsn = strings.TrimSpace(string(b))
		if err := checkDSN(s.cfg.Driver, dsn); err != nil {
			return nil, fmt.Errorf("dsn_file %s: %w", s.cfg.DSNFile, err)
		}
	}
	var db *sql.DB
	switch s.cfg.Driver {
	case MySQL:
		mc, err := mysql.ParseDSN(dsn)
		if err != nil {
			return nil, fmt.Errorf("dsn: %w", err)
		}
		s.secret = mc.Passwd
		// Times come back as time.Time, their wall clock read in the
		// configured zone; times sent in queries are written in it.
		mc.ParseTime, mc.Loc = true, s.loc
		if mc.Timeout == 0 {
			mc.Timeout = dialTimeout
		}
		if mc.ReadTimeout == 0 {
			mc.ReadTimeout = queryTimeout
		}
		if mc.WriteTimeout == 0 {
			mc.WriteTimeout = queryTimeout
		}
		conn, err := mysql.NewConnector(mc)
		if err != nil {
			return nil, fmt.Errorf("dsn: %w", err)
		}
		db = sql.OpenDB(conn)
	case Postgres:
		pc, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("dsn: %w", err)
		}
		s.secret = pc.Password
		if pc.ConnectTimeout == 0 {
			pc.ConnectTimeout = dialTimeout
		}
		// authwatch only reads; a user with more rights than the
		// README asks for still cannot write through it.
		pc.RuntimeParams["default_transaction_read_only"] = "on"
		if pc.RuntimeParams["application_name"] == "" {
			pc.RuntimeParams["application_name"] = "authwatch"
		}
		db = stdlib.OpenDB(*pc)
	default:
		return nil, fmt.Errorf("driver %q unknown", s.cfg.Driver)
	}
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	db.SetConnMaxLifetime(10 * time.Minute) // under MySQL's usual wait_timeout
	return sqlx.NewDb(db, map[string]string{MySQL: "mysql", Postgres: "pgx"}[s.cfg.Driver]), nil
}

func (s *Source) closeDB() {
	if s.db != nil {
		s.db.Close()
		s.db = nil
	}
}

// prepare detects the tables' columns (at connect, and after any error),
// and sets up the cursors from the saved position, or from the database's
// present on a first run.
func (s *Source) prepare(ctx context.Context) error {
	if (s.pa != nil || !s.cfg.FollowPostAuth()) && (s.ac != nil || !s.cfg.FollowAcct()) {
		return nil
	}
	var pa, ac *schema
	var err error
	if s.cfg.FollowPostAuth() {
		if pa, err = detect(ctx, s.db, s.d, s.cfg, postAuthTable, s.cfg.PostAuthTable); err != nil {
			return err
		}
	}
	if s.cfg.FollowAcct() {
		if ac, err = detect(ctx, s.db, s.d, s.cfg, acctTable, s.cfg.AcctTable); err != nil {
			return err
		}
	}
	now, err := s.dbNow(ctx)
	if err != nil {
		return err
	}
	fresh := false
	if pa != nil {
		p := s.pos.PostAuth
		if p == nil || p.Table != s.cfg.PostAuthTable {
			id, err := s.startID(ctx, pa, "time", now)
			if err != nil {
				return err
			}
			s.pos.PostAuth, fresh = &idPos{Table: s.cfg.PostAuthTable, ID: id}, true
		} else if err := s.checkShrunk(ctx, pa, &p.ID); err != nil {
			return err
		}
	}
	if ac != nil {
		p := s.pos.Acct
		if p == nil || p.Table != s.cfg.AcctTable {
			id, err := s.startID(ctx, ac, "start_time", now)
			if err != nil {
				return err
			}
			p, fresh = &acctPos{Table: s.cfg.AcctTable, ID: id}, true
			s.pos.Acct = p
			s.upd, s.stop = nil, nil
		} else if err := s.checkShrunk(ctx, ac, &p.ID); err != nil {
			return err
		}
		for _, c := range []struct {
			col string
			k   **cursorPos
		}{{"update_time", &p.Update}, {"stop_time", &p.Stop}} {
			if *c.k == nil && ac.has(c.col) {
				// From now, less the lookback a sweep would give.
				t := now.of(ac.byName[c.col]).Add(-s.cfg.Backfill - s.lookback)
				*c.k, fresh = &cursorPos{keyset: keyset{T: t}}, true
			}
		}
		// The cursors live across reconnects (with what they remember);
		// they are made from the position once.
		switch {
		case s.upd == nil && p.Update != nil && ac.has("update_time"):
			s.upd = newChangeCursor("update_time", *p.Update)
		case s.upd != nil && !ac.has("update_time"):
			s.upd = nil
		}
		if s.stop == nil {
			s.stop = newChangeCursor("stop_time", *p.Stop)
		}
	}
	if fresh {
		// Saved before anything is read: a restart soon after must not
		// start again from a later "now" and skip what came between.
		s.dirty = true
		if err := s.savePosition(ctx); err != nil {
			return err
		}
	}
	s.pa, s.ac = pa, ac
	s.mu.Lock()
	if pa != nil {
		s.st.PostAuth.Columns, s.st.PostAuth.LastID = pa.actualColumns(), s.pos.PostAuth.ID
	}
	if ac != nil {
		s.st.Acct.Columns, s.st.Acct.LastID = ac.actualColumns(), s.pos.Acct.ID
	}
	s.mu.Unlock()
	var paCols, acCols []string
	if pa != nil {
		paCols = pa.actualColumns()
	}
	if ac != nil {
		acCols = ac.actualColumns()
	}
	s.log.Info("frsql: connected", "postauth_columns", paCols, "acct_columns", acCols)
	return nil
}

// nowPair is the database's clock in both forms of nowQuery.
type nowPair struct{ zoned, wall time.Time }

// of returns the form that compares with col.
func (n nowPair) of(col *column) time.Time {
	if col != nil && col.naive {
		return n.wall
	}
	return n.zoned
}

func (s *Source) dbNow(ctx context.Context) (nowPair, error) {
	var n nowPair
	if err := s.db.QueryRowxContext(ctx, s.d.nowQuery()).Scan(&n.zoned, &n.wall); err != nil {
		return n, fmt.Errorf("read the database's clock: %w", err)
	}
	return n, nil
}

// startID is where a first run starts reading a table by id: after the
// last row, or, with Backfill, before the first row of that period.
func (s *Source) startID(ctx context.Context, sch *schema, timeCol string, now nowPair) (int64, error) {
	var maxID int64
	if err := s.db.GetContext(ctx, &maxID, sch.maxID(s.d)); err != nil {
		return 0, fmt.Errorf("table %s: read the last id: %w", sch.name, err)
	}
	if s.cfg.Backfill <= 0 {
		return maxID, nil
	}
	since := now.of(sch.byName[timeCol]).Add(-s.cfg.Backfill)
	var first sql.NullInt64
	if err := s.db.GetContext(ctx, &first, s.db.Rebind(sch.firstIDSince(s.d, timeCol)), since); err != nil {
		return 0, fmt.Errorf("table %s: find where the backfill starts: %w", sch.name, err)
	}
	if !first.Valid {
		return maxID, nil
	}
	return first.Int64 - 1, nil
}

// checkShrunk notices a table emptied or recreated since the position was
// saved (its ids start again lower): it is then read from its start.
func (s *Source) checkShrunk(ctx context.Context, sch *schema, last *int64) error {
	var maxID int64
	if err := s.db.GetContext(ctx, &maxID, sch.maxID(s.d)); err != nil {
		return fmt.Errorf("table %s: read the last id: %w", sch.name, err)
	}
	if maxID < *last {
		s.log.Warn("frsql: table has lower ids than already read (emptied or recreated?); reading it from its start", "table", sch.name, "read_up_to", *last, "max_id", maxID)
		*last, s.dirty = 0, true
		if sch.table.key == "acct" {
			s.acHoles = holes{}
		} else {
			s.paHoles = holes{}
		}
	}
	return nil
}

// query runs q and scans every row.
func (s *Source) query(ctx context.Context, sch *schema, q string, args ...any) ([]*row, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", sch.name, err)
	}
	defer rows.Close()
	var out []*row
	for rows.Next() {
		r := &row{}
		if err := rows.Scan(sch.scanDest(r)...); err != nil {
			return nil, fmt.Errorf("table %s: read a row: %w", sch.name, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("table %s: %w", sch.name, err)
	}
	return out, nil
}

// commit records evs; only after it returns nil may the cursors move.
func (s *Source) commit(ctx context.Context, evs []watcher.Event) error {
	if len(evs) == 0 {
		return nil
	}
	if _, err := s.rec.Commit(ctx, evs...); err != nil {
		return fmt.Errorf("record events: %w", err)
	}
	s.events.Add(int64(len(evs)))
	return nil
}

// keep adds ev to evs when it is valid to store; an invalid one is counted
// and, now and then, logged (by table and id only: the row is not trusted
// text).
func (s *Source) keep(evs []watcher.Event, ev watcher.Event, table string, id int64) []watcher.Event {
	if err := ev.Validate(); err != nil {
		s.badRow(table, id, err.Error())
		return evs
	}
	return append(evs, ev)
}

func (s *Source) badRow(table string, id int64, why string) {
	s.invalid.Add(1)
	if time.Since(s.lastBadLog) >= 10*time.Second {
		s.lastBadLog = time.Now()
		s.log.Warn("frsql: row skipped", "table", table, "id", id, "why", why, "invalid_total", s.invalid.Load())
	}
}

// pollPostAuth records the radpostauth rows after the last one read.
func (s *Source) pollPostAuth(ctx context.Context) error {
	sch, p := s.pa, s.pos.PostAuth
	emit := func(rows []*row) error {
		var evs []watcher.Event
		var last time.Time
		for _, r := range rows {
			ev, ok := s.conv.postAuthEvent(sch, r)
			if !ok {
				s.badRow(sch.name, r.ID, "reply is neither an accept nor a reject")
				continue
			}
			evs = s.keep(evs, ev, sch.name, r.ID)
			last = ev.At
		}
		if err := s.commit(ctx, evs); err != nil {
			return err
		}
		s.paRows.Add(int64(len(rows)))
		if !last.IsZero() {
			s.mu.Lock()
			s.st.PostAuth.LastRow = last
			s.mu.Unlock()
		}
		return nil
	}
	return s.readNewRows(ctx, sch, s.paHoles, &p.ID, &s.st.PostAuth, emit)
}

// readNewRows reads a table's rows after *id, page by page, once the holes
// its sequence left have been looked at again; it hands each page to emit
// and moves *id (and the table's status) past it.
func (s *Source) readNewRows(ctx context.Context, sch *schema, h holes, id *int64, st *Table, emit func([]*row) error) error {
	if err := s.readHoles(ctx, sch, h, emit); err != nil {
		return err
	}
	for range maxPages {
		rows, err := s.query(ctx, sch, sch.newRows(s.d, s.batch), *id)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			break
		}
		if err := emit(rows); err != nil {
			return err
		}
		h.note(*id, rows, time.Now())
		*id, s.dirty = rows[len(rows)-1].ID, true
		s.setLastID(st, *id)
		if len(rows) < s.batch {
			break
		}
	}
	return nil
}

// readHoles reads again the ids the sequence skipped, and records the rows
// that have appeared since.
func (s *Source) readHoles(ctx context.Context, sch *schema, h holes, emit func([]*row) error) error {
	h.expire(time.Now())
	if len(h) == 0 {
		return nil
	}
	ids := h.ids()
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.query(ctx, sch, sch.rowsByID(s.d, len(ids)), args...)
	if err != nil || len(rows) == 0 {
		return err
	}
	if err := emit(rows); err != nil {
		return err
	}
	for _, r := range rows {
		delete(h, r.ID)
	}
	return nil
}

// pollAcct records new radacct rows, then changes of the rows already read:
// interim updates, then stops.
func (s *Source) pollAcct(ctx context.Context) error {
	sch, p := s.ac, s.pos.Acct
	now, err := s.dbNow(ctx)
	if err != nil {
		return err
	}
	emitNew := func(rows []*row) error {
		var evs []watcher.Event
		var marks []func()
		for _, r := range rows {
			k := watcher.SessionStart
			if r.Stop.Valid {
				k = watcher.SessionStop
			}
			// What the row says now is recorded; the change queries
			// must not record it again.
			if r.Update.Valid && s.upd != nil {
				marks = append(marks, func() { s.upd.mark(r.ID, r.Update.Raw) })
			}
			if r.Stop.Valid {
				marks = append(marks, func() { s.stop.mark(r.ID, r.Stop.Raw) })
			}
			ev := s.conv.acctEvent(sch, r, k)
			if s.leave(r.ID, ev, k == watcher.SessionStop) {
				continue
			}
			evs = s.keep(evs, ev, sch.name, r.ID)
		}
		if err := s.commit(ctx, evs); err != nil {
			return err
		}
		for _, m := range marks {
			m()
		}
		s.dirty = s.dirty || len(marks) > 0
		s.acRows.Add(int64(len(rows)))
		s.noteAcctRow(evs)
		return nil
	}
	if err := s.readNewRows(ctx, sch, s.acHoles, &p.ID, &s.st.Acct, emitNew); err != nil {
		return err
	}
	sweep := time.Since(s.sweptAt) >= s.sweepEvery
	if s.upd != nil {
		if err := s.pollChanges(ctx, s.upd, now.of(sch.byName["update_time"]), sweep); err != nil {
			return err
		}
	}
	if err := s.pollChanges(ctx, s.stop, now.of(sch.byName["stop_time"]), sweep); err != nil {
		return err
	}
	if sweep {
		s.sweptAt = time.Now()
	}
	return nil
}

// pollChanges reads the rows whose update or stop time moved past the
// cursor and records session.update or session.stop for each.
func (s *Source) pollChanges(ctx context.Context, c *changeCursor, now time.Time, sweep bool) error {
	sch := s.ac
	c.now = now
	kind := watcher.SessionUpdate
	if c.col == "stop_time" {
		kind = watcher.SessionStop
	}
	key := c.from(now, s.lookback, sweep)
	for page := range maxPages {
		rows, err := s.query(ctx, sch, sch.changedRows(s.d, c.col, s.batch), s.pos.Acct.ID, key.T, key.T, key.ID)
		if err != nil {
			return err
		}
		var evs []watcher.Event
		var marks []keyset
		next := key
		for _, r := range rows {
			t := r.Update
			if kind == watcher.SessionStop {
				t = r.Stop
			}
			if !t.Valid {
				continue // not selected by the query; a zero date
			}
			next = keyset{T: t.Raw, ID: r.ID}
			if c.recorded(r.ID, t.Raw) {
				continue
			}
			marks = append(marks, next)
			ev := s.conv.acctEvent(sch, r, kind)
			if s.leave(r.ID, ev, kind == watcher.SessionStop) {
				continue
			}
			evs = s.keep(evs, ev, sch.name, r.ID)
		}
		if err := s.commit(ctx, evs); err != nil {
			return err
		}
		for _, m := range marks {
			c.mark(m.ID, m.T)
		}
		s.acRows.Add(int64(len(marks)))
		s.noteAcctRow(evs)
		key = next
		if c.last.less(key) {
			c.last, s.dirty = key, true
		}
		if len(rows) < s.batch {
			s.dirty = s.dirty || c.catching
			c.catching = false
			break
		}
		if page == maxPages-1 {
			c.resume, c.catching, s.dirty = key, true, true
		}
	}
	c.prune(s.lookback)
	return nil
}

// leave reports whether a radacct row's session is left to another source
// (see SetKnown), deciding when the row's session is first seen and
// remembering the answer until its stop.
func (s *Source) leave(id int64, ev watcher.Event, stop bool) bool {
	if s.known == nil {
		return false
	}
	other, decided := s.owners[id]
	if !decided {
		other = s.known(ev.NAS, ev.SessionID)
		if !stop {
			if len(s.owners) >= maxOwners {
				clear(s.owners) // stale sessions that never stopped; decide again
			}
			s.owners[id] = other
		}
	}
	if stop {
		delete(s.owners, id)
	}
	if other {
		s.skipped.Add(1)
	}
	return other
}

func (s *Source) noteAcctRow(evs []watcher.Event) {
	if len(evs) == 0 {
		return
	}
	s.mu.Lock()
	s.st.Acct.LastRow = evs[len(evs)-1].At
	s.mu.Unlock()
}

func (s *Source) setLastID(t *Table, id int64) {
	s.mu.Lock()
	t.LastID = id
	s.mu.Unlock()
}

func (s *Source) setConnected(up bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Connected != up {
		s.st.Connected, s.st.Since = up, time.Now()
	}
	if up {
		s.st.LastPoll = time.Now()
	}
}

// loadPosition reads the saved position, retrying while the store fails: a
// guess would replay or skip rows. It returns nil when there is none, and
// false when ctx ended.
func (s *Source) loadPosition(ctx context.Context) (*position, bool) {
	if s.positions == nil {
		return nil, true
	}
	for {
		b, err := s.positions.LoadPosition(ctx, s.source)
		switch {
		case errors.Is(err, watcher.ErrNotFound):
			return nil, true
		case err == nil:
			p, err := decodePosition(b)
			if err != nil {
				s.log.Warn("frsql: saved position unusable; starting as on a first run", "err", err)
				return nil, true
			}
			return p, true
		}
		s.noteErr(fmt.Errorf("load position: %w", err))
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(restoreRetry):
		}
	}
}

// savePosition saves how far the tables were read, when that changed.
func (s *Source) savePosition(ctx context.Context) error {
	if !s.dirty || s.positions == nil {
		s.dirty = false
		return nil
	}
	if p := s.pos.Acct; p != nil {
		if s.upd != nil {
			cp := s.upd.checkpoint(s.lookback)
			p.Update = &cp
		}
		if s.stop != nil {
			cp := s.stop.checkpoint(s.lookback)
			p.Stop = &cp
		}
	}
	b, err := json.Marshal(s.pos)
	if err != nil {
		return fmt.Errorf("encode position: %w", err)
	}
	if err := s.positions.SavePosition(ctx, s.source, b); err != nil {
		return fmt.Errorf("save position: %w", err)
	}
	s.dirty = false
	return nil
}

// noteErr records the outcome of a step: an error goes to Status and, unless
// it just did, to the log. The DSN's password is scrubbed from it.
func (s *Source) noteErr(err error) {
	if err == nil {
		if s.failing {
			s.failing = false
			s.log.Info("frsql: recovered")
		}
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	s.failures.Add(1)
	msg := scrub(fmt.Sprintf("sql_source %q: %v%s", s.cfg.Name, err, hint(err)), s.secret)
	now := time.Now()
	s.mu.Lock()
	s.st.LastError, s.st.LastErrorAt = msg, now
	s.mu.Unlock()
	s.failing = true
	if msg != s.lastErrLog || now.Sub(s.lastErrTime) >= errorLogEvery {
		s.lastErrLog, s.lastErrTime = msg, now
		s.log.Warn("frsql: not following; will retry", "err", msg)
	}
}

// hint adds what to do about the errors an administrator can fix.
func hint(err error) string {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1142, 1143, 1044: // table, column, database access denied
			return " (the user needs SELECT on the table: see the README for the grants)"
		case 1045:
			return " (user or password refused)"
		}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "42501": // insufficient_privilege
			return " (the user needs SELECT on the table: see the README for the grants)"
		case "28P01", "28000":
			return " (user or password refused)"
		}
	}
	return ""
}

// driverLog takes go-sql-driver's own messages (a bad idle connection
// closed, a broken pipe) off stderr: the error that matters reaches the
// source as well, and goes to its status.
type driverLog struct{}

var driverLogOnce sync.Once

func (driverLog) Print(v ...any) {
	slog.Debug("mysql driver: " + strings.TrimSpace(fmt.Sprint(v...)))
}

// scrub removes a password from a message, however it got there.
func scrub(msg, secret string) string {
	if len(secret) < 3 {
		return msg
	}
	return strings.ReplaceAll(msg, secret, "[redacted]")
}
