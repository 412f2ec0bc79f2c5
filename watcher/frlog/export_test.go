package frlog

import (
	"time"

	"authwatch/watcher"
)

// ManualSteps makes s step only when the returned function is called (no
// fsnotify, no poll), which returns once the step is done. The first step,
// at the start of Run, must be waited for with Started.
func ManualSteps(s *Source) (step func(), started func()) {
	tick := make(chan time.Time)
	done := make(chan struct{})
	s.noNotify, s.tick, s.stepped = true, tick, done
	return func() { tick <- time.Now(); <-done }, func() { <-done }
}

// Ready returns a channel closed once Run has done its first step (opened
// the file, or found it absent).
func Ready(s *Source) <-chan struct{} {
	s.ready = make(chan struct{})
	return s.ready
}

// PollOnly turns fsnotify off and polls every d, as on a file system
// without notifications.
func PollOnly(s *Source, d time.Duration) { s.noNotify, s.pollEvery = true, d }

// ParseLine exposes the parser to the external tests: the event a line
// becomes, or ok = false when it becomes none.
func ParseLine(cfg Config, line string, loc *time.Location, now time.Time) (watcher.Event, string, bool) {
	a, class := parseLine(line, loc, now)
	switch class {
	case classOther:
		return watcher.Event{}, "other", false
	case classUnknown:
		return watcher.Event{}, "unknown", false
	}
	return a.event(cfg, "freeradius:"+cfg.Name), "auth", true
}
