package sqlstore_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/sqlstore"
	"authwatch/watcher/sqlstore/pgtest"
)

// Tests of what only a store shared by several instances has: PostgreSQL.

func openPG(t *testing.T, dsn string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), sqlstore.Options{Driver: "postgres", DSN: dsn, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func seqsOf(evs []watcher.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

// appendBatches appends n batches of 1..maxBatch events from each store,
// concurrently, and returns when all are stored.
func appendBatches(t *testing.T, stores []*sqlstore.Store, n, maxBatch int, committed func(*sqlstore.Store, []watcher.Event)) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(stores))
	for si, s := range stores {
		wg.Go(func() {
			for b := range n {
				evs := make([]watcher.Event, 1+(b*7+si)%maxBatch)
				for i := range evs {
					evs[i] = ev(fmt.Sprintf("u%d-%d", si, i%5), watcher.SessionUpdate, t0.Add(time.Duration(b)*time.Second))
				}
				if err := s.Append(context.Background(), evs); err != nil {
					errs <- err
					return
				}
				if committed != nil {
					committed(s, evs)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestCommitOrderIsSeqOrder checks the promise that websocket resume and the
// Follower rest on: a reader that reads "seq > cursor" over and over while
// several instances append never skips an event, because no seq becomes
// visible after a higher one.
func TestCommitOrderIsSeqOrder(t *testing.T) {
	dsn := pgtest.DSN(t)
	stores := []*sqlstore.Store{openPG(t, dsn), openPG(t, dsn), openPG(t, dsn)}
	reader := openPG(t, dsn)

	done := make(chan struct{})
	var seen []int64
	readErr := make(chan error, 1)
	go func() {
		var cursor int64
		for {
			finished := false
			select {
			case <-done:
				finished = true
			default:
			}
			evs, err := reader.Events(context.Background(), watcher.Query{After: cursor, Limit: 500})
			if err != nil {
				readErr <- err
				return
			}
			for _, e := range evs {
				seen = append(seen, e.Seq)
				cursor = e.Seq
			}
			if finished && len(evs) == 0 {
				readErr <- nil
				return
			}
		}
	}()
	appendBatches(t, stores, 60, 20, nil)
	close(done)
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	all, err := reader.Events(context.Background(), watcher.Query{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	if want := seqsOf(all); !reflect.DeepEqual(seen, want) {
		t.Fatalf("a reader following by seq saw %d events, the table has %d: some seq became visible after a higher one", len(seen), len(want))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq != all[i-1].Seq+1 {
			t.Fatalf("seq gap between %d and %d with no failed append", all[i-1].Seq, all[i].Seq)
		}
	}
}

// collector is a Follower's deliver function that records what it gets.
type collector struct {
	mu  sync.Mutex
	evs []watcher.Event
}

func (c *collector) deliver(evs []watcher.Event) {
	c.mu.Lock()
	c.evs = append(c.evs, evs...)
	c.mu.Unlock()
}

func (c *collector) seqs() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return seqsOf(c.evs)
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFollowerDeliversEveryInstancesEvents runs instance B's Follower while
// A and B both append: B receives every event once, in seq order, its own
// through Committed and A's through NOTIFY and reads, also after its LISTEN
// connection is killed.
func TestFollowerDeliversEveryInstancesEvents(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, b := openPG(t, dsn), openPG(t, dsn)
	// Something stored before the follower starts is in its state already.
	if err := b.Append(context.Background(), []watcher.Event{ev("before", watcher.SessionStart, t0)}); err != nil {
		t.Fatal(err)
	}
	var got collector
	// A long poll: delivery here must come from NOTIFY and Committed.
	f, err := b.NewFollower(1, got.deliver, sqlstore.FollowerOptions{PollInterval: time.Minute, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitFor(t, 10*time.Second, "the follower to listen", func() bool { return f.ListenPID() != 0 })

	commit := func(s *sqlstore.Store, evs []watcher.Event) {
		if s == b {
			f.Committed(evs)
		}
	}
	appendBatches(t, []*sqlstore.Store{a, b}, 30, 10, commit)
	check := func(stage string) {
		t.Helper()
		all, err := a.Events(context.Background(), watcher.Query{After: 1, Limit: 100000})
		if err != nil {
			t.Fatal(err)
		}
		want := seqsOf(all)
		waitFor(t, 10*time.Second, stage+": every event delivered", func() bool { return len(got.seqs()) >= len(want) })
		if s := got.seqs(); !reflect.DeepEqual(s, want) {
			t.Fatalf("%s: delivered %d events %v…, want %d in seq order, once each", stage, len(s), s[:min(len(s), 20)], len(want))
		}
	}
	check("both appending")

	// Cut the LISTEN connection, as a restarted pgbouncer or a network
	// blip would; what A appends meanwhile must still arrive.
	pid := f.ListenPID()
	if n := pgtest.Exec(t, "SELECT pg_terminate_backend($1)", int32(pid)); n != 1 {
		t.Fatalf("pg_terminate_backend: %d rows", n)
	}
	appendBatches(t, []*sqlstore.Store{a}, 10, 10, nil)
	waitFor(t, 10*time.Second, "the follower to listen again", func() bool {
		p := f.ListenPID()
		return p != 0 && p != pid
	})
	appendBatches(t, []*sqlstore.Store{a, b}, 10, 10, commit)
	check("after the LISTEN connection was killed")
	if st := f.Stats(); st.Reconnects < 1 || st.Notifications == 0 {
		t.Errorf("stats %+v: want a reconnect and notifications", st)
	}
}

// TestFollowerPolls delivers with no NOTIFY at all (a wake-up lost for good)
// thanks to the poll.
func TestFollowerPolls(t *testing.T) {
	dsn := pgtest.DSN(t)
	s := openPG(t, dsn)
	var got collector
	f, err := s.NewFollower(0, got.deliver, sqlstore.FollowerOptions{PollInterval: 100 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitFor(t, 10*time.Second, "the follower to listen", func() bool { return f.ListenPID() != 0 })
	// Insert behind the store's back: no NOTIFY.
	pgtest.ExecDB(t, dsn, "INSERT INTO events (seq, at, login, kind, source) VALUES (nextval('events_seq'), 0, 'x', 'log', 'test')")
	waitFor(t, 5*time.Second, "the poll to deliver", func() bool { return len(got.seqs()) == 1 })
}

// TestLocks: one holder at a time; a lock goes with its holder's session.
func TestLocks(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, b := openPG(t, dsn).Locks(), openPG(t, dsn).Locks()
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	if !a.TryLock(ctx, "retention") {
		t.Fatal("a: first TryLock failed")
	}
	if !a.TryLock(ctx, "retention") {
		t.Fatal("a: holding the lock, TryLock says no")
	}
	if b.TryLock(ctx, "retention") {
		t.Fatal("b took a lock a holds")
	}
	if !b.TryLock(ctx, "watch:1") {
		t.Fatal("b: another name is free")
	}
	a.Unlock(ctx, "retention")
	if !b.TryLock(ctx, "retention") {
		t.Fatal("b: not taken after a unlocked")
	}
	// The sessions die (the database restarted, say): b notices it lost its
	// locks, and they are free for whoever asks first.
	if n := pgtest.ExecDB(t, dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'authwatch-locks' AND datname = current_database()"); n != 2 {
		t.Fatalf("terminated %d lock sessions, want 2", n)
	}
	time.Sleep(1100 * time.Millisecond) // past lockCheckEvery
	if b.TryLock(ctx, "retention") {
		t.Fatal("b still believes it holds the lock of a dead session")
	}
	locked := a.TryLock(ctx, "retention")
	if !locked {
		locked = a.TryLock(ctx, "retention") // the first try may find its own session dead
	}
	if !locked {
		t.Fatal("a: lock not free after b's session died")
	}
	if b.TryLock(ctx, "retention") {
		t.Fatal("b took the lock a holds now")
	}
}

func TestNotPostgres(t *testing.T) {
	s, _ := backends()[0].open(t)
	if s.Locks() != nil {
		t.Error("SQLite store has advisory locks")
	}
	if _, err := s.NewFollower(0, func([]watcher.Event) {}, sqlstore.FollowerOptions{}); err == nil {
		t.Error("SQLite store has a follower")
	}
}
