package webui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/probe"
	"authwatch/watcher/routeros"
	"authwatch/watcher/watch"
)

// maxBody caps JSON request bodies: a watch request is a few dozen bytes.
const maxBody = 16 << 10

// readJSON decodes a small JSON body into v, refusing unknown fields so a
// misspelt key is an error instead of being silently ignored.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad JSON body: %w", err)
	}
	return nil
}

func (s *Server) needWatches(w http.ResponseWriter) bool {
	if s.watches == nil {
		writeError(w, http.StatusServiceUnavailable, "reboot watches are not enabled on this server")
		return false
	}
	return true
}

// handleWatchStart is POST /api/watches {login, ticket?, agent?, timeout?}.
func (s *Server) handleWatchStart(w http.ResponseWriter, r *http.Request) {
	if !s.needWatches(w) {
		return
	}
	var req watch.StartRequest
	if err := readJSON(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	req.Login = strings.TrimSpace(req.Login)
	v, err := s.watches.Start(r.Context(), req)
	switch {
	case errors.Is(err, watch.ErrNoLogin), errors.Is(err, watch.ErrBadTimeout), err != nil && strings.HasPrefix(err.Error(), "watch: "):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case err != nil:
		s.log.Error("watch: start failed", "login", req.Login, "err", err)
		writeError(w, http.StatusServiceUnavailable, "cannot store the watch now; try again")
		return
	}
	w.Header().Set("Location", "/api/watches/"+v.ID)
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) watchOr404(w http.ResponseWriter, r *http.Request, get func(context.Context, string) (watch.View, error)) (watch.View, bool) {
	if !s.needWatches(w) {
		return watch.View{}, false
	}
	id := r.PathValue("id")
	v, err := get(r.Context(), id)
	switch {
	case errors.Is(err, watcher.ErrNotFound):
		writeError(w, http.StatusNotFound, "no watch "+truncate(id, 64))
		return v, false
	case err != nil:
		s.log.Error("watch: read failed", "watch", id, "err", err)
		writeError(w, http.StatusServiceUnavailable, "store unavailable")
		return v, false
	}
	return v, true
}

// handleWatchGet is GET /api/watches/{id}.
func (s *Server) handleWatchGet(w http.ResponseWriter, r *http.Request) {
	if v, ok := s.watchOr404(w, r, s.watches.Get); ok {
		writeJSON(w, http.StatusOK, v)
	}
}

// handleWatchCancel is DELETE /api/watches/{id}: ends a running watch.
func (s *Server) handleWatchCancel(w http.ResponseWriter, r *http.Request) {
	if v, ok := s.watchOr404(w, r, s.watches.Cancel); ok {
		writeJSON(w, http.StatusOK, v)
	}
}

// handleWatchSummary is GET /api/watches/{id}/summary?lang=pt-BR|en&tz=…:
// the plain text an agent pastes into the ticket.
func (s *Server) handleWatchSummary(w http.ResponseWriter, r *http.Request) {
	loc := time.Local
	if tz := r.URL.Query().Get("tz"); tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			writeError(w, http.StatusBadRequest, "tz: unknown time zone "+truncate(tz, 64))
			return
		}
		loc = l
	}
	v, ok := s.watchOr404(w, r, s.watches.Get)
	if !ok {
		return
	}
	text := v.Summary(watch.ParseLang(r.URL.Query().Get("lang")), loc, time.Now(), s.actionsDuring(r.Context(), v.Watch)...)
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write([]byte(text))
}

// handleProbe is POST /api/customers/{login}/probe: test the CPE's page now.
func (s *Server) handleProbe(w http.ResponseWriter, r *http.Request) {
	login, err := pathLogin(r, false)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !s.needWatches(w) {
		return
	}
	ev, err := s.watches.ProbeNow(r.Context(), login)
	switch {
	case errors.Is(err, watch.ErrNoSession):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, probe.ErrNotAllowed):
		writeError(w, http.StatusForbidden, "the session's address is outside [probe] allow")
	case errors.Is(err, probe.ErrRateLimited):
		writeError(w, http.StatusTooManyRequests, "probed moments ago; try again in a few seconds")
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		writeJSON(w, http.StatusOK, ev)
	}
}

// handleRouters is GET /api/routers: each RouterOS router's connection
// (connected since, last error, counters).
func (s *Server) handleRouters(w http.ResponseWriter, r *http.Request) {
	routers := []routeros.Status{}
	if s.routers != nil {
		routers = append(routers, s.routers()...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"routers": routers})
}

// handleWatchList is GET /api/watches: the watches running now, oldest
// first, for the supervisor's view.
func (s *Server) handleWatchList(w http.ResponseWriter, r *http.Request) {
	watches := []watch.View{}
	if s.watches != nil {
		watches = append(watches, s.watches.Running()...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"watches": watches})
}

// handleOutages is GET /api/outages: the mass-outage notices in force, newest
// first. The websocket announces a notice once, when it is raised; a page
// opened later learns of it here.
func (s *Server) handleOutages(w http.ResponseWriter, r *http.Request) {
	outages := []watch.Outage{}
	if s.watches != nil {
		outages = append(outages, s.watches.Outages(time.Now())...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"outages": outages})
}

// actionsDuring returns what agents did to the watched login while the
// watch ran and in the half hour after it ended (an agent usually ends a
// stale session once the verdict says so), for the ticket summary.
func (s *Server) actionsDuring(ctx context.Context, w *watch.Watch) []watcher.Event {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	evs, err := s.store.Events(ctx, watcher.Query{Login: w.Login, Newest: true, Limit: 500})
	if err != nil {
		return nil // the summary is still worth having without them
	}
	until := time.Now()
	if !w.Ended.IsZero() {
		until = w.Ended.Add(30 * time.Minute)
	}
	var out []watcher.Event
	for _, ev := range evs {
		if ev.Kind == watcher.Action && !ev.At.Before(w.Started) && !ev.At.After(until) {
			out = append(out, ev)
		}
	}
	return out
}
