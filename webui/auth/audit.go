package auth

import (
	"context"
	"net/netip"
	"time"
)

// maxAuditKeys bounds the coalescing memory; past it, old keys are swept.
const maxAuditKeys = 20000

// Limits of Audit queries.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// Record writes an audit entry: id did action on login (or searched query)
// from remote. The same user doing the same action on the same login and
// query again within the coalescing window (a page reload, a reconnecting
// websocket) is not written again. Callers refuse the access when Record
// fails, so that nothing is read unrecorded.
func (s *Service) Record(ctx context.Context, id Identity, action, login, query string, remote netip.Addr) error {
	now := s.now()
	key := id.User + "\x00" + action + "\x00" + login + "\x00" + query
	s.auditMu.Lock()
	last, seen := s.auditLast[key]
	s.auditMu.Unlock()
	if seen && now.Sub(last) < s.coalesce && !now.Before(last) {
		return nil
	}
	e := AuditEntry{At: now.UTC(), User: id.User, Method: id.Method, Action: action, Login: login, Query: query}
	if remote.IsValid() {
		e.Remote = remote.String()
	}
	if err := s.store.AppendAudit(ctx, e); err != nil {
		return err
	}
	s.auditMu.Lock()
	if len(s.auditLast) >= maxAuditKeys {
		s.sweepAuditLocked(now)
	}
	s.auditLast[key] = now
	s.auditMu.Unlock()
	return nil
}

// Audit lists audit entries, newest first.
func (s *Service) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultAuditLimit
	}
	q.Limit = min(q.Limit, MaxAuditLimit)
	return s.store.Audit(ctx, q)
}

func (s *Service) sweepAudit(now time.Time) {
	s.auditMu.Lock()
	s.sweepAuditLocked(now)
	s.auditMu.Unlock()
}

func (s *Service) sweepAuditLocked(now time.Time) {
	for k, t := range s.auditLast {
		if now.Sub(t) >= s.coalesce || len(s.auditLast) >= maxAuditKeys {
			delete(s.auditLast, k)
		}
	}
}
