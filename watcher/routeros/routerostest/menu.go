package routerostest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrNoSuchItem is returned by the scripting methods for an unknown .id.
var ErrNoSuchItem = errors.New("no such item")

type field struct{ k, v string }

// item is one row of a menu; .id is kept apart from the other fields.
type item struct {
	id     string
	fields []field
	since  time.Time // when it was added: /ppp/active renders uptime from it
}

func (it *item) get(k string) (string, bool) {
	for _, f := range it.fields {
		if f.k == k {
			return f.v, true
		}
	}
	return "", false
}

func (it *item) set(k, v string) {
	for i := range it.fields {
		if it.fields[i].k == k {
			it.fields[i].v = v
			return
		}
	}
	it.fields = append(it.fields, field{k, v})
}

// menu is a generic RouterOS table such as /queue/simple.
type menu struct {
	path     string
	items    []*item
	nextID   uint32
	dynamic  bool // uptime is rendered from since when not set explicitly
	readOnly bool // no add/set from the API (/ppp/active is filled by PPP)
}

func (m *menu) find(id string) (int, *item) {
	for i, it := range m.items {
		if it.id == id {
			return i, it
		}
	}
	return -1, nil
}

func (m *menu) add(fields []field) *item {
	it := &item{id: fmt.Sprintf("*%X", m.nextID), since: time.Now()}
	m.nextID++
	for _, f := range fields {
		if f.k == ".id" {
			it.id = f.v
			continue
		}
		it.set(f.k, f.v)
	}
	m.items = append(m.items, it)
	return it
}

// render returns an item's fields as the router would print them.
func (m *menu) render(it *item) []field {
	out := make([]field, 0, len(it.fields)+2)
	out = append(out, field{".id", it.id})
	out = append(out, it.fields...)
	if m.dynamic {
		if _, ok := it.get("uptime"); !ok {
			out = append(out, field{"uptime", formatUptime(time.Since(it.since))})
		}
	}
	return out
}

// matches applies the simple query words RouterOS print accepts: ?name=value
// (equal), ?name (has the property), ?-name (has not), all ANDed. The stack
// operators (?#) are not implemented.
func matches(fs []field, queries []string) bool {
	for _, q := range queries {
		get := func(k string) (string, bool) {
			for _, f := range fs {
				if f.k == k {
					return f.v, true
				}
			}
			return "", false
		}
		switch {
		case strings.HasPrefix(q, "-"):
			if _, ok := get(q[1:]); ok {
				return false
			}
		case strings.HasPrefix(q, "="):
			k, v, _ := strings.Cut(q[1:], "=")
			if got, ok := get(k); !ok || got != v {
				return false
			}
		default:
			k, v, hasV := strings.Cut(q, "=")
			got, ok := get(k)
			if !ok || hasV && got != v {
				return false
			}
		}
	}
	return true
}

