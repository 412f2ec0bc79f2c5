package frsql

import (
	"slices"
	"time"
)

// holes are ids the sequence skipped while reading a table by id, each with
// until when it is looked for again. An auto-increment id (or a sequence
// value) is taken at insert and becomes visible at commit, so two inserts
// may become visible out of order: the row with the lower id appears after
// the higher one was read. Most holes never fill (a rolled-back insert, a
// Galera cluster's auto_increment_increment); they are given up after
// holeWait.
type holes map[int64]time.Time

// note adds the gaps before each of rows (in id order), read after id
// after.
func (h holes) note(after int64, rows []*row, now time.Time) {
	prev := after
	for _, r := range rows {
		if gap := r.ID - prev - 1; gap > 0 && gap <= maxGap {
			for id := prev + 1; id < r.ID && len(h) < maxHoles; id++ {
				h[id] = now.Add(holeWait)
			}
		}
		prev = r.ID
	}
}

// expire gives up the holes looked for long enough.
func (h holes) expire(now time.Time) {
	for id, until := range h {
		if now.After(until) {
			delete(h, id)
		}
	}
}

// ids returns the holes in order.
func (h holes) ids() []int64 {
	out := make([]int64, 0, len(h))
	for id := range h {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}
