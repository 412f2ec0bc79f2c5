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

// dupEntry is kept small: a million of them must fit in memory. The answer
// itself is not kept, because it follows from the retransmitted request (see
// accountingResponse).
type dupEntry struct {
	at       int64 // when the request was first seen, ns on the cache's clock
	answered bool
}

type dupState uint8

const (
	dupNew      dupState = iota // first copy: handle it
	dupPending                  // first copy not yet answered: drop this one
	dupAnswered                 // answered: resend the cached answer
)

const dupShards = 64

// dupCache remembers requests for a window. Each shard keeps two
// generations of maps and drops the older one wholesale when the newer one
// is a window old or full: no per-entry timers, no scanning, and the memory
// is bounded by max entries (about 130 bytes each, measured) whatever the
// rate. Under a rate that fills a generation before the window ends, entries
// live less than the window; duplicates older than that are stored twice
// rather than the memory growing without bound. At 50k requests/s the default
// million entries still cover 10-20 s, several times a NAS's retransmission
// schedule (typically 3 tries a few seconds apart).
type dupCache struct {
	window   int64 // ns
	perShard int   // entries per generation
	start    time.Time
	shards   [dupShards]dupShard
}

type dupShard struct {
	mu        sync.Mutex
	cur, prev map[dupKey]dupEntry
	rotated   int64
	_         [64]byte // keep neighbouring shards' locks off one cache line
}

func newDupCache(window time.Duration, max int) *dupCache {
	per := max / dupShards / 2
	if per < 16 {
		per = 16
	}
	c := &dupCache{window: int64(window), perShard: per, start: time.Now()}
	for i := range c.shards {
		c.shards[i].cur = make(map[dupKey]dupEntry)
	}
	return c
}

// now is monotonic: a wall-clock step must not expire or revive entries.
func (c *dupCache) now() int64 { return int64(time.Since(c.start)) }

func (c *dupCache) shard(k *dupKey) *dupShard {
	// The authenticator is an MD5 output (accounting) or random (others).
	return &c.shards[(k.auth[0]^byte(k.port))%dupShards]
}

// begin looks k up and, when it is new, records it as pending.
func (c *dupCache) begin(k dupKey) dupState {
	now := c.now()
	s := c.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.get(k); ok && now-e.at < c.window {
		if e.answered {
			return dupAnswered
		}
		return dupPending
	}
	if now-s.rotated >= c.window || len(s.cur) >= c.perShard {
		s.prev, s.cur = s.cur, make(map[dupKey]dupEntry, len(s.cur))
		s.rotated = now
	}
	delete(s.prev, k) // an expired entry must not shadow the new one
	s.cur[k] = dupEntry{at: now}
	return dupNew
}

func (s *dupShard) get(k dupKey) (dupEntry, bool) {
	if e, ok := s.cur[k]; ok {
		return e, true
	}
	e, ok := s.prev[k]
	return e, ok
}

// answer records that k was answered, for its retransmissions.
func (c *dupCache) answer(k dupKey) {
	s := c.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range [2]map[dupKey]dupEntry{s.cur, s.prev} {
		if e, ok := m[k]; ok {
			e.answered = true
			m[k] = e
			return
		}
	}
}

// forget removes k, so that a retransmission is handled afresh: used when
// the first copy could not be stored.
func (c *dupCache) forget(k dupKey) {
	s := c.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cur, k)
	delete(s.prev, k)
}

// len is the number of entries held, expired ones included.
func (c *dupCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.cur) + len(s.prev)
		s.mu.Unlock()
	}
	return n
}
