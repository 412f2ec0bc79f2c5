package app

import (
	"context"
	"log/slog"
	"reflect"
	"sync"
)

// runner is a source that runs until its context ends.
type runner interface {
	Run(ctx context.Context) error
}

// runSet runs one source per configuration entry of one kind ([[routeros]],
// [[freeradius_log]], [[sql_source]]) and, on reload, stops the entries
// removed or changed and starts the new ones, leaving the unchanged ones
// running: a router stays connected, a log keeps its place.
type runSet[C any, S runner] struct {
	kind  string         // the configuration key, for logs
	name  func(C) string // an entry's name, unique within the kind
	build func(C) S      // the source of an entry
	log   *slog.Logger

	mu    sync.Mutex
	ctx   context.Context // set while run runs
	wg    sync.WaitGroup
	items []*runItem[C, S] // in configuration order
}

type runItem[C any, S runner] struct {
	cfg    C
	src    S
	cancel context.CancelFunc // nil until started
	done   chan struct{}      // closed when its Run has returned
}

// start runs it; s.mu must be held and s.ctx set.
func (s *runSet[C, S]) start(it *runItem[C, S]) {
	ctx, cancel := context.WithCancel(s.ctx)
	it.cancel, it.done = cancel, make(chan struct{})
	s.wg.Go(func() {
		defer close(it.done)
		// A source that gives up is reported, not fatal: RADIUS
		// accounting and the other sources go on. /healthz shows it.
		if err := it.src.Run(ctx); err != nil && ctx.Err() == nil {
			s.log.Error(s.kind+": stopped", "name", s.name(it.cfg), "err", err)
		}
	})
}

// run starts every entry and stops them all when ctx ends.
func (s *runSet[C, S]) run(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	for _, it := range s.items {
		s.start(it)
	}
	s.mu.Unlock()
	<-ctx.Done()
	s.wg.Wait()
	return nil
}

// apply makes the set match cfgs; with restart, every entry is built again.
// Before run, it only builds them.
func (s *runSet[C, S]) apply(cfgs []C, restart bool) (added, removed, kept int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := map[string]*runItem[C, S]{}
	for _, it := range s.items {
		old[s.name(it.cfg)] = it
	}
	next := make([]*runItem[C, S], 0, len(cfgs))
	for _, c := range cfgs {
		if it, ok := old[s.name(c)]; ok && !restart && reflect.DeepEqual(it.cfg, c) {
			next = append(next, it)
			delete(old, s.name(c))
			kept++
			continue
		}
		next = append(next, &runItem[C, S]{cfg: c, src: s.build(c)})
		added++
	}
	// The entries removed or changed stop before their replacements
	// start: a log or a SQL source saves its position as it stops, and
	// the new one starts from it, so that no line or row is read twice.
	for _, it := range old {
		if it.cancel != nil {
			it.cancel()
		}
		removed++
	}
	for _, it := range old {
		if it.done != nil {
			<-it.done
		}
	}
	s.items = next
	if s.ctx != nil && s.ctx.Err() == nil {
		for _, it := range next {
			if it.cancel == nil {
				s.start(it)
			}
		}
	}
	return added, removed, kept
}

// statuses returns f of every source of s, in configuration order (an
// empty list, not nil, without any).
func statuses[C any, S runner, T any](s *runSet[C, S], f func(S) T) []T {
	out := []T{}
	s.each(func(_ C, src S) { out = append(out, f(src)) })
	return out
}

// each calls fn for every entry, in configuration order, under the set's
// lock: fn must be quick.
func (s *runSet[C, S]) each(fn func(cfg C, src S)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range s.items {
		fn(it.cfg, it.src)
	}
}
