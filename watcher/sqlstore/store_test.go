package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/sqlstore"
	"authwatch/watcher/sqlstore/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// backend opens a fresh store; reopen opens the same database again, as a
// restarted daemon would.
type backend struct {
	name string
	open func(t *testing.T) (s *sqlstore.Store, reopen func() *sqlstore.Store)
}

func backends() []backend {
	return []backend{{
		name: "sqlite",
		open: func(t *testing.T) (*sqlstore.Store, func() *sqlstore.Store) {
			path := filepath.Join(t.TempDir(), "authwatch.db")
			open := func() *sqlstore.Store {
				s, err := sqlstore.Open(context.Background(), sqlstore.Options{Driver: "sqlite", Path: path})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			return open(), open
		},
	}, {
		// A throwaway PostgreSQL server (see pgtest), a fresh database per test.
		name: "postgres",
		open: func(t *testing.T) (*sqlstore.Store, func() *sqlstore.Store) {
			dsn := pgtest.DSN(t)
			open := func() *sqlstore.Store {
				s, err := sqlstore.Open(context.Background(), sqlstore.Options{Driver: "postgres", DSN: dsn})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			return open(), open
		},
	}}
}

// forEachBackend runs the same test on every store implementation.
func forEachBackend(t *testing.T, f func(t *testing.T, s *sqlstore.Store, reopen func() *sqlstore.Store)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s, reopen := b.open(t)
			f(t, s, reopen)
		})
	}
}

var t0 = time.Date(2026, 11, 25, 14, 2, 10, 123456000, time.UTC)

func ev(login string, kind watcher.Kind, at time.Time) watcher.Event {
	return watcher.Event{At: at, Login: login, Kind: kind, Source: "radius", NAS: "bras-centro"}
}

func TestAppendAndRead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *sqlstore.Store, reopen func() *sqlstore.Store) {
		ctx := context.Background()
		full := watcher.Event{
			At: t0, Login: "joao", Kind: watcher.SessionStop, Source: "radius", NAS: "bras-centro",
			SessionID: "81a0000f", MAC: "AA:BB:CC:DD:EE:FF", IP: "100.64.3.7", Reason: "Lost-Carrier",
			Detail: &watcher.Detail{InputOctets: 5 << 32, OutputOctets: 7, SessionTime: 3600, TerminateCause: "Lost-Carrier",
				DelegatedPrefix: "2804:db8:100::/56", Attributes: map[string]string{"NAS-Port-Id": "ether1"}},
		}
		evs := []watcher.Event{full, ev("maria", watcher.AuthReject, t0.Add(time.Second))}
		if err := s.Append(ctx, evs); err != nil {
			t.Fatal(err)
		}
		if evs[0].Seq != 1 || evs[1].Seq != 2 {
			t.Fatalf("seqs = %d, %d; want 1, 2", evs[0].Seq, evs[1].Seq)
		}
		got, err := s.Events(ctx, watcher.Query{Login: "joao"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !reflect.DeepEqual(got[0], evs[0]) {
			t.Fatalf("read back\n%+v\nwant\n%+v", got, evs[0])
		}
		// A reopened store continues the sequence.
		s2 := reopen()
		more := []watcher.Event{ev("joao", watcher.SessionStart, t0.Add(time.Minute))}
		if err := s2.Append(ctx, more); err != nil {
			t.Fatal(err)
		}
		if more[0].Seq != 3 {
			t.Fatalf("after reopen seq = %d, want 3", more[0].Seq)
		}
		if last, err := s2.LastSeq(ctx); err != nil || last != 3 {
			t.Fatalf("LastSeq = %d, %v; want 3", last, err)
		}
	})
}

