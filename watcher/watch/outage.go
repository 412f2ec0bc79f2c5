package watch

import (
	"fmt"
	"sync"
	"time"

	"authwatch/watcher"
)

// OutageDetector raises an Outage when a NAS reports it went down or came
// back (Accounting-Off/On), or when more than Threshold sessions of one NAS
// stop within Window: then the customer's reboot is not the story.
type OutageDetector struct {
	Threshold int           // sessions stopped (default 20)
	Window    time.Duration // within this time (default 60 s)
	// Hold is how long a notice stays up after its last trigger (default 10 min).
	Hold time.Duration

	mu     sync.Mutex
	stops  map[string][]time.Time // NAS → recent stop times, oldest first
	active map[string]*Outage     // NAS → the notice in force
	last   map[string]time.Time   // NAS → last trigger
}

func (d *OutageDetector) init() {
	if d.stops == nil {
		d.stops, d.active, d.last = map[string][]time.Time{}, map[string]*Outage{}, map[string]time.Time{}
	}
	if d.Threshold <= 0 {
		d.Threshold = 20
	}
	if d.Window <= 0 {
		d.Window = time.Minute
	}
	if d.Hold <= 0 {
		d.Hold = 10 * time.Minute
	}
}

// Observe looks at one committed event, with the number of sessions it
// closed, and returns a new notice when this event trips one (nil otherwise,
// including while a notice for that NAS is already up). A NAS that reports
// Accounting-On/Off with no session open (its first start) is no outage.
func (d *OutageDetector) Observe(ev watcher.Event, closed int) *Outage {
	if ev.NAS == "" {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.init()
	var cause string
	count := 0
	switch ev.Kind {
	case watcher.NASDown, watcher.NASUp:
		if closed == 0 {
			return nil
		}
		count = closed
		cause = ev.Reason
		if cause == "" {
			cause = string(ev.Kind)
		}
	case watcher.SessionStop:
		times := append(d.stops[ev.NAS], ev.At)
		cut := 0
		for cut < len(times) && ev.At.Sub(times[cut]) > d.Window {
			cut++
		}
		times = times[cut:]
		d.stops[ev.NAS] = times
		if len(times) < d.Threshold {
			return nil
		}
		count = len(times)
		cause = fmt.Sprintf("%d sessions stopped in %s", count, d.Window)
	default:
		return nil
	}
	d.last[ev.NAS] = ev.At
	if o, ok := d.active[ev.NAS]; ok && ev.At.Sub(o.Since) < d.Hold {
		if count > o.Count {
			o.Count = count
		}
		return nil
	}
	o := &Outage{NAS: ev.NAS, Since: ev.At, Cause: cause, Count: count}
	if ev.Kind == watcher.SessionStop {
		o.Since = d.stops[ev.NAS][0]
	}
	d.active[ev.NAS] = o
	cp := *o
	return &cp
}

// Active returns the notices in force at now, and forgets those past Hold.
func (d *OutageDetector) Active(now time.Time) []Outage {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.init()
	var out []Outage
	for nas, o := range d.active {
		if now.Sub(d.last[nas]) > d.Hold {
			delete(d.active, nas)
			continue
		}
		out = append(out, *o)
	}
	return out
}
