// Package watch follows one customer through a reboot, the moment a support
// agent cares about: from "please unplug your router" to "online and its page
// answers", or to the reason it is not. A Watch is a small state machine fed
// with the login's committed events:
//
//	waiting_drop → dropped → authenticating → online → reachable
//
// and it ends with a verdict in plain words (ok, auth_failing, no_attempt,
// online_unreachable, mac_changed, no_drop) that the agent can paste into the
// ticket. The Manager keeps the active watches, persists them so that they
// survive a restart, and drives the CPE probe once a watched login is online.
package watch

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"time"

	"authwatch/watcher"
)

// Step is how far a watched reboot has come.
type Step string

// The steps, in order.
const (
	WaitingDrop    Step = "waiting_drop"
	Dropped        Step = "dropped"
	Authenticating Step = "authenticating"
	Online         Step = "online"
	Reachable      Step = "reachable"
)

var stepOrder = map[Step]int{WaitingDrop: 0, Dropped: 1, Authenticating: 2, Online: 3, Reachable: 4}

// Verdict is how a watch ended ("" while it runs).
type Verdict string

// The verdicts.
const (
	OK                Verdict = "ok"                 // online and its page answers (or online, when probing is off)
	AuthFailing       Verdict = "auth_failing"       // the router tried and was rejected
	NoAttempt         Verdict = "no_attempt"         // dropped, then nothing: equipment, fibre or radio
	OnlineUnreachable Verdict = "online_unreachable" // session up, CPE page silent
	MACChanged        Verdict = "mac_changed"        // came back from another MAC: another router
	NoDrop            Verdict = "no_drop"            // the session never dropped: no real reboot
	OnlineBlocked     Verdict = "online_blocked"     // authenticated, but in the provider's block (billing)
	Cancelled         Verdict = "cancelled"          // ended by an agent before a verdict
)

// Session is what a watch remembers of a session.
type Session struct {
	NAS string `json:"nas,omitempty"`
	ID  string `json:"session_id,omitempty"`
	MAC string `json:"mac,omitempty"`
	IP  string `json:"ip,omitempty"`
	// IPv6 is the address the NAS reports for the customer's equipment
	// (Framed-IPv6-Address), never one taken from a prefix.
	IPv6 string    `json:"ipv6,omitempty"`
	At   time.Time `json:"at"`
}

// Reject is one refused authentication during the watch.
type Reject struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
	NAS    string    `json:"nas,omitempty"`
	MAC    string    `json:"mac,omitempty"`
}

// Mark is when a step was reached.
type Mark struct {
	Step Step      `json:"step"`
	At   time.Time `json:"at"`
	Note string    `json:"note,omitempty"` // e.g. the terminate cause of the drop
}

// HTTP is the last CPE probe result during the watch.
type HTTP struct {
	At     time.Time `json:"at"`
	Up     bool      `json:"up"`
	Reason string    `json:"reason,omitempty"`
	Title  string    `json:"title,omitempty"`
	URL    string    `json:"url,omitempty"`
	Tries  int       `json:"tries"`
}

