package watcher

import (
	"sync"
	"sync/atomic"
)

// Firehose is the login that subscribes to every event.
const Firehose = "*"

// Hub fans committed events out to subscribers, per login and to the firehose.
// Publishing never blocks: a subscriber whose queue is full is cut off (its
// channel is closed and Cut reports true), so one slow client cannot slow the
// others or the ingest.
type Hub struct {
	mu    sync.RWMutex
	rooms map[string]map[*Subscription]struct{}
	queue int

	cutoffs atomic.Int64
}

// Message is what a subscription delivers: a committed event, or a notice
// that is not an event (a watch's progress, an outage) and has no seq.
type Message struct {
	Event  *Event
	Notice *Notice
}

// Notice is a message about a login that is not an event of the store.
type Notice struct {
	Type string // "watch", "outage": the websocket message type
	Body any    // its JSON body
}

// Subscription is one subscriber's queue of messages.
type Subscription struct {
	hub   *Hub
	login string
	c     chan Message
	cut   atomic.Bool
	once  sync.Once
}

// NewHub returns a hub whose subscribers each buffer up to queue events.
func NewHub(queue int) *Hub {
	if queue <= 0 {
		queue = 256
	}
	return &Hub{rooms: make(map[string]map[*Subscription]struct{}), queue: queue}
}

// Subscribe starts a subscription to login's events (Firehose for all).
// Events published after Subscribe returns are delivered to C.
func (h *Hub) Subscribe(login string) *Subscription {
	s := &Subscription{hub: h, login: login, c: make(chan Message, h.queue)}
	h.mu.Lock()
	room := h.rooms[login]
	if room == nil {
		room = make(map[*Subscription]struct{})
		h.rooms[login] = room
	}
	room[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// C delivers the subscription's messages. It is closed when the
// subscription is closed or cut off.
func (s *Subscription) C() <-chan Message { return s.c }

// Cut reports whether the hub dropped the subscription for falling behind.
func (s *Subscription) Cut() bool { return s.cut.Load() }

// Close ends the subscription. It is safe to call more than once.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	s.hub.remove(s)
	s.hub.mu.Unlock()
}

// remove must be called with h.mu held for writing.
func (h *Hub) remove(s *Subscription) {
	s.once.Do(func() {
		if room := h.rooms[s.login]; room != nil {
			delete(room, s)
			if len(room) == 0 {
				delete(h.rooms, s.login)
			}
		}
		close(s.c)
	})
}

// Publish delivers ev to the subscribers of each of logins and of the firehose.
func (h *Hub) Publish(ev Event, logins []string) {
	h.send(Message{Event: &ev}, logins)
}

// Notify delivers a notice to the subscribers of each of logins and of the
// firehose.
func (h *Hub) Notify(n Notice, logins []string) {
	h.send(Message{Notice: &n}, logins)
}

func (h *Hub) send(m Message, logins []string) {
	var slow []*Subscription
	h.mu.RLock()
	for _, login := range logins {
		slow = h.deliver(h.rooms[login], m, slow)
	}
	slow = h.deliver(h.rooms[Firehose], m, slow)
	h.mu.RUnlock()
	if len(slow) == 0 {
		return
	}
	h.mu.Lock()
	for _, s := range slow {
		h.remove(s)
	}
	h.mu.Unlock()
}

func (h *Hub) deliver(room map[*Subscription]struct{}, m Message, slow []*Subscription) []*Subscription {
	for s := range room {
		if s.cut.Load() {
			continue
		}
		select {
		case s.c <- m:
		default:
			// Mark it now, under the read lock, so no later event reaches a
			// subscriber that has already missed one: its stream stays gapless
			// up to the cut, and it resumes from the store by seq.
			if s.cut.CompareAndSwap(false, true) {
				h.cutoffs.Add(1)
				slow = append(slow, s)
			}
		}
	}
	return slow
}

// HubStats counts subscribers and cut-offs.
type HubStats struct {
	Subscribers int   `json:"subscribers"`
	Cutoffs     int64 `json:"cutoffs"`
}

// Stats returns the current subscriber count and the cut-offs so far.
func (h *Hub) Stats() HubStats {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, room := range h.rooms {
		n += len(room)
	}
	return HubStats{Subscribers: n, Cutoffs: h.cutoffs.Load()}
}
