package watch_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/probe"
	"authwatch/watcher/sqlstore"
	"authwatch/watcher/watch"
)

// TestManagerProbesOnlyWhenLeading: with several instances running the same
// watch, only the one Options.Lead says yes to probes the CPE; an instance
// told no keeps asking, and probes once it leads; Unlead follows.
func TestManagerProbesOnlyWhenLeading(t *testing.T) {
	port := cpe(t)
	store, err := sqlstore.Open(context.Background(), sqlstore.Options{Path: filepath.Join(t.TempDir(), "m.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	state := watcher.NewState()
	rec := watcher.NewRecorder(store, state, watcher.NewHub(16), watcher.RecorderOptions{})
	var (
		leading atomic.Bool
		asked   atomic.Int32
		mu      sync.Mutex
		unled   []string
	)
	prober := probe.New(probe.Config{Ports: []int{port}, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Timeout: time.Second, MinInterval: time.Millisecond})
	m := watch.NewManager(watch.Options{Store: store, Events: store, State: state, Recorder: rec, Prober: prober,
		Lead: func(_ context.Context, id string) bool {
			asked.Add(1)
			return leading.Load()
		},
		Unlead: func(id string) {
			mu.Lock()
			unled = append(unled, id)
			mu.Unlock()
		},
	})
	rec.OnApplied(m.Observe)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { rec.Run(ctx) })
	wg.Go(func() { m.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	commit := func(evs ...watcher.Event) {
		for i := range evs {
			evs[i].At = time.Now()
		}
		if _, err := rec.Commit(context.Background(), evs...); err != nil {
			t.Fatal(err)
		}
	}
	commit(session(watcher.SessionStart, "old", "127.0.0.1"))
	v, err := m.Start(context.Background(), watch.StartRequest{Login: "joao", Timeout: watch.Duration(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	commit(session(watcher.SessionStop, "old", "127.0.0.1"), session(watcher.SessionStart, "new", "127.0.0.1"))

	deadline := time.Now().Add(5 * time.Second)
	for asked.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Lead never asked")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if evs, _ := store.Events(context.Background(), watcher.Query{Login: "joao"}); evs[len(evs)-1].Source == "probe" {
		t.Fatalf("probed while another instance leads: %+v", evs[len(evs)-1])
	}
	leading.Store(true) // the other instance went away
	deadline = time.Now().Add(10 * time.Second)
	for {
		got, err := m.Get(context.Background(), v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Verdict == watch.OK && got.HTTP != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no probe after taking the lead: %+v", got.Watch)
		}
		time.Sleep(20 * time.Millisecond)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(unled)
		mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Unlead called %d times, want 1", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
