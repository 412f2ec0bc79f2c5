package routeros

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-routeros/routeros/v3"
	"github.com/go-routeros/routeros/v3/proto"

	"authwatch/watcher"
)

// Asking the router about a session when it gets its address (a
// session.start with an IP, or the update that brings it): the simple queue
// that shapes it — its max-limit is the customer's plan — and which of the
// [blocked] firewall address-lists hold its IP, the provider's block for
// non-payment. The answer rides on the session's own event
// (Detail.RouterCheck), so that the customer's state and a reboot watch
// learn it with the session: "authenticated, but blocked" is then the
// watch's verdict, not a surprise a second later.
//
// Only the sessions this source records are checked (its /ppp/active, or
// with sessions = false the "logged in" log lines): a session of this
// router reported by RADIUS accounting is the same session, and the
// router's own report of it carries the check.
//
// IPv6 is not asked for: /ppp/active has no IPv6 field, and the delegated
// prefix's owner in /ipv6/pool/used is not documented well enough to rely
// on. A session's IPv6 comes from RADIUS accounting (Framed-IPv6-Prefix,
// Delegated-IPv6-Prefix, Framed-IPv6-Address).

const (
	// recheckAfter is when a session whose check found no queue or no
	// blocked list is asked about once more: RouterOS may add the dynamic
	// queue and the address-list entry a moment after the session shows its
	// address. Rechecks run on the poll ticker, so they come between
	// recheckAfter and recheckAfter + PollInterval later.
	recheckAfter = 5 * time.Second
	// bulkCheckFrom is how many sessions in one batch make the check read
	// whole tables once (the blocked lists, /queue/simple) rather than ask
	// two questions per session: the first read after connecting, or a
	// burst of logins after an outage.
	bulkCheckFrom = 16

	queueMenu       = "/queue/simple"
	addressListMenu = "/ip/firewall/address-list"
)

// checksOff records which reads the router refused on this connection (a
// user without the read policy, a RouterOS without the menu): they are not
// asked again until the next connection.
type checksOff struct{ queues, lists bool }

// checkSessions attaches a RouterCheck to each session event of evs that
// carries an address, and schedules a second check of the sessions it found
// little about. A refused read is reported once per connection and skipped.
// Any other error means the command link broke: the events keep what was
// learnt, and the error is returned for the caller to commit them and then
// reconnect.
func (s *Source) checkSessions(cmd *link, evs []watcher.Event) error {
	err := s.annotate(cmd, evs)
	if err == nil {
		s.scheduleRechecks(evs)
	}
	return err
}

// checkable reports whether ev is a session event the router can be asked
// about.
func checkable(ev watcher.Event) bool {
	return (ev.Kind == watcher.SessionStart || ev.Kind == watcher.SessionUpdate) && ev.Login != "" && ev.IP != "" && ev.Detail != nil
}