func TestEventsQuery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *sqlstore.Store, _ func() *sqlstore.Store) {
		ctx := context.Background()
		var evs []watcher.Event
		for i := range 10 {
			login := "a"
			if i%2 == 1 {
				login = "b"
			}
			evs = append(evs, ev(login, watcher.SessionUpdate, t0.Add(time.Duration(i)*time.Second)))
		}
		if err := s.Append(ctx, evs); err != nil {
			t.Fatal(err)
		}
		seqs := func(evs []watcher.Event) []int64 {
			out := []int64{}
			for _, e := range evs {
				out = append(out, e.Seq)
			}
			return out
		}
		tests := []struct {
			name string
			q    watcher.Query
			want []int64
		}{
			{"all", watcher.Query{}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{"firehose", watcher.Query{Login: "*", After: 8}, []int64{9, 10}},
			{"login", watcher.Query{Login: "a"}, []int64{1, 3, 5, 7, 9}},
			{"after", watcher.Query{Login: "b", After: 4}, []int64{6, 8, 10}},
			{"before", watcher.Query{Login: "b", Before: 4}, []int64{2}},
			{"limit oldest", watcher.Query{Login: "a", Limit: 2}, []int64{1, 3}},
			{"limit newest", watcher.Query{Login: "a", Limit: 2, Newest: true}, []int64{7, 9}},
			{"after and limit", watcher.Query{After: 3, Limit: 3}, []int64{4, 5, 6}},
			{"unknown login", watcher.Query{Login: "zz"}, []int64{}},
		}
		for _, tt := range tests {
			got, err := s.Events(ctx, tt.q)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if !reflect.DeepEqual(seqs(got), tt.want) {
				t.Errorf("%s: seqs %v, want %v", tt.name, seqs(got), tt.want)
			}
		}
	})
}

func TestFindLogins(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *sqlstore.Store, _ func() *sqlstore.Store) {
		ctx := context.Background()
		mk := func(login, mac, ip string, i int) watcher.Event {
			e := ev(login, watcher.SessionStart, t0.Add(time.Duration(i)*time.Second))
			e.MAC, e.IP = mac, ip
			return e
		}
		evs := []watcher.Event{
			mk("joao.silva", "AA:AA:AA:AA:AA:01", "100.64.0.1", 0),
			mk("joana", "AA:AA:AA:AA:AA:02", "100.64.0.2", 1),
			mk("maria", "AA:AA:AA:AA:AA:01", "100.64.0.3", 2), // the router moved to maria
			mk("jo", "", "", 3),
			{At: t0, Kind: watcher.NASUp, Source: "radius", NAS: "bras-centro"}, // no login: never a match
		}
		if err := s.Append(ctx, evs); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			f    watcher.Find
			want []string
		}{
			{watcher.Find{Field: "login", Value: "jo"}, []string{"jo", "joana", "joao.silva"}},
			{watcher.Find{Field: "login", Value: "joa"}, []string{"joana", "joao.silva"}},
			{watcher.Find{Field: "login", Value: "joa", Limit: 1}, []string{"joana"}},
			{watcher.Find{Field: "login", Value: "x"}, nil},
			{watcher.Find{Field: "mac", Value: "AA:AA:AA:AA:AA:01"}, []string{"maria", "joao.silva"}},
			{watcher.Find{Field: "ip", Value: "100.64.0.2"}, []string{"joana"}},
			{watcher.Find{Field: "ip", Value: ""}, nil},
		}
		for _, tt := range tests {
			got, err := s.FindLogins(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 && len(tt.want) == 0 {
				continue
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%+v: got %v, want %v", tt.f, got, tt.want)
			}
		}
		if _, err := s.FindLogins(ctx, watcher.Find{Field: "password", Value: "x"}); err == nil {
			t.Error("find by an unknown field: no error")
		}
	})
}

// TestFindLoginsByUnicodePrefix: logins are UTF-8, and a prefix search must
// neither miss accented ones nor take a neighbour.
func TestFindLoginsByUnicodePrefix(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *sqlstore.Store, _ func() *sqlstore.Store) {
		ctx := context.Background()
		var evs []watcher.Event
		for i, login := range []string{"joão", "joãozinho", "joä", "joa", "João", "érica"} {
			evs = append(evs, ev(login, watcher.SessionStart, t0.Add(time.Duration(i)*time.Second)))
		}
		if err := s.Append(ctx, evs); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			prefix string
			want   []string
		}{
			{"joã", []string{"joãozinho", "joão"}},
			{"joão", []string{"joãozinho", "joão"}},
			{"é", []string{"érica"}},
			{"J", []string{"João"}},
		}
		for _, tt := range tests {
			got, err := s.FindLogins(ctx, watcher.Find{Field: "login", Value: tt.prefix})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("prefix %q: got %q, want %q", tt.prefix, got, tt.want)
			}
		}
	})
}

