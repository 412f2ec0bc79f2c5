package webui

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"authwatch/watcher"
)

// checkTimeout bounds each health check; a store that takes longer to answer
// a ping is failing as far as an agent is concerned.
const checkTimeout = 2 * time.Second

// Check is one component reported by /healthz.
type Check struct {
	Name string
	// Run reports the component's status. It must return when ctx ends.
	Run func(ctx context.Context) Status
}

// Status is what a Check reports.
type Status struct {
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	Detail any    `json:"detail,omitempty"` // counters and the like, as JSON
}

// RecorderCheck reports the recorder: failing while its last commit failed
// (RADIUS acks are then held back), with its counters as detail.
func RecorderCheck(r *watcher.Recorder) Check {
	return Check{Name: "recorder", Run: func(context.Context) Status {
		st := r.Stats()
		s := Status{OK: !st.Failing, Detail: st}
		if st.Failing {
			s.Error = st.LastError
		}
		return s
	}}
}

// InfoCheck reports counters that never fail /healthz on their own, such as
// a listener's packet and drop counts.
func InfoCheck(name string, detail func() any) Check {
	return Check{Name: name, Run: func(context.Context) Status {
		return Status{OK: true, Detail: detail()}
	}}
}

// healthReport is the JSON of GET /healthz.
type healthReport struct {
	Status     string            `json:"status"` // "ok" or "failing"
	Checks     map[string]Status `json:"checks"`
	State      watcher.Stats     `json:"state"`
	Hub        watcher.HubStats  `json:"hub"`
	Websockets int               `json:"websockets"`
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	checks := append([]Check{{Name: "store", Run: s.pingStore}}, s.checks...)
	results := make([]Status, len(checks))
	// Concurrently, so that /healthz answers within one checkTimeout.
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
			defer cancel()
			defer func() {
				if v := recover(); v != nil {
					s.log.Error("healthz: check panicked", "check", c.Name, "panic", v)
					results[i] = Status{Error: fmt.Sprintf("check panicked: %v", v)}
				}
			}()
			results[i] = c.Run(ctx)
		})
	}
	wg.Wait()

	rep := healthReport{Status: "ok", Checks: make(map[string]Status, len(checks)), State: s.state.Stats(), Hub: s.hub.Stats()}
	for i, c := range checks {
		rep.Checks[c.Name] = results[i]
		if !results[i].OK {
			rep.Status = "failing"
		}
	}
	s.mu.Lock()
	rep.Websockets = len(s.conns)
	s.mu.Unlock()
	status := http.StatusOK
	if rep.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	// Monitoring needs only the status; the errors and counters (addresses,
	// router names) are for admins.
	if id, ok := s.viewer(r); !ok || !id.IsAdmin() {
		writeJSON(w, status, rep.public())
		return
	}
	writeJSON(w, status, rep)
}

func (s *Server) pingStore(ctx context.Context) Status {
	start := time.Now()
	if err := s.store.Ping(ctx); err != nil {
		return Status{Error: err.Error()}
	}
	return Status{OK: true, Detail: map[string]float64{"ping_ms": float64(time.Since(start).Microseconds()) / 1000}}
}
