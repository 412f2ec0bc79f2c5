package frsql

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// position is what is saved in the PositionStore, as JSON: how far each
// table has been read. Tables are named, so that pointing the source at
// another table starts that table afresh instead of resuming at an id that
// means nothing there.
type position struct {
	V        int      `json:"v"`
	PostAuth *idPos   `json:"postauth,omitempty"`
	Acct     *acctPos `json:"acct,omitempty"`
}

// idPos is a table followed by id: every row with an id up to ID was read.
type idPos struct {
	Table string `json:"table"`
	ID    int64  `json:"id"`
}

// acctPos is radacct: new rows by id, changes by two keysets.
type acctPos struct {
	Table string `json:"table"`
	ID    int64  `json:"id"`
	// Update and Stop are where reading changes of acctupdatetime and
	// acctstoptime resumes: rows after (T, ID) in (time, id) order, less
	// those in Seen. T is the value as the database returned it (a wall
	// clock where the column has no zone), compared in SQL with the column
	// itself.
	Update *cursorPos `json:"update,omitempty"`
	Stop   *cursorPos `json:"stop,omitempty"`
}

// keyset is a point in (time, id) order.
type keyset struct {
	T  time.Time `json:"t"`
	ID int64     `json:"id"`
}

// less orders keysets by time, then id.
func (k keyset) less(o keyset) bool {
	if !k.T.Equal(o.T) {
		return k.T.Before(o.T)
	}
	return k.ID < o.ID
}

func (k keyset) equal(o keyset) bool { return k.T.Equal(o.T) && k.ID == o.ID }

const positionVersion = 1

func decodePosition(b []byte) (*position, error) {
	var p position
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decode saved position: %w", err)
	}
	if p.V != positionVersion {
		return nil, fmt.Errorf("saved position has version %d, want %d", p.V, positionVersion)
	}
	return &p, nil
}

// cursorPos is a change cursor as saved: where reading resumes, and the
// changes at or after it that were already recorded.
type cursorPos struct {
	keyset
	Seen [][2]int64 `json:"seen,omitempty"` // [radacctid, time in µs]
}

// changeCursor follows one time column of radacct (acctupdatetime or
// acctstoptime) in (time, id) order.
//
// Those times come from the NAS (Event-Timestamp) or from FreeRADIUS when
// the request arrived, not from the database at commit: a row may become
// visible with a time older than rows already read (a NAS whose clock is
// behind, two FreeRADIUS threads committing out of order). So besides the
// regular polls, which read after the highest key read, a sweep every
// sweepEvery reads again from lookback before the database's clock, and
// seen skips what was already recorded with that very time. A change older
// than lookback when it becomes visible is missed.
type changeCursor struct {
	col   string // logical column: "update_time" or "stop_time"
	floor keyset // where this run started: never read before it
	last  keyset // the highest key read
	// resume is where the next poll starts when the last one stopped
	// after its page limit, with rows left to read.
	resume   keyset
	catching bool
	// now is the database's clock at the last poll (zero before it).
	now  time.Time
	seen map[int64]int64 // radacctid → the time (µs) of the change recorded
}

func newChangeCursor(col string, p cursorPos) *changeCursor {
	c := &changeCursor{col: col, floor: p.keyset, last: p.keyset, seen: make(map[int64]int64, len(p.Seen))}
	for _, e := range p.Seen {
		c.seen[e[0]] = e[1]
	}
	return c
}

// from is where a poll reads from: after the highest key read, or for a
// sweep lookback before the database's clock now.
func (c *changeCursor) from(now time.Time, lookback time.Duration, sweep bool) keyset {
	if c.catching {
		return c.resume
	}
	k := c.last
	if sweep {
		if lb := (keyset{T: now.Add(-lookback)}); lb.less(k) {
			k = lb
		}
	}
	if k.less(c.floor) {
		k = c.floor
	}
	return k
}

// sweepFrom is where a sweep at the last poll's clock reads from (the
// floor before any poll).
func (c *changeCursor) sweepFrom(lookback time.Duration) keyset {
	if c.now.IsZero() {
		return c.floor
	}
	return c.from(c.now, lookback, true)
}

// prune forgets the changes no sweep will read again.
func (c *changeCursor) prune(lookback time.Duration) {
	from := c.sweepFrom(lookback).T.UnixMicro()
	for id, us := range c.seen {
		if us < from {
			delete(c.seen, id)
		}
	}
}

// checkpoint returns what to save: where a restart reads from, as a sweep
// at the last poll would, with the changes after it already recorded.
func (c *changeCursor) checkpoint(lookback time.Duration) cursorPos {
	c.prune(lookback)
	p := cursorPos{keyset: c.sweepFrom(lookback)}
	for id, us := range c.seen {
		p.Seen = append(p.Seen, [2]int64{id, us})
	}
	if len(p.Seen) > maxSeen {
		// A flood: keep the latest; the others may be recorded again
		// after a restart.
		slices.SortFunc(p.Seen, func(a, b [2]int64) int { return cmp.Compare(b[1], a[1]) })
		for _, e := range p.Seen[maxSeen:] {
			delete(c.seen, e[0])
		}
		p.Seen = p.Seen[:maxSeen]
	}
	slices.SortFunc(p.Seen, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	return p
}

// recorded reports whether the change of id at t was already recorded.
func (c *changeCursor) recorded(id int64, t time.Time) bool {
	us, ok := c.seen[id]
	return ok && us >= t.UnixMicro()
}

func (c *changeCursor) mark(id int64, t time.Time) {
	if us := t.UnixMicro(); us > c.seen[id] {
		c.seen[id] = us
	}
}