func TestPrune(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *sqlstore.Store, _ func() *sqlstore.Store) {
		ctx := context.Background()
		var evs []watcher.Event
		for i := range 12000 { // more than one prune chunk
			evs = append(evs, ev("old", watcher.SessionUpdate, t0.Add(-48*time.Hour+time.Duration(i)*time.Millisecond)))
		}
		evs = append(evs, ev("new", watcher.SessionUpdate, t0))
		if err := s.Append(ctx, evs); err != nil {
			t.Fatal(err)
		}
		n, err := s.Prune(ctx, t0.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if n != 12000 {
			t.Fatalf("pruned %d, want 12000", n)
		}
		left, err := s.Events(ctx, watcher.Query{})
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 1 || left[0].Login != "new" {
			t.Fatalf("left %+v", left)
		}
	})
}

func TestCheckpointAndRebuild(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *sqlstore.Store, reopen func() *sqlstore.Store) {
		ctx := context.Background()
		if _, err := s.LoadCheckpoint(ctx, func([]byte) error { return nil }); !errors.Is(err, watcher.ErrNotFound) {
			t.Fatalf("empty store: LoadCheckpoint err = %v, want ErrNotFound", err)
		}
		state := watcher.NewState()
		apply := func(evs ...watcher.Event) {
			t.Helper()
			if err := s.Append(ctx, evs); err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				state.Apply(e)
			}
		}
		start := func(login, id string, at time.Time) watcher.Event {
			e := ev(login, watcher.SessionStart, at)
			e.SessionID, e.IP = id, "100.64.0."+id
			return e
		}
		apply(start("joao", "1", t0), start("maria", "2", t0))
		cp, err := state.MarshalCheckpoint()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SaveCheckpoint(ctx, cp); err != nil {
			t.Fatal(err)
		}
		stop := ev("joao", watcher.SessionStop, t0.Add(time.Minute))
		stop.SessionID, stop.Reason = "1", "Lost-Carrier"
		apply(stop, start("ana", "3", t0.Add(2*time.Minute)))
		// Events before the checkpoint may be pruned: the checkpoint keeps
		// maria's session open anyway.
		if _, err := s.Prune(ctx, t0.Add(30*time.Second)); err != nil {
			t.Fatal(err)
		}

		rebuilt := watcher.NewState()
		if _, err := watcher.Rebuild(ctx, reopen(), rebuilt); err != nil {
			t.Fatal(err)
		}
		for _, login := range []string{"joao", "maria", "ana"} {
			want, _ := state.Customer(login)
			got, ok := rebuilt.Customer(login)
			if !ok || !reflect.DeepEqual(got, want) {
				t.Errorf("%s after rebuild:\n%+v\nwant\n%+v", login, got, want)
			}
		}
		if got, want := rebuilt.Stats(), state.Stats(); got != want {
			t.Errorf("stats %+v, want %+v", got, want)
		}
	})
}

