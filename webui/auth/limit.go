package auth

import (
	"sync"
	"time"
)

// maxLimiterKeys bounds the failure counters kept in memory. Past it, expired
// ones are swept; a flood from very many addresses that fills it anyway
// makes the oldest counters go first.
const maxLimiterKeys = 50000

// limiter counts failed logins per key (a user name or an address) in a
// fixed window: max failures within window block the key until the window
// that started with its first failure ends.
type limiter struct {
	max    int
	window time.Duration

	mu   sync.Mutex
	keys map[string]*failures
}

type failures struct {
	first time.Time
	n     int
}

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{max: max, window: window, keys: map[string]*failures{}}
}

// blocked returns how long key must wait, or 0.
func (l *limiter) blocked(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.keys[key]
	if f == nil {
		return 0
	}
	end := f.first.Add(l.window)
	if !now.Before(end) {
		delete(l.keys, key)
		return 0
	}
	if f.n < l.max {
		return 0
	}
	return end.Sub(now)
}

// fail counts one failure of key.
func (l *limiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.keys[key]
	if f == nil || !now.Before(f.first.Add(l.window)) {
		if len(l.keys) >= maxLimiterKeys {
			l.sweep(now)
		}
		f = &failures{first: now}
		l.keys[key] = f
	}
	f.n++
}

// reset forgets key's failures (a successful login of that user).
func (l *limiter) reset(key string) {
	l.mu.Lock()
	delete(l.keys, key)
	l.mu.Unlock()
}

// sweep drops expired counters, and the oldest half when none expired; l.mu
// must be held.
func (l *limiter) sweep(now time.Time) {
	for k, f := range l.keys {
		if !now.Before(f.first.Add(l.window)) {
			delete(l.keys, k)
		}
	}
	if len(l.keys) < maxLimiterKeys {
		return
	}
	cut := now.Add(-l.window / 2)
	for k, f := range l.keys {
		if f.first.Before(cut) || len(l.keys) >= maxLimiterKeys {
			delete(l.keys, k)
		}
	}
}
