package radius

import (
	"net/netip"
	"sync"
	"time"
)

// dupKey identifies a request for RFC 5080 duplicate detection: the same
// source address and port, Identifier and Request Authenticator. For
// accounting the authenticator is an MD5 over the whole packet, so two
// different requests practically never share a key.
type dupKey struct {
	addr [16]byte
	port uint16
	id   byte
	auth [16]byte
}

func newDupKey(src netip.AddrPort, id byte, auth []byte) dupKey {
	k := dupKey{addr: src.Addr().As16(), port: src.Port(), id: id}
	copy(k.auth[:], auth)
	return k
}

// dupEntry is kept small: a million of them must fit in memory. The
// accounting Listener keeps no answer (V is struct{}), because it follows from
// the retransmitted request (see accountingResponse); the Proxy keeps the
// relayed reply's bytes, which no request can reproduce.
type dupEntry[V any] struct {
	at    int64 // when the request was first seen, ns on the cache's clock
	state dupState
	val   V
}

type dupState uint8

const (
	dupNew      dupState = iota // first copy: handle it
	dupPending                  // first copy not yet answered: drop this one
	dupAnswered                 // answered: resend the cached answer
	// dupStored: an accounting request stored but not yet acknowledged by
	// the upstream it is forwarded to. begin returns it once, to the
	// retransmission that now owns forwarding it again (the entry is
	// pending meanwhile), so the record is not stored twice.
	dupStored
)

const dupShards = 64

// dupCache remembers requests for a window. Each shard keeps two
// generations of maps and drops the older one wholesale when the newer one
// is a window old or full: no per-entry timers, no scanning, and the memory
// is bounded by max entries (about 130 bytes each, measured, plus the
// values) whatever the rate. Under a rate that fills a generation before the
// window ends, entries live less than the window; duplicates older than that
// are handled twice rather than the memory growing without bound. At 50k
// requests/s the default million entries still cover 10-20 s, several times
// a NAS's retransmission schedule (typically 3 tries a few seconds apart).
type dupCache[V any] struct {
	window   int64 // ns
	perShard int   // entries per generation
	start    time.Time
	shards   [dupShards]dupShard[V]
}

type dupShard[V any] struct {
	mu        sync.Mutex
	cur, prev map[dupKey]dupEntry[V]
	rotated   int64
	_         [64]byte // keep neighbouring shards' locks off one cache line
}

func newDupCache[V any](window time.Duration, max int) *dupCache[V] {
	per := max / dupShards / 2
	if per < 16 {
		per = 16
	}
	c := &dupCache[V]{window: int64(window), perShard: per, start: time.Now()}
	for i := range c.shards {
		c.shards[i].cur = make(map[dupKey]dupEntry[V])
	}
	return c
}

// now is monotonic: a wall-clock step must not expire or revive entries.
func (c *dupCache[V]) now() int64 { return int64(time.Since(c.start)) }

func (c *dupCache[V]) shard(k *dupKey) *dupShard[V] {
	// The authenticator is an MD5 output (accounting) or random (others).
	return &c.shards[(k.auth[0]^byte(k.port))%dupShards]
}

// begin looks k up and, when it is new, records it as pending. For an
// answered request it also returns the cached answer.
func (c *dupCache[V]) begin(k dupKey) (dupState, V) {
	now := c.now()
	s := c.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	var zero V
	if e, ok := s.get(k); ok && now-e.at < c.window {
		switch e.state {
		case dupStored:
			// Claimed by this retransmission. The NAS is still
			// retrying, so the entry lives on from now.
			delete(s.prev, k)
			s.put(k, dupEntry[V]{at: now, state: dupPending}, now, c)
			return dupStored, zero
		case dupAnswered:
			return dupAnswered, e.val
		}
		return dupPending, zero
	}
	delete(s.prev, k) // an expired entry must not shadow the new one
	s.put(k, dupEntry[V]{at: now, state: dupPending}, now, c)
	return dupNew, zero
}

// put stores e in the current generation, rotating first when it is a window
// old or full.
func (s *dupShard[V]) put(k dupKey, e dupEntry[V], now int64, c *dupCache[V]) {
	if now-s.rotated >= c.window || len(s.cur) >= c.perShard {
		s.prev, s.cur = s.cur, make(map[dupKey]dupEntry[V], len(s.cur))
		s.rotated = now
		delete(s.prev, k)
	}
	s.cur[k] = e
}

func (s *dupShard[V]) get(k dupKey) (dupEntry[V], bool) {
	if e, ok := s.cur[k]; ok {
		return e, true
	}
	e, ok := s.prev[k]
	return e, ok
}

// set changes the state (and value) of k, when it is still held.
func (c *dupCache[V]) set(k dupKey, st dupState, v V) {
	s := c.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range [2]map[dupKey]dupEntry[V]{s.cur, s.prev} {
		if e, ok := m[k]; ok {
			e.state, e.val = st, v
			m[k] = e
			return
		}
	}
}

// answer records that k was answered with v, for its retransmissions.
func (c *dupCache[V]) answer(k dupKey, v V) { c.set(k, dupAnswered, v) }

// park records that k was stored but its forwarding failed: the next
// retransmission forwards it again without storing it.
func (c *dupCache[V]) park(k dupKey) {
	var zero V
	c.set(k, dupStored, zero)
}

// forget removes k, so that a retransmission is handled afresh: used when
// the first copy could not be stored (or relayed).
func (c *dupCache[V]) forget(k dupKey) {
	s := c.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cur, k)
	delete(s.prev, k)
}

// len is the number of entries held, expired ones included.
func (c *dupCache[V]) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.cur) + len(s.prev)
		s.mu.Unlock()
	}
	return n
}