// Watch is one followed reboot. Its JSON form is what the API and the
// websocket carry.
type Watch struct {
	ID       string    `json:"id"`
	Login    string    `json:"login"`
	Ticket   string    `json:"ticket,omitempty"`
	Agent    string    `json:"agent,omitempty"`
	Started  time.Time `json:"started"`
	Timeout  Seconds   `json:"timeout"`
	Deadline time.Time `json:"deadline"`
	// Probing says whether the CPE page is probed: without it, online is the
	// end of the road.
	Probing bool `json:"probing"`

	Step   Step     `json:"step"`
	Marks  []Mark   `json:"marks"`
	Before *Session `json:"before,omitempty"` // the session open when the watch started
	After  *Session `json:"after,omitempty"`  // the new session
	// Accepts counts Access-Accepts seen (proxy, logs), Rejects the refusals.
	Accepts int      `json:"accepts"`
	Rejects []Reject `json:"rejects"`
	HTTP    *HTTP    `json:"http,omitempty"`
	Outage  *Outage  `json:"outage,omitempty"`
	Notes   []string `json:"notes,omitempty"` // facts worth the ticket ("already offline when the watch started")
	// MultipleLogins is set when a reject says the login is already online
	// ("Multiple logins", "already logged in"): an old session is still open
	// on the concentrator. Stale is that session when the watch knows it
	// (the one it started with, whose stop it has not seen).
	MultipleLogins bool `json:"multiple_logins,omitempty"`
	// Blocked is set when the customer came back online blocked (or
	// reduced) for non-payment: it sounds like "no internet" on the phone.
	Blocked      *watcher.Block `json:"blocked,omitempty"`
	Stale        *Session       `json:"stale,omitempty"`
	beforeClosed bool
	Verdict      Verdict   `json:"verdict,omitempty"`
	Ended        time.Time `json:"ended,omitzero"`
	LastSeq      int64     `json:"last_seq"` // the last event applied
}

// Outage is a notice that many customers of one NAS dropped at once.
type Outage struct {
	NAS   string    `json:"nas"`
	Since time.Time `json:"since"`
	Cause string    `json:"cause"` // what tripped it: "Accounting-Off", "40 sessions stopped in 60s"…
	Count int       `json:"count,omitempty"`
}

// Active reports whether the watch has no verdict yet.
func (w *Watch) Active() bool { return w.Verdict == "" }

// Elapsed is the time from start to the end, or to now while it runs.
func (w *Watch) Elapsed(now time.Time) time.Duration {
	if !w.Ended.IsZero() {
		return w.Ended.Sub(w.Started)
	}
	return now.Sub(w.Started)
}

// Begin sets up a new watch of c at now: a customer online is waiting for
// the drop; one already offline has, in effect, already dropped.
func Begin(id string, c watcher.Customer, now time.Time, timeout time.Duration, probing bool) *Watch {
	w := &Watch{
		ID: id, Login: c.Login, Started: now, Timeout: Seconds(timeout), Deadline: now.Add(timeout),
		Probing: probing, Step: WaitingDrop, Marks: []Mark{{WaitingDrop, now, ""}}, Rejects: []Reject{},
		LastSeq: c.LastSeq,
	}
	if n := len(c.Sessions); n > 0 {
		s := c.Sessions[n-1] // the newest: the one the router holds now
		w.Before = &Session{NAS: s.NAS, ID: s.ID, MAC: s.MAC, IP: s.IP, At: s.Start}
	} else {
		w.mark(Dropped, now, "")
		if c.LastStop != nil {
			w.Notes = append(w.Notes, fmt.Sprintf("offline since %s (%s)", c.LastStop.At.Format(time.RFC3339), c.LastStop.Reason))
		} else {
			w.Notes = append(w.Notes, "already offline when the watch started")
		}
	}
	return w
}

// mark moves the watch forward to step s; it reports false when the watch
// is already there or further.
func (w *Watch) mark(s Step, at time.Time, note string) bool {
	if stepOrder[s] <= stepOrder[w.Step] && len(w.Marks) > 0 {
		return false
	}
	w.Step = s
	w.Marks = append(w.Marks, Mark{s, at, note})
	return true
}

