package radius

import (
	"net/netip"
	"sync"
	"time"
)

// warnEvery is how often one source may produce the same warning: a NAS with
// a wrong secret sends thousands of packets a minute, and one line says it.
const warnEvery = time.Minute

// maxWarnKeys bounds the limiter's memory under a flood of spoofed sources.
const maxWarnKeys = 4096

type warnKey struct {
	src  netip.Addr
	what string
}

type warnState struct {
	at         time.Time
	suppressed int
}

// warnLimiter lets one warning per (source, kind) through per warnEvery and
// counts the ones it held back, so that the next line can say how many.
type warnLimiter struct {
	max  int // keys remembered (default maxWarnKeys)
	mu   sync.Mutex
	seen map[warnKey]*warnState
}

// allow reports whether to log now, and how many were suppressed since the
// last line for the same key.
func (w *warnLimiter) allow(src netip.Addr, what string, now time.Time) (bool, int) {
	k := warnKey{src, what}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen == nil {
		w.seen = make(map[warnKey]*warnState)
	}
	if st := w.seen[k]; st != nil {
		if now.Sub(st.at) < warnEvery {
			st.suppressed++
			return false, 0
		}
		n := st.suppressed
		st.at, st.suppressed = now, 0
		return true, n
	}
	max := w.max
	if max <= 0 {
		max = maxWarnKeys
	}
	if len(w.seen) >= max {
		for k, st := range w.seen {
			if now.Sub(st.at) >= warnEvery {
				delete(w.seen, k)
			}
		}
		if len(w.seen) >= max {
			// Still full: a flood from many addresses. Stay quiet for
			// new ones until entries age out; the counters still count.
			return false, 0
		}
	}
	w.seen[k] = &warnState{at: now}
	return true, 0
}
