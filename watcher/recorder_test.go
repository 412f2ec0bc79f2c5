package watcher_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/sqlstore"
)

// failingStore is a store whose disk is full: every Append fails.
type failingStore struct{ watcher.Store }

func (failingStore) Append(context.Context, []watcher.Event) error {
	return errors.New("database or disk is full")
}

type rig struct {
	store watcher.Store
	state *watcher.State
	hub   *watcher.Hub
	rec   *watcher.Recorder
}

func newRig(t *testing.T, wrap func(watcher.Store) watcher.Store) *rig {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), sqlstore.Options{Path: filepath.Join(t.TempDir(), "w.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &rig{store: st, state: watcher.NewState(), hub: watcher.NewHub(256)}
	if wrap != nil {
		r.store = wrap(st)
	}
	r.rec = watcher.NewRecorder(r.store, r.state, r.hub, watcher.RecorderOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.rec.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func TestRecorderCommitsThenPublishes(t *testing.T) {
	r := newRig(t, nil)
	sub := r.hub.Subscribe("joao")
	defer sub.Close()
	fire := r.hub.Subscribe(watcher.Firehose)
	defer fire.Close()

	var mu sync.Mutex
	var acked []int64
	var wg sync.WaitGroup
	for i := range 100 {
		login := "joao"
		if i%2 == 1 {
			login = fmt.Sprintf("other%d", i)
		}
		wg.Add(1)
		err := r.rec.Record(context.Background(), sess(watcher.SessionUpdate, login, "bras1", "s1", i), func(ev watcher.Event, err error) {
			defer wg.Done()
			if err != nil {
				t.Error(err)
				return
			}
			// Acked means stored: the event must already be readable.
			got, qerr := r.store.Events(context.Background(), watcher.Query{After: ev.Seq - 1, Limit: 1})
			if qerr != nil || len(got) != 1 || got[0].Seq != ev.Seq {
				t.Errorf("acked seq %d not in store: %v %v", ev.Seq, got, qerr)
			}
			mu.Lock()
			acked = append(acked, ev.Seq)
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if len(acked) != 100 {
		t.Fatalf("%d acks", len(acked))
	}
	for i := range 50 {
		select {
		case m := <-sub.C():
			ev := event(m)
			if ev.Login != "joao" || ev.Seq != int64(2*i+1) {
				t.Fatalf("joao's subscription got %+v at %d", ev, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("joao: only %d events", i)
		}
	}
	for i := range 100 {
		select {
		case m := <-fire.C():
			ev := event(m)
			if ev.Seq != int64(i+1) {
				t.Fatalf("firehose out of order: seq %d at %d", ev.Seq, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("firehose: only %d events", i)
		}
	}
	if c, _ := r.state.Customer("joao"); !c.Online || c.LastSeq != 99 {
		t.Errorf("state %+v", c)
	}
	if st := r.rec.Stats(); st.Committed != 100 || st.Failing {
		t.Errorf("stats %+v", st)
	}
}

func TestRecorderStoreFailureIsReported(t *testing.T) {
	r := newRig(t, func(s watcher.Store) watcher.Store { return failingStore{s} })
	sub := r.hub.Subscribe(watcher.Firehose)
	defer sub.Close()
	_, err := r.rec.Commit(context.Background(), sess(watcher.SessionStart, "joao", "bras1", "s1", 0))
	if err == nil {
		t.Fatal("commit to a full disk succeeded")
	}
	select {
	case m := <-sub.C():
		t.Fatalf("event published although not stored: %+v", m.Event)
	case <-time.After(100 * time.Millisecond):
	}
	if st := r.rec.Stats(); !st.Failing || st.Failures == 0 || st.LastError == "" {
		t.Errorf("stats %+v", st)
	}
	if c, known := r.state.Customer("joao"); known {
		t.Errorf("state changed by an event that was not stored: %+v", c)
	}
}

func TestRecorderRefusesInvalid(t *testing.T) {
	r := newRig(t, nil)
	called := false
	err := r.rec.Record(context.Background(), watcher.Event{Kind: "bogus"}, func(watcher.Event, error) { called = true })
	if err == nil || called {
		t.Fatalf("invalid event: err %v, done called %v", err, called)
	}
}

// An event whose detail cannot be encoded (a NaN latency) is refused on its
// own; the events recorded with it are stored, with their detail as given.
func TestRecorderRefusesUnencodableDetail(t *testing.T) {
	r := newRig(t, nil)
	bad := watcher.Event{At: at(0), Login: "ana", Kind: watcher.HTTPDown, Source: "probe", Detail: &watcher.Detail{LatencyMS: math.NaN()}}
	if err := r.rec.Record(context.Background(), bad, nil); err == nil {
		t.Fatal("an event with a NaN latency was queued")
	}
	good := sess(watcher.SessionStart, "joao", "bras1", "s1", 0)
	good.At = good.At.Add(123456789 * time.Nanosecond) // stored to the microsecond
	good.Detail = &watcher.Detail{NASPortID: "ether1.100", Attributes: map[string]string{"Acct-Session-Id": "s1"}}
	stored, err := r.rec.Commit(context.Background(), good)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := r.store.Events(context.Background(), watcher.Query{Login: "joao"})
	if err != nil || len(evs) != 1 {
		t.Fatalf("events %+v err %v", evs, err)
	}
	if !reflect.DeepEqual(evs[0], stored[0]) || evs[0].Detail.Attributes["Acct-Session-Id"] != "s1" {
		t.Fatalf("stored %+v, committed %+v", evs[0], stored[0])
	}
}

func TestHubCutsSlowSubscriber(t *testing.T) {
	hub := watcher.NewHub(4)
	slow := hub.Subscribe("joao")
	fast := hub.Subscribe("joao")
	defer fast.Close()
	got := 0
	for i := range 10 {
		hub.Publish(watcher.Event{Seq: int64(i + 1), Login: "joao"}, []string{"joao"})
		select {
		case <-fast.C():
			got++
		default:
		}
	}
	if got != 10 || fast.Cut() {
		t.Errorf("fast subscriber got %d of 10, cut=%v", got, fast.Cut())
	}
	if !slow.Cut() {
		t.Fatal("slow subscriber not cut")
	}
	// What it holds is a gapless prefix, then the channel is closed.
	var seqs []int64
	for m := range slow.C() {
		seqs = append(seqs, event(m).Seq)
	}
	if len(seqs) != 4 || seqs[0] != 1 || seqs[3] != 4 {
		t.Errorf("slow subscriber kept %v", seqs)
	}
	if st := hub.Stats(); st.Subscribers != 1 || st.Cutoffs != 1 {
		t.Errorf("hub stats %+v", st)
	}
	slow.Close() // closing a cut subscription is harmless
}

// event returns the event a message carries (zero for a closed channel).
func event(m watcher.Message) watcher.Event {
	if m.Event == nil {
		return watcher.Event{}
	}
	return *m.Event
}

func TestHubNotices(t *testing.T) {
	hub := watcher.NewHub(4)
	joao, maria, fire := hub.Subscribe("joao"), hub.Subscribe("maria"), hub.Subscribe(watcher.Firehose)
	hub.Notify(watcher.Notice{Type: "watch", Body: "w1"}, []string{"joao"})
	for name, s := range map[string]*watcher.Subscription{"joao": joao, "firehose": fire} {
		select {
		case m := <-s.C():
			if m.Event != nil || m.Notice == nil || m.Notice.Type != "watch" {
				t.Errorf("%s got %+v", name, m)
			}
		default:
			t.Errorf("%s got no notice", name)
		}
	}
	select {
	case m := <-maria.C():
		t.Errorf("maria got %+v", m)
	default:
	}
}