// Apply folds one of the login's events (or an event about its NAS) into
// the watch and reports whether the watch changed.
func (w *Watch) Apply(ev watcher.Event) bool {
	if !w.Active() || ev.Seq != 0 && ev.Seq <= w.LastSeq {
		return false
	}
	if ev.Seq != 0 {
		w.LastSeq = ev.Seq
	}
	switch ev.Kind {
	case watcher.SessionStop:
		if ev.Login != w.Login {
			return false
		}
		if w.After != nil && ev.SessionID == w.After.ID && ev.NAS == w.After.NAS {
			// The new session dropped again: back to waiting for it.
			w.After = nil
			w.Step = Dropped
			w.Marks = append(w.Marks, Mark{Dropped, ev.At, ev.Reason})
			w.Notes = append(w.Notes, fmt.Sprintf("the new session dropped again (%s)", ev.Reason))
			return true
		}
		if w.isBefore(ev) {
			w.beforeClosed = true
			if w.Stale != nil {
				w.Stale = nil // the old session is gone: the next try can succeed
			}
		}
		if w.Before != nil && !w.isBefore(ev) && w.Step != WaitingDrop {
			return false // some other stale session closing: not news
		}
		return w.mark(Dropped, ev.At, ev.Reason)
	case watcher.NASDown, watcher.NASUp:
		if w.Before == nil || ev.NAS != w.Before.NAS || w.Step != WaitingDrop {
			return false
		}
		return w.mark(Dropped, ev.At, fmt.Sprintf("NAS %s: %s", ev.NAS, ev.Reason))
	case watcher.AuthReject:
		if ev.Login != w.Login || stepOrder[w.Step] >= stepOrder[Online] {
			return false
		}
		w.Rejects = append(w.Rejects, Reject{At: ev.At, Reason: ev.Reason, NAS: ev.NAS, MAC: ev.MAC})
		if IsMultipleLogins(ev) {
			w.MultipleLogins = true
			if w.Before != nil && !w.beforeClosed {
				s := *w.Before
				w.Stale = &s
			}
		}
		w.mark(Authenticating, ev.At, "")
		return true
	case watcher.AuthAccept:
		if ev.Login != w.Login || stepOrder[w.Step] >= stepOrder[Online] {
			return false
		}
		w.Accepts++
		w.mark(Authenticating, ev.At, "")
		return true
	case watcher.SessionStart, watcher.SessionUpdate:
		if ev.Login != w.Login || w.isBefore(ev) {
			return false
		}
		ip, v6 := ev.IP, ""
		if ip == "0.0.0.0" {
			ip = ""
		}
		if ev.Detail != nil {
			v6 = ev.Detail.IPv6Address
		}
		if a := w.After; a != nil {
			// RouterOS lists a session before its address is assigned: the
			// update that brings the IP completes the new session (and lets
			// the probe start).
			if ev.NAS != a.NAS || ev.SessionID != a.ID || (a.IP != "" || ip == "") && (a.IPv6 != "" || v6 == "") {
				return false
			}
			a.IP, a.IPv6 = cmp.Or(a.IP, ip), cmp.Or(a.IPv6, v6)
			if !w.Probing {
				w.end(w.onlineVerdict(), ev.At)
			}
			return true
		}
		if ev.Kind == watcher.SessionUpdate && ip == "" && v6 == "" {
			return false
		}
		if w.Step == WaitingDrop {
			// A new session while the old one is still listed: the router
			// redialled before the NAS noticed the old one was dead.
			w.Notes = append(w.Notes, "a new session came up before the old one was closed")
		}
		w.After = &Session{NAS: ev.NAS, ID: ev.SessionID, MAC: ev.MAC, IP: ip, IPv6: v6, At: ev.At}
		w.mark(Online, ev.At, "")
		// Without probing, online is the end; but a session without an
		// address yet (RouterOS's 0.0.0.0) is not quite online: the update
		// that brings it ends the watch, together with what the router
		// says of the session then (blocked?).
		if !w.Probing && (ip != "" || v6 != "") {
			w.end(w.onlineVerdict(), ev.At)
		}
		return true
	case watcher.HTTPUp, watcher.HTTPDown:
		if ev.Login != w.Login || w.After == nil {
			return false
		}
		h := &HTTP{At: ev.At, Up: ev.Kind == watcher.HTTPUp, Reason: ev.Reason}
		if w.HTTP != nil {
			h.Tries = w.HTTP.Tries
		}
		h.Tries++
		if ev.Detail != nil {
			h.Title, h.URL = ev.Detail.HTTPTitle, ev.Detail.URL
		}
		w.HTTP = h
		if h.Up {
			w.mark(Reachable, ev.At, h.Title)
			w.end(w.onlineVerdict(), ev.At)
		}
		return true
	}
	return false
}