func (c *conn) menuPrint(rq request, m *menu) {
	s := c.s
	_, follow := rq.attrs["follow"]
	_, followOnly := rq.attrs["follow-only"]
	_, countOnly := rq.attrs["count-only"]
	for _, q := range rq.queries {
		if strings.HasPrefix(q, "#") {
			c.trap(rq, "query stack operations are not supported by routerostest")
			return
		}
	}
	s.mu.Lock()
	var rows [][]string
	n := 0
	if !followOnly {
		for _, it := range m.items {
			fs := m.render(it)
			if !matches(fs, rq.queries) {
				continue
			}
			n++
			if !countOnly {
				rows = append(rows, proplist(rq, fs))
			}
		}
	}
	if follow || followOnly {
		// Queue the snapshot before releasing the lock so that no update
		// can overtake it.
		for _, r := range rows {
			c.reply(rq, r...)
		}
		c.subscribe(rq, m.path)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	if countOnly {
		c.replyDone(rq, "=ret="+strconv.Itoa(n))
		return
	}
	for _, r := range rows {
		c.reply(rq, r...)
	}
	c.replyDone(rq)
}

// menuListen follows a menu: every later add or change arrives as a full !re
// item, every removal as "!re =.id=… =.dead=yes". Existing items are not
// sent (that is what print is for). The listen lasts until /cancel.
func (c *conn) menuListen(rq request, m *menu) {
	c.s.mu.Lock()
	c.subscribe(rq, m.path)
	c.s.mu.Unlock()
}

func (c *conn) menuAdd(rq request, m *menu) {
	if m.readOnly {
		c.trap(rq, "no such command (add)", "0")
		return
	}
	fs := make([]field, 0, len(rq.order))
	for _, k := range rq.order {
		fs = append(fs, field{k, rq.attrs[k]})
	}
	s := c.s
	s.mu.Lock()
	it := m.add(fs)
	s.notify(m.path, m.render(it))
	s.mu.Unlock()
	c.replyDone(rq, "=ret="+it.id)
}

func (c *conn) menuSet(rq request, m *menu) {
	if m.readOnly {
		c.trap(rq, "no such command (set)", "0")
		return
	}
	ids := idList(rq)
	s := c.s
	s.mu.Lock()
	for _, id := range ids {
		if _, it := m.find(id); it == nil {
			s.mu.Unlock()
			c.trap(rq, "no such item")
			return
		}
	}
	for _, id := range ids {
		_, it := m.find(id)
		for _, k := range rq.order {
			if k != ".id" && k != "numbers" {
				it.set(k, rq.attrs[k])
			}
		}
		s.notify(m.path, m.render(it))
	}
	s.mu.Unlock()
	c.replyDone(rq)
}

// menuRemove removes items by =.id= (or =numbers=, comma-separated); an
// unknown id fails the whole command with "no such item", as RouterOS does.
func (c *conn) menuRemove(rq request, m *menu) {
	ids := idList(rq)
	if len(ids) == 0 {
		c.trap(rq, "missing value(s) of argument(s) .id")
		return
	}
	s := c.s
	s.mu.Lock()
	for _, id := range ids {
		if _, it := m.find(id); it == nil {
			s.mu.Unlock()
			c.trap(rq, "no such item")
			return
		}
	}
	for _, id := range ids {
		s.removeLocked(m, id)
	}
	s.mu.Unlock()
	c.replyDone(rq)
}

func idList(rq request) []string {
	v, ok := rq.attrs[".id"]
	if !ok {
		v = rq.attrs["numbers"]
	}
	var ids []string
	for _, id := range strings.Split(v, ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

func (s *Server) removeLocked(m *menu, id string) bool {
	i, it := m.find(id)
	if it == nil {
		return false
	}
	m.items = append(m.items[:i], m.items[i+1:]...)
	s.notifyDead(m.path, id)
	return true
}

// AddMenu adds an empty generic menu (print, listen, add, set, remove) at
// path, e.g. "/ip/hotspot/active". Adding an existing menu does nothing.
func (s *Server) AddMenu(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.menus[path] == nil {
		s.menus[path] = &menu{path: path, nextID: 1}
	}
}

// Add appends an item with properties given as "key=value" to the menu at
// path, notifies its listeners and returns the item's .id. A ".id=…"
// property sets the id. It panics on an unknown menu: that is a test bug.
func (s *Server) Add(path string, props ...string) string {
	fs := make([]field, 0, len(props))
	for _, p := range props {
		k, v, _ := strings.Cut(p, "=")
		fs = append(fs, field{k, v})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.menus[path]
	if m == nil {
		panic("routerostest: no menu " + path)
	}
	it := m.add(fs)
	s.notify(m.path, m.render(it))
	return it.id
}

// Set changes properties ("key=value") of the item id and notifies the
// menu's listeners.
func (s *Server) Set(path, id string, props ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.menus[path]
	if m == nil {
		return fmt.Errorf("routerostest: no menu %s", path)
	}
	_, it := m.find(id)
	if it == nil {
		return fmt.Errorf("routerostest: %s %s: %w", path, id, ErrNoSuchItem)
	}
	for _, p := range props {
		k, v, _ := strings.Cut(p, "=")
		it.set(k, v)
	}
	s.notify(m.path, m.render(it))
	return nil
}

// Remove deletes the item id from the menu at path and sends its listeners
// the .dead notice.
func (s *Server) Remove(path, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.menus[path]
	if m == nil {
		return fmt.Errorf("routerostest: no menu %s", path)
	}
	if !s.removeLocked(m, id) {
		return fmt.Errorf("routerostest: %s %s: %w", path, id, ErrNoSuchItem)
	}
	return nil
}

// Items returns the items of the menu at path as printed, .id included.
func (s *Server) Items(path string) []map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.menus[path]
	if m == nil {
		return nil
	}
	out := make([]map[string]string, 0, len(m.items))
	for _, it := range m.items {
		row := map[string]string{}
		for _, f := range m.render(it) {
			row[f.k] = f.v
		}
		out = append(out, row)
	}
	return out
}

// Session is one row of the fake's /ppp/active.
type Session struct {
	ID        string // .id; assigned ("*80000001"…) when empty
	Name      string // the PPPoE login
	Service   string // default "pppoe"
	CallerID  string // the client's MAC for PPPoE
	Address   string // "0.0.0.0" until an IP is assigned, if you like
	Uptime    string // fixed text; empty: counted from when it was added
	Encoding  string
	SessionID string // default 0x81A0nnnn, derived from the .id
	Radius    bool
}

func (ss Session) fields() []field {
	fs := []field{
		{"name", ss.Name}, {"service", ss.Service}, {"caller-id", ss.CallerID},
		{"address", ss.Address}, {"encoding", ss.Encoding}, {"session-id", ss.SessionID},
		{"limit-bytes-in", "0"}, {"limit-bytes-out", "0"}, {"radius", strconv.FormatBool(ss.Radius)},
	}
	if ss.Uptime != "" {
		fs = append(fs, field{"uptime", ss.Uptime})
	}
	if ss.ID != "" {
		fs = append(fs, field{".id", ss.ID})
	}
	return fs
}

// AddSession puts a session in /ppp/active, notifies listeners and returns
// its .id.
func (s *Server) AddSession(ss Session) string {
	if ss.Service == "" {
		ss.Service = "pppoe"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.menus[PPPActive]
	if ss.SessionID == "" {
		ss.SessionID = fmt.Sprintf("0x81A0%04X", m.nextID&0xFFFF)
	}
	it := m.add(ss.fields())
	s.notify(m.path, m.render(it))
	return it.id
}

// SetSessionAddress assigns an IP to the session id (as PPP does a moment
// after the session appears with 0.0.0.0) and notifies listeners.
func (s *Server) SetSessionAddress(id, address string) error {
	return s.Set(PPPActive, id, "address="+address)
}

// RemoveSession ends the session with .id (or, failing that, with name)
// idOrName and reports whether there was one.
func (s *Server) RemoveSession(idOrName string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.menus[PPPActive]
	if s.removeLocked(m, idOrName) {
		return true
	}
	for _, it := range m.items {
		if name, _ := it.get("name"); name == idOrName {
			return s.removeLocked(m, it.id)
		}
	}
	return false
}

// Sessions returns the fake's /ppp/active table.
func (s *Server) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.menus[PPPActive]
	out := make([]Session, 0, len(m.items))
	for _, it := range m.items {
		ss := Session{ID: it.id}
		for _, f := range m.render(it) {
			switch f.k {
			case "name":
				ss.Name = f.v
			case "service":
				ss.Service = f.v
			case "caller-id":
				ss.CallerID = f.v
			case "address":
				ss.Address = f.v
			case "uptime":
				ss.Uptime = f.v
			case "encoding":
				ss.Encoding = f.v
			case "session-id":
				ss.SessionID = f.v
			case "radius":
				ss.Radius = f.v == "true"
			}
		}
		out = append(out, ss)
	}
	return out
}

type logEntry struct {
	id      string
	time    time.Time
	topics  string
	message string
}

func (e logEntry) fields() []field {
	return []field{{".id", e.id}, {"time", e.time.Format("15:04:05")}, {"topics", e.topics}, {"message", e.message}}
}

// AppendLog adds a line to the router's log (topics comma-separated, e.g.
// "pppoe,ppp,error") and sends it to /log listeners.
func (s *Server) AppendLog(topics, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logSeq++
	e := logEntry{id: fmt.Sprintf("*%X", s.logSeq), time: time.Now(), topics: topics, message: message}
	s.logs = append(s.logs, e)
	if len(s.logs) > s.opts.MaxLog {
		s.logs = append(s.logs[:0], s.logs[len(s.logs)-s.opts.MaxLog:]...)
	}
	s.notify(LogMenu, e.fields())
}

// logPrint answers /log/print (with =follow= or =follow-only=) and
// /log/listen.
func (c *conn) logPrint(rq request, attrs map[string]string) {
	_, follow := attrs["follow"]
	_, followOnly := attrs["follow-only"]
	s := c.s
	s.mu.Lock()
	var rows [][]string
	if !followOnly {
		for _, e := range s.logs {
			fs := e.fields()
			if matches(fs, rq.queries) {
				rows = append(rows, proplist(rq, fs))
			}
		}
	}
	if follow || followOnly {
		for _, r := range rows {
			c.reply(rq, r...)
		}
		c.subscribe(rq, LogMenu)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	for _, r := range rows {
		c.reply(rq, r...)
	}
	c.replyDone(rq)
}
