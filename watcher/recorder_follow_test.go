package watcher_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/sqlstore"
)

// TestRecorderFollowMode: with RecorderOptions.Follow the Recorder stores
// and acknowledges, and hands the stored batch to the follower before the
// acks; only Deliver reaches the state, the observers and the hub, once per
// event.
func TestRecorderFollowMode(t *testing.T) {
	st, err := sqlstore.Open(context.Background(), sqlstore.Options{Path: filepath.Join(t.TempDir(), "w.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	state, hub := watcher.NewState(), watcher.NewHub(256)
	var mu sync.Mutex
	var followed []watcher.Event
	rec := watcher.NewRecorder(st, state, hub, watcher.RecorderOptions{Follow: func(evs []watcher.Event) {
		mu.Lock()
		followed = append(followed, evs...)
		mu.Unlock()
	}})
	var observed []int64
	rec.OnApplied(func(ev watcher.Event, _ []string) { observed = append(observed, ev.Seq) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rec.Run(ctx) }()
	defer func() { cancel(); <-done }()

	sub := hub.Subscribe(watcher.Firehose)
	defer sub.Close()
	var evs []watcher.Event
	for i := range 5 {
		evs = append(evs, sess(watcher.SessionStart, "joao", "bras1", "s1", i))
	}
	stored, err := rec.Commit(context.Background(), evs...)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(followed) != 5 || followed[4].Seq != stored[4].Seq {
		t.Fatalf("followed %d events before the acks, want 5", len(followed))
	}
	mu.Unlock()
	if state.Seq() != 0 || len(observed) != 0 {
		t.Fatalf("the recorder delivered by itself: state seq %d, observed %v", state.Seq(), observed)
	}
	select {
	case m := <-sub.C():
		t.Fatalf("published before Deliver: %+v", m)
	case <-time.After(50 * time.Millisecond):
	}

	rec.Deliver(stored[:3])
	rec.Deliver(stored) // the first three again: skipped
	if state.Seq() != stored[4].Seq || len(observed) != 5 {
		t.Fatalf("after Deliver: state seq %d, observed %v", state.Seq(), observed)
	}
	for i := range 5 {
		m := <-sub.C()
		if m.Event == nil || m.Event.Seq != stored[i].Seq {
			t.Fatalf("message %d: %+v, want seq %d", i, m, stored[i].Seq)
		}
	}
	select {
	case m := <-sub.C():
		t.Fatalf("delivered twice: %+v", m)
	default:
	}
}