func (w *Watch) isBefore(ev watcher.Event) bool {
	return w.Before != nil && ev.NAS == w.Before.NAS && ev.SessionID == w.Before.ID
}

func (w *Watch) onlineVerdict() Verdict {
	if w.Before != nil && w.After != nil && w.Before.MAC != "" && w.After.MAC != "" && w.Before.MAC != w.After.MAC {
		return MACChanged
	}
	return OK
}

// SetBlocked ends a watch that reached online with the customer in the
// provider's block: the reboot worked, billing is the story. It reports
// whether the watch changed.
func (w *Watch) SetBlocked(b watcher.Block, at time.Time) bool {
	// A watch that just ended ok at this very moment (online, probing off)
	// ended too soon: blocked is the truer verdict.
	justOK := (w.Verdict == OK || w.Verdict == MACChanged) && w.Ended.Equal(at)
	if !w.Active() && !justOK || stepOrder[w.Step] < stepOrder[Online] {
		return false
	}
	w.Blocked = &b
	w.end(OnlineBlocked, at)
	return true
}

// SetOutage attaches a mass-outage notice; it reports whether it is new.
func (w *Watch) SetOutage(o Outage) bool {
	if !w.Active() || w.Outage != nil && w.Outage.NAS == o.NAS {
		return false
	}
	w.Outage = &o
	return true
}

// Expire ends the watch with the verdict its step calls for, when now is
// past its deadline; it reports whether it did.
func (w *Watch) Expire(now time.Time) bool {
	if !w.Active() || now.Before(w.Deadline) {
		return false
	}
	var v Verdict
	switch w.Step {
	case WaitingDrop:
		v = NoDrop
	case Dropped:
		v = NoAttempt
	case Authenticating:
		if len(w.Rejects) > 0 {
			v = AuthFailing
		} else {
			v = NoAttempt // accepted, yet no session came up
		}
	case Online:
		v = OnlineUnreachable
		if w.onlineVerdict() == MACChanged || !w.Probing {
			// Without probing, a session that never got its address is
			// as far as the watch can see.
			v = w.onlineVerdict()
		}
	default:
		v = w.onlineVerdict()
	}
	w.end(v, w.Deadline)
	return true
}

// Cancel ends the watch at an agent's request.
func (w *Watch) Cancel(now time.Time) bool {
	if !w.Active() {
		return false
	}
	w.end(Cancelled, now)
	return true
}

func (w *Watch) end(v Verdict, at time.Time) {
	w.Verdict, w.Ended = v, at
}

// Seconds is a duration that JSON carries as a number of seconds.
type Seconds time.Duration

// MarshalJSON writes the number of seconds.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(time.Duration(s).Seconds(), 'f', -1, 64)), nil
}

// UnmarshalJSON reads a number of seconds.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("seconds: %w", err)
	}
	*s = Seconds(f * float64(time.Second))
	return nil
}

// IsMultipleLogins reports whether a reject says the login is already online:
// FreeRADIUS's "Multiple logins" (Simultaneous-Use), its Reply-Message "You
// are already logged in", RouterOS's "already logged in", or the hint the
// FreeRADIUS log source attaches.
func IsMultipleLogins(ev watcher.Event) bool {
	if ev.Detail != nil && ev.Detail.Attributes["hint"] == "multiple_logins" {
		return true
	}
	r := strings.ToLower(ev.Reason)
	return strings.Contains(r, "multiple logins") || strings.Contains(r, "already logged in") || strings.Contains(r, "already online")
}
