package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"authwatch/watcher/sqlstore"
	"authwatch/webui/auth"
)

func TestAccountsStore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *sqlstore.Store, reopen func() *sqlstore.Store) {
		ctx := context.Background()
		now := t0
		u, err := s.CreateUser(ctx, auth.User{Name: "ana", Role: auth.RoleAgent, PasswordHash: []byte("$2a$04$hash"), Created: now, PasswordChanged: now})
		if err != nil || u.ID == 0 {
			t.Fatalf("create: %+v %v", u, err)
		}
		if _, err := s.CreateUser(ctx, auth.User{Name: "ana", Role: auth.RoleAdmin, PasswordHash: []byte("x"), Created: now, PasswordChanged: now}); !errors.Is(err, auth.ErrExists) {
			t.Fatalf("duplicate name: %v", err)
		}
		if _, err := s.UserByName(ctx, "bob"); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("unknown user: %v", err)
		}
		u.Role, u.Disabled, u.PasswordHash = auth.RoleAdmin, true, []byte("new")
		if err := s.UpdateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		got, err := s.UserByID(ctx, u.ID)
		if err != nil || got.Name != "ana" || got.Role != auth.RoleAdmin || !got.Disabled || string(got.PasswordHash) != "new" || !got.Created.Equal(now) {
			t.Fatalf("read back %+v %v", got, err)
		}

		// Sessions: by hash, touched, expired by either time.
		a := auth.Session{Hash: []byte("hash-a"), UserID: u.ID, CSRF: "c", Created: now, LastSeen: now, Remote: "127.0.0.1"}
		b := auth.Session{Hash: []byte("hash-b"), UserID: u.ID, CSRF: "c", Created: now.Add(-time.Hour), LastSeen: now}
		for _, ss := range []auth.Session{a, b} {
			if err := s.CreateSession(ctx, ss); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.TouchSession(ctx, a.Hash, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, err := s.SessionByHash(ctx, a.Hash); err != nil || !got.LastSeen.Equal(now.Add(time.Minute)) || got.CSRF != "c" {
			t.Fatalf("session %+v %v", got, err)
		}
		if n, err := s.DeleteSessions(ctx, now.Add(-time.Minute), now.Add(-30*time.Minute)); err != nil || n != 1 {
			t.Fatalf("expired sessions deleted: %d %v", n, err)
		}
		if _, err := s.SessionByHash(ctx, b.Hash); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("session past its max: %v", err)
		}
		s.DeleteUserSessions(ctx, u.ID)
		if _, err := s.SessionByHash(ctx, a.Hash); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("session of a user whose sessions were ended: %v", err)
		}

		// Tokens: revoked once, listed with their user.
		tok, err := s.CreateToken(ctx, auth.Token{Hash: []byte("tok"), UserID: u.ID, Name: "ci", Created: now})
		if err != nil || tok.ID == 0 {
			t.Fatal(err)
		}
		if err := s.RevokeToken(ctx, tok.ID, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		s.RevokeToken(ctx, tok.ID, now.Add(2*time.Hour))
		if got, err := s.TokenByHash(ctx, []byte("tok")); err != nil || !got.Revoked.Equal(now.Add(time.Hour)) || got.User != "ana" {
			t.Fatalf("token %+v %v", got, err)
		}
		if err := s.RevokeToken(ctx, 999, now); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("revoke unknown: %v", err)
		}
		if list, err := s.Tokens(ctx, u.ID); err != nil || len(list) != 1 || !bytes.Equal(list[0].Hash, []byte("tok")) {
			t.Fatalf("tokens %+v %v", list, err)
		}

		// Audit: by login (or exact query), by user, newest first, paged.
		for i, e := range []auth.AuditEntry{
			{User: "ana", Action: "lookup", Query: "joao"},
			{User: "ana", Action: "customer", Login: "joao"},
			{User: "bia", Action: "customer", Login: "maria"},
			{User: "bia", Action: "watch", Login: "joao"},
		} {
			e.At, e.Method, e.Remote = now.Add(time.Duration(i)*time.Second), auth.MethodSession, "10.0.0.9"
			if err := s.AppendAudit(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		s = reopen()
		entries, err := s.Audit(ctx, auth.AuditQuery{Login: "joao"})
		if err != nil || len(entries) != 3 || entries[0].Action != "watch" || entries[2].Action != "lookup" || entries[0].Remote != "10.0.0.9" {
			t.Fatalf("audit by login: %+v %v", entries, err)
		}
		entries, _ = s.Audit(ctx, auth.AuditQuery{User: "bia", Limit: 1})
		if len(entries) != 1 || entries[0].Action != "watch" {
			t.Fatalf("audit by user: %+v", entries)
		}
		entries, _ = s.Audit(ctx, auth.AuditQuery{User: "bia", Before: entries[0].ID})
		if len(entries) != 1 || entries[0].Login != "maria" || !entries[0].At.Equal(now.Add(2*time.Second)) {
			t.Fatalf("audit page 2: %+v", entries)
		}

		// Retention: the entries older than the cut go, the others stay.
		if n, err := s.DeleteAudit(ctx, now.Add(1500*time.Millisecond)); err != nil || n != 2 {
			t.Fatalf("delete old audit: %d %v", n, err)
		}
		entries, _ = s.Audit(ctx, auth.AuditQuery{})
		if len(entries) != 2 || entries[1].Login != "maria" {
			t.Fatalf("audit after the retention: %+v", entries)
		}
	})
}