// annotate is checkSessions without the second check.
func (s *Source) annotate(cmd *link, evs []watcher.Event) error {
	var todo []int
	for i, ev := range evs {
		if checkable(ev) {
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 || s.off.queues && !s.asksLists() {
		return nil
	}
	if len(todo) >= bulkCheckFrom {
		return s.annotateBulk(cmd, evs, todo)
	}
	for _, i := range todo {
		rc, err := s.checkSession(cmd, evs[i])
		if rc != nil {
			evs[i].Detail.RouterCheck = rc
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// recheck is a session to ask about again, and what it was told first.
type recheck struct {
	due   time.Time
	first *watcher.RouterCheck
}

// scheduleRechecks marks for a second check the sessions of evs (by .id)
// whose check found no queue, or none of the blocked lists.
func (s *Source) scheduleRechecks(evs []watcher.Event) {
	if s.off.queues && !s.asksLists() {
		return
	}
	for _, ev := range evs {
		if !checkable(ev) {
			continue
		}
		id := ev.Detail.Attributes["id"]
		rc := ev.Detail.RouterCheck
		if id == "" || ev.Reason != "" || rc != nil && rc.Queue != "" && (len(rc.AddressLists) > 0 || !rc.ListsChecked) {
			// Log-only sessions have no .id to find again; sessions found
			// already up were not just made; nothing left to learn.
			continue
		}
		if s.rechecks == nil {
			s.rechecks = map[string]recheck{}
		}
		s.rechecks[id] = recheck{due: time.Now().Add(s.cfg.recheckAfter), first: rc}
	}
}

// runRechecks checks again the sessions whose time has come and that are
// still up, and records a session.update for those the router now says more
// about. It returns an error only when the command link broke.
func (s *Source) runRechecks(ctx context.Context, cmd *link, now time.Time) error {
	var evs []watcher.Event
	var firsts []*watcher.RouterCheck
	for id, rq := range s.rechecks {
		r, up := s.known[id]
		switch {
		case !up:
			delete(s.rechecks, id)
		case !now.Before(rq.due):
			delete(s.rechecks, id)
			evs = append(evs, s.sessionEvent(watcher.SessionUpdate, r, now, ""))
			firsts = append(firsts, rq.first)
		}
	}
	if len(evs) == 0 {
		return nil
	}
	checkErr := s.annotate(cmd, evs)
	var news []watcher.Event
	for i, ev := range evs {
		if rc := ev.Detail.RouterCheck; rc != nil && saysMore(rc, firsts[i]) {
			ev.Reason = "router check: " + describeCheck(rc)
			news = append(news, ev)
		}
	}
	s.commit(ctx, news)
	return checkErr
}

// saysMore reports whether the second check found what the first did not:
// a queue, another max-limit, a blocked list.
func saysMore(now, first *watcher.RouterCheck) bool {
	if first == nil {
		return now.MaxLimit != "" || len(now.AddressLists) > 0
	}
	return now.MaxLimit != "" && now.MaxLimit != first.MaxLimit || len(now.AddressLists) > 0 && len(first.AddressLists) == 0
}

// describeCheck says what a check found, for an event's reason.
func describeCheck(rc *watcher.RouterCheck) string {
	var parts []string
	if rc.MaxLimit != "" {
		parts = append(parts, "queue "+rc.Queue+" max-limit "+rc.MaxLimit)
	}
	for _, l := range rc.AddressLists {
		parts = append(parts, "address-list "+l)
	}
	return strings.Join(parts, ", ")
}

func (s *Source) asksLists() bool { return len(s.cfg.BlockedLists) > 0 && !s.off.lists }

// queueTargets are the targets a session's simple queue may have: its PPP
// interface, as RouterOS names the dynamic queue that Mikrotik-Rate-Limit
// or a profile's rate-limit creates, or its IP, as provider systems that
// add their own queues often write it.
func queueTargets(ev watcher.Event) []string {
	service := ev.Detail.Service
	if service == "" {
		service = "pppoe"
	}
	return []string{"<" + service + "-" + ev.Login + ">", ev.IP + "/32"}
}

// checkSession asks the router about one session: two or three prints.
func (s *Source) checkSession(cmd *link, ev watcher.Event) (*watcher.RouterCheck, error) {
	rc := &watcher.RouterCheck{}
	asked := false
	if !s.off.queues {
		for _, target := range queueTargets(ev) {
			r, err := s.read(cmd, &s.off.queues, queueMenu+"/print", "=.proplist=name,target,max-limit,disabled", "?target="+target)
			if err != nil {
				return nil, err
			}
			if r == nil {
				break // refused
			}
			asked = true
			if q, ok := firstQueue(r.Re); ok {
				rc.Queue, rc.MaxLimit = q.name, q.maxLimit
				break
			}
		}
	}
	if s.asksLists() {
		r, err := s.read(cmd, &s.off.lists, addressListMenu+"/print", "=.proplist=list,address,disabled", "?address="+ev.IP)
		if err != nil {
			return nil, err
		}
		if r != nil {
			asked = true
			rc.ListsChecked = true
			for _, re := range r.Re {
				m := re.Map
				if m["address"] == ev.IP && enabled(m) && slices.Contains(s.cfg.BlockedLists, m["list"]) && !slices.Contains(rc.AddressLists, m["list"]) {
					rc.AddressLists = append(rc.AddressLists, m["list"])
				}
			}
		}
	}
	if !asked {
		return nil, nil
	}
	return rc, nil
}

// annotateBulk checks many sessions with one read of each blocked list and
// one of /queue/simple.
func (s *Source) annotateBulk(cmd *link, evs []watcher.Event, todo []int) error {
	var queues map[string]queue // by target
	if !s.off.queues {
		r, err := s.read(cmd, &s.off.queues, queueMenu+"/print", "=.proplist=name,target,max-limit,disabled")
		if err != nil {
			return err
		}
		if r != nil {
			queues = map[string]queue{}
			for _, re := range r.Re {
				q, ok := parseQueue(re.Map)
				if !ok {
					continue
				}
				for _, t := range strings.Split(re.Map["target"], ",") {
					if _, dup := queues[t]; !dup {
						queues[t] = q
					}
				}
			}
		}
	}
	var listed map[string][]string // IP → blocked lists holding it
	if s.asksLists() {
		listed = map[string][]string{}
		for _, list := range s.cfg.BlockedLists {
			r, err := s.read(cmd, &s.off.lists, addressListMenu+"/print", "=.proplist=list,address,disabled", "?list="+list)
			if err != nil {
				return err
			}
			if r == nil {
				listed = nil
				break
			}
			for _, re := range r.Re {
				if a := re.Map["address"]; re.Map["list"] == list && enabled(re.Map) && !slices.Contains(listed[a], list) {
					listed[a] = append(listed[a], list)
				}
			}
		}
	}
	if queues == nil && listed == nil {
		return nil
	}
	for _, i := range todo {
		ev := &evs[i]
		rc := &watcher.RouterCheck{}
		for _, t := range queueTargets(*ev) {
			if q, ok := queues[t]; ok {
				rc.Queue, rc.MaxLimit = q.name, q.maxLimit
				break
			}
		}
		if listed != nil {
			rc.ListsChecked = true
			rc.AddressLists = listed[ev.IP]
		}
		ev.Detail.RouterCheck = rc
	}
	return nil
}

// read runs one print of the check. The router's refusal (!trap) turns the
// check off for this connection (*off) and returns a nil reply; any other
// error is the link's.
func (s *Source) read(cmd *link, off *bool, words ...string) (*routeros.Reply, error) {
	r, err := cmd.run(s.pollTimeout(), words...)
	if err == nil {
		return r, nil
	}
	var de *routeros.DeviceError
	if errors.As(err, &de) {
		*off = true
		msg := clean(de.Sentence.Map["message"], 256)
		s.setError(s.errf("%s refused by the router: %s", words[0], msg))
		s.log.Warn("routeros: session check refused; going on without it until the next connection", "command", words[0], "message", msg)
		return nil, nil
	}
	s.countReplyError(err)
	return nil, s.errf("session check: %s: %w", words[0], err)
}

// queue is a /queue/simple item as the check keeps it.
type queue struct{ name, maxLimit string }

func parseQueue(m map[string]string) (queue, bool) {
	if !enabled(m) || m["max-limit"] == "" {
		return queue{}, false
	}
	return queue{name: clean(m["name"], 64), maxLimit: formatMaxLimit(m["max-limit"])}, true
}

func firstQueue(res []*proto.Sentence) (queue, bool) {
	for _, re := range res {
		if q, ok := parseQueue(re.Map); ok {
			return q, true
		}
	}
	return queue{}, false
}

// enabled reports whether an item is not disabled.
func enabled(m map[string]string) bool {
	d := m["disabled"]
	return d != "true" && d != "yes"
}

// formatMaxLimit writes a max-limit the way providers write rate limits:
// the API prints bits per second ("300000000/150000000"), the provider
// wrote "300M/150M". Parts that are not plain numbers are kept as they are.
// The order stays RouterOS': upload/download of the customer (the queue's
// target).
func formatMaxLimit(s string) string {
	parts := strings.Split(clean(s, 64), "/")
	for i, p := range parts {
		parts[i] = formatRate(p)
	}
	return strings.Join(parts, "/")
}

func formatRate(s string) string {
	n, err := strconv.ParseUint(s, 10, 64)
	switch {
	case err != nil:
		return s
	case n >= 1e9 && n%1e9 == 0:
		return fmt.Sprintf("%dG", n/1e9)
	case n >= 1e6 && n%1e6 == 0:
		return fmt.Sprintf("%dM", n/1e6)
	case n >= 1e3 && n%1e3 == 0:
		return fmt.Sprintf("%dk", n/1e3)
	}
	return s
}
