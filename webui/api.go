package webui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"authwatch/watcher"
)

// Limits of the API's queries.
const (
	defaultEventLimit  = 100
	maxEventLimit      = 1000
	defaultLookupLimit = 20
	maxLookupLimit     = 100
	maxLoginLen        = 253 // as watcher.Event refuses longer logins
	storeTimeout       = 5 * time.Second
)

// customerView is the JSON of GET /api/customers/{login} and of the state in
// single-login websocket messages. A login never seen is not an error (the
// agent may be waiting for its first event): it answers 200 with the empty
// state and known=false.
type customerView struct {
	watcher.Customer
	Known bool `json:"known"`
}

func (s *Server) customer(login string) customerView {
	c, known := s.state.Customer(login)
	// Always lists on the wire, known login or not.
	if c.Sessions == nil {
		c.Sessions = []watcher.Session{}
	}
	if c.IPv6 == nil {
		c.IPv6 = []string{}
	}
	return customerView{Customer: c, Known: known}
}

func (s *Server) handleCustomer(w http.ResponseWriter, r *http.Request) {
	login, err := pathLogin(r, false)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.customer(login))
}

// eventsPage is the JSON of GET /api/customers/{login}/events.
type eventsPage struct {
	Events []watcher.Event `json:"events"`
	// Next is the since that asks for what follows these events.
	Next int64 `json:"next"`
	// More says the limit cut the answer: with since, more events follow
	// Next; without, older events precede the first one (ask with before=).
	More bool `json:"more"`
}

// handleEvents answers the stored events of a login ("*" for every login),
// oldest first: with since, the oldest limit after it; without, the newest
// limit (before before, when given).
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	login, err := pathLogin(r, true)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	since, hasSince, err := seqParam(r, "since")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	before, hasBefore, err := seqParam(r, "before")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if hasBefore && before == 0 {
		writeError(w, http.StatusBadRequest, "before: must be a seq above 0")
		return
	}
	limit, err := limitParam(r, defaultEventLimit, maxEventLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// One more than asked tells whether there is more.
	q := watcher.Query{Login: login, After: since, Before: before, Limit: limit + 1, Newest: !hasSince}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	evs, err := s.store.Events(ctx, q)
	if err != nil {
		s.storeError(w, r, fmt.Errorf("events of %q: %w", login, err))
		return
	}
	page := eventsPage{Events: evs, Next: since}
	if len(evs) > limit {
		page.More = true
		if hasSince {
			page.Events = evs[:limit]
		} else {
			page.Events = evs[1:]
		}
	}
	if n := len(page.Events); n > 0 {
		page.Next = page.Events[n-1].Seq
	}
	if page.Events == nil {
		page.Events = []watcher.Event{}
	}
	writeJSON(w, http.StatusOK, page)
}

// lookupResult is one login found by GET /api/lookup.
type lookupResult struct {
	Login    string    `json:"login"`
	Online   bool      `json:"online"`
	Known    bool      `json:"known"` // the in-memory state has it (false after it was pruned)
	Match    string    `json:"match"` // "login" (prefix), "mac" or "ip"
	LastSeen time.Time `json:"last_seen,omitzero"`
}

type lookupAnswer struct {
	Query struct {
		Kind  string `json:"kind"`
		Value string `json:"value"` // as searched: MACs normalised, IPs canonical
	} `json:"query"`
	Results []lookupResult `json:"results"`
}