// A checkpoint's parts come back in order; a later save with fewer parts
// leaves none of the earlier ones behind; an error from the reader of a
// part stops the load and is returned.
func TestCheckpointParts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *sqlstore.Store, reopen func() *sqlstore.Store) {
		ctx := context.Background()
		load := func(s *sqlstore.Store) (int64, []string) {
			t.Helper()
			var parts []string
			seq, err := s.LoadCheckpoint(ctx, func(p []byte) error {
				parts = append(parts, string(p))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return seq, parts
		}
		save := func(cp watcher.Checkpoint) {
			t.Helper()
			if err := s.SaveCheckpoint(ctx, cp); err != nil {
				t.Fatal(err)
			}
		}
		save(watcher.Checkpoint{Seq: 10, Parts: [][]byte{[]byte("a"), []byte("b"), []byte("c")}})
		if seq, parts := load(reopen()); seq != 10 || !slices.Equal(parts, []string{"a", "b", "c"}) {
			t.Fatalf("seq %d parts %q", seq, parts)
		}
		save(watcher.Checkpoint{Seq: 12, Parts: [][]byte{[]byte("d")}})
		if seq, parts := load(s); seq != 12 || !slices.Equal(parts, []string{"d"}) {
			t.Fatalf("seq %d parts %q", seq, parts)
		}
		// Instances sharing PostgreSQL save into one checkpoint: an older
		// one (a slower instance's) does not replace a newer one.
		save(watcher.Checkpoint{Seq: 11, Parts: [][]byte{[]byte("e"), []byte("f")}})
		want, wantParts := int64(11), []string{"e", "f"}
		if strings.HasSuffix(t.Name(), "postgres") {
			want, wantParts = 12, []string{"d"}
		}
		if seq, parts := load(s); seq != want || !slices.Equal(parts, wantParts) {
			t.Fatalf("after an older save: seq %d parts %q, want %d %q", seq, parts, want, wantParts)
		}
		boom := errors.New("boom")
		if _, err := s.LoadCheckpoint(ctx, func([]byte) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("err %v, want %v", err, boom)
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	for _, bk := range []string{"sqlite", "postgres"} {
		for _, batch := range []int{1, 64, 512} {
			benchmarkAppend(b, bk, batch, false)
		}
	}
}

// BenchmarkAppendRandom is BenchmarkAppend with what a NAS sends: 10,000
// customers in random order, one Start and one Stop (which enter the MAC
// and IP indexes) for eight Interim-Updates. Every insert then lands on a
// different leaf page of the login index.
func BenchmarkAppendRandom(b *testing.B) {
	for _, bk := range []string{"sqlite", "postgres"} {
		for _, batch := range []int{64, 512} {
			benchmarkAppend(b, bk, batch, true)
		}
	}
}

func benchmarkAppend(b *testing.B, backend string, batch int, random bool) {
	b.Run(fmt.Sprintf("%s/batch=%d", backend, batch), func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		o := sqlstore.Options{Path: filepath.Join(b.TempDir(), "b.db"), Logger: quiet()}
		if backend == "postgres" {
			o = sqlstore.Options{Driver: "postgres", DSN: pgtest.DSN(b), Logger: quiet()}
		}
		s, err := sqlstore.Open(context.Background(), o)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		evs := make([]watcher.Event, batch)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for j := range evs {
				n, kind := (i*batch+j)%50000, watcher.SessionUpdate
				if random {
					n = rng.IntN(10000)
					switch rng.IntN(10) {
					case 0:
						kind = watcher.SessionStart
					case 1:
						kind = watcher.SessionStop
					}
				}
				evs[j] = watcher.Event{At: t0, Login: fmt.Sprintf("user%05d", n), Kind: kind,
					Source: "radius", NAS: "bras-centro", SessionID: "81a0000f", MAC: fmt.Sprintf("AA:BB:CC:DD:%02X:%02X", n>>8, n&0xff), IP: fmt.Sprintf("100.64.%d.%d", n>>8, n&0xff),
					Detail: &watcher.Detail{InputOctets: 123456789, OutputOctets: 987654321, SessionTime: 3600, NASPortID: "ether1"}}
			}
			if err := s.Append(context.Background(), evs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
	})
}

func TestWatches(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *sqlstore.Store, reopen func() *sqlstore.Store) {
		ctx := context.Background()
		if _, err := s.LoadWatch(ctx, "nope"); !errors.Is(err, watcher.ErrNotFound) {
			t.Fatalf("missing watch: %v", err)
		}
		w1 := watcher.WatchRecord{ID: "w1", Login: "joao", Active: true, Started: t0, Data: []byte(`{"step":"waiting_drop"}`)}
		w2 := watcher.WatchRecord{ID: "w2", Login: "joao", Active: true, Started: t0.Add(time.Minute), Data: []byte(`{}`)}
		for _, w := range []watcher.WatchRecord{w1, w2} {
			if err := s.SaveWatch(ctx, w); err != nil {
				t.Fatal(err)
			}
		}
		w1.Active, w1.Data = false, []byte(`{"verdict":"ok"}`)
		if err := s.SaveWatch(ctx, w1); err != nil {
			t.Fatal(err)
		}
		s2 := reopen()
		got, err := s2.LoadWatch(ctx, "w1")
		if err != nil || got.Active || string(got.Data) != `{"verdict":"ok"}` || !got.Started.Equal(t0) {
			t.Fatalf("w1 = %+v, %v", got, err)
		}
		active, err := s2.ActiveWatches(ctx)
		if err != nil || len(active) != 1 || active[0].ID != "w2" {
			t.Fatalf("active = %+v, %v", active, err)
		}
		all, err := s2.Watches(ctx, "joao", 10)
		if err != nil || len(all) != 2 || all[0].ID != "w2" {
			t.Fatalf("joao's watches = %+v, %v", all, err)
		}

		// Retention: the ended w1 goes; the running w2 stays, however old.
		if n, err := s2.PruneWatches(ctx, t0.Add(time.Hour)); err != nil || n != 1 {
			t.Fatalf("pruned %d watches, %v; want 1", n, err)
		}
		all, _ = s2.Watches(ctx, "joao", 10)
		if len(all) != 1 || all[0].ID != "w2" {
			t.Fatalf("after pruning: %+v", all)
		}
	})
}
