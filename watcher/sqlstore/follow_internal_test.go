package sqlstore

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/sqlstore/pgtest"
)

// TestFollowerSmallReads runs the Follower with reads of 3 events while two
// instances append batches of every size, so that reads stop half-way
// through gaps and through our own waiting batches, and seqs go missing
// (taken by appends that failed): every event is still delivered once, in seq order.
func TestFollowerSmallReads(t *testing.T) {
	defer func(n int) { followChunk = n }(followChunk)
	followChunk = 3
	dsn := pgtest.DSN(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	open := func() *Store {
		s, err := Open(context.Background(), Options{Driver: "postgres", DSN: dsn, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	var mu sync.Mutex
	var got []int64
	f, err := b.NewFollower(0, func(evs []watcher.Event) {
		mu.Lock()
		for _, e := range evs {
			got = append(got, e.Seq)
		}
		mu.Unlock()
	}, FollowerOptions{PollInterval: time.Minute, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var wg sync.WaitGroup
	for si, s := range []*Store{a, b} {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(si), 7))
			for n := range 80 {
				evs := make([]watcher.Event, 1+rng.IntN(9))
				for i := range evs {
					evs[i] = watcher.Event{At: time.Unix(int64(n), 0), Login: fmt.Sprintf("u%d", i), Kind: watcher.SessionUpdate, Source: "radius"}
				}
				if n%13 == 5 {
					// Seqs taken by an append that then failed: a gap.
					pgtest.ExecDB(t, dsn, "SELECT nextval('events_seq') FROM generate_series(1, 3)")
				}
				if err := s.Append(context.Background(), evs); err != nil {
					t.Error(err)
					return
				}
				if s == b {
					f.Committed(evs)
				}
			}
		})
	}
	wg.Wait()
	all, err := a.Events(context.Background(), watcher.Query{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]int64, len(all))
	for i, e := range all {
		want[i] = e.Seq
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		ok := slices.Equal(got, want)
		n := len(got)
		mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d events, want the %d stored, once each in seq order", n, len(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%d events, %d reads", len(want), f.Stats().Reads)
}