func (s *Server) handleLookup(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	switch {
	case q == "":
		writeError(w, http.StatusBadRequest, "q: required: a login (or its beginning), a MAC or an IP")
		return
	case len(q) > maxLoginLen || !utf8.ValidString(q):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("q: must be valid UTF-8 of at most %d bytes", maxLoginLen))
		return
	}
	limit, err := limitParam(r, defaultLookupLimit, maxLookupLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var ans lookupAnswer
	ans.Query.Kind, ans.Query.Value = watcher.LookupKind(q)
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	// Who holds an address or a MAC now comes from the state (IPv6
	// addresses fall inside delegated prefixes, and a session whose start
	// came before authwatch is known only by its interim updates, which the
	// store's MAC and IP indexes leave out); who held it before, from the
	// store's history.
	var logins []string
	switch ans.Query.Kind {
	case "ip", "prefix":
		pre, err := netip.ParsePrefix(ans.Query.Value)
		if err != nil {
			a := netip.MustParseAddr(ans.Query.Value)
			pre = netip.PrefixFrom(a, a.BitLen())
		}
		logins = s.state.FindAddress(pre)
	case "mac":
		logins = s.state.FindMAC(ans.Query.Value)
	}
	if ans.Query.Kind != "prefix" {
		found, err := s.store.FindLogins(ctx, watcher.Find{Field: ans.Query.Kind, Value: ans.Query.Value, Limit: limit})
		if err != nil {
			s.storeError(w, r, fmt.Errorf("lookup %s %q: %w", ans.Query.Kind, ans.Query.Value, err))
			return
		}
		for _, l := range found {
			if !slices.Contains(logins, l) {
				logins = append(logins, l)
			}
		}
	}
	if len(logins) > limit {
		logins = logins[:limit]
	}
	ans.Results = make([]lookupResult, 0, len(logins))
	for _, login := range logins {
		c, known := s.state.Customer(login)
		ans.Results = append(ans.Results, lookupResult{Login: login, Online: c.Online, Known: known, Match: ans.Query.Kind, LastSeen: c.LastSeen})
	}
	writeJSON(w, http.StatusOK, ans)
}

// handleAPINotFound answers what no API route matched, in JSON: 405 when
// the path exists for GET, 404 otherwise.
func (s *Server) handleAPINotFound(w http.ResponseWriter, r *http.Request) {
	// A path that some other method serves is a 405 naming those methods.
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		other := r.Clone(r.Context())
		other.Method = m
		if _, pattern := s.mux.Handler(other); pattern != apiCatchAll && pattern != "" {
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s not allowed on %s", r.Method, r.URL.Path))
		return
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no such API route: %s %s", r.Method, r.URL.Path))
}

// storeError answers a failed store read. A client that went away is not
// worth an error line.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() == nil {
		s.log.Error("http: store read failed", "path", r.URL.Path, "err", err)
	}
	status := http.StatusServiceUnavailable
	if errors.Is(err, context.DeadlineExceeded) {
		status = http.StatusGatewayTimeout
	}
	writeError(w, status, "store unavailable")
}

// pathLogin returns the {login} path value. "*" (every login) is accepted
// only where firehose says so.
func pathLogin(r *http.Request, firehose bool) (string, error) {
	return checkLogin(r.PathValue("login"), firehose)
}

func checkLogin(login string, firehose bool) (string, error) {
	switch {
	case login == "":
		return "", errors.New("login: required")
	case len(login) > maxLoginLen:
		return "", fmt.Errorf("login: longer than %d bytes", maxLoginLen)
	case !utf8.ValidString(login):
		return "", errors.New("login: not valid UTF-8")
	case login == watcher.Firehose && !firehose:
		return "", errors.New(`login: "*" (every login) is not a customer`)
	}
	return login, nil
}

// seqParam parses a seq query parameter. Absent or empty means "not given".
func seqParam(r *http.Request, name string) (seq int64, ok bool, err error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, false, nil
	}
	seq, err = strconv.ParseInt(v, 10, 64)
	if err != nil || seq < 0 {
		return 0, false, fmt.Errorf("%s: want a seq, a whole number >= 0; got %q", name, truncate(v, 32))
	}
	return seq, true, nil
}

// limitParam parses limit, between 1 and max; absent or empty gives def.
func limitParam(r *http.Request, def, max int) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, fmt.Errorf("limit: want a whole number from 1 to %d; got %q", max, truncate(v, 32))
	}
	return n, nil
}

// truncate shortens what is echoed back from a request.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

// writeJSON encodes v before writing anything, so that an encoding failure
// still gets a proper 500 instead of half a body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal error: encoding the answer"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
