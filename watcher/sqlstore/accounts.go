package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"authwatch/webui/auth"
)

// The store keeps authwatch's accounts, web sessions, API tokens and audit
// log for package auth, in the tables of migration 00004.
var _ auth.Store = (*Store)(nil)

const userColumns = "id, name, role, password_hash, disabled, created, password_changed"

type userRow struct {
	ID              int64  `db:"id"`
	Name            string `db:"name"`
	Role            string `db:"role"`
	PasswordHash    []byte `db:"password_hash"`
	Disabled        bool   `db:"disabled"`
	Created         int64  `db:"created"`
	PasswordChanged int64  `db:"password_changed"`
}

func (r userRow) user() auth.User {
	return auth.User{
		ID: r.ID, Name: r.Name, Role: auth.Role(r.Role), PasswordHash: r.PasswordHash, Disabled: r.Disabled,
		Created: micros(r.Created), PasswordChanged: micros(r.PasswordChanged),
	}
}

// micros turns a stored unix-microseconds time back into a time; 0 is the
// zero time ("never").
func micros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func toMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// exec runs one write statement under the writer lock.
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.ExecContext(ctx, s.w.Rebind(q), args...)
}

// insertID runs an INSERT … RETURNING id under the writer lock (both SQLite
// and PostgreSQL have RETURNING; pgx has no LastInsertId).
func (s *Store) insertID(ctx context.Context, q string, args ...any) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var id int64
	err := s.w.QueryRowxContext(ctx, s.w.Rebind(q+" RETURNING id"), args...).Scan(&id)
	return id, err
}

// CreateUser inserts u and returns it with its ID; auth.ErrExists when the
// name is taken.
func (s *Store) CreateUser(ctx context.Context, u auth.User) (auth.User, error) {
	id, err := s.insertID(ctx, "INSERT INTO users (name, role, password_hash, disabled, created, password_changed) VALUES (?, ?, ?, ?, ?, ?)",
		u.Name, string(u.Role), u.PasswordHash, u.Disabled, toMicros(u.Created), toMicros(u.PasswordChanged))
	if uniqueViolation(err) {
		return auth.User{}, auth.ErrExists
	}
	if err != nil {
		return auth.User{}, fmt.Errorf("sqlstore: create user %q: %w", u.Name, err)
	}
	u.ID = id
	return u, nil
}

func (s *Store) getUser(ctx context.Context, what string, q string, arg any) (auth.User, error) {
	var r userRow
	err := s.r.GetContext(ctx, &r, s.r.Rebind("SELECT "+userColumns+" FROM users WHERE "+q), arg)
	if errors.Is(err, sql.ErrNoRows) {
		return auth.User{}, auth.ErrNotFound
	}
	if err != nil {
		return auth.User{}, fmt.Errorf("sqlstore: user %s: %w", what, err)
	}
	return r.user(), nil
}

// UserByName returns the account named name, or auth.ErrNotFound.
func (s *Store) UserByName(ctx context.Context, name string) (auth.User, error) {
	return s.getUser(ctx, fmt.Sprintf("%q", name), "name = ?", name)
}

// UserByID returns the account id, or auth.ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id int64) (auth.User, error) {
	return s.getUser(ctx, fmt.Sprint(id), "id = ?", id)
}

// Users returns every account, by name.
func (s *Store) Users(ctx context.Context) ([]auth.User, error) {
	var rows []userRow
	if err := s.r.SelectContext(ctx, &rows, "SELECT "+userColumns+" FROM users ORDER BY name"); err != nil {
		return nil, fmt.Errorf("sqlstore: users: %w", err)
	}
	out := make([]auth.User, len(rows))
	for i, r := range rows {
		out[i] = r.user()
	}
	return out, nil
}

// UpdateUser saves u's role, password hash, disabled flag and password time.
func (s *Store) UpdateUser(ctx context.Context, u auth.User) error {
	res, err := s.exec(ctx, "UPDATE users SET role = ?, password_hash = ?, disabled = ?, password_changed = ? WHERE id = ?",
		string(u.Role), u.PasswordHash, u.Disabled, toMicros(u.PasswordChanged), u.ID)
	if err != nil {
		return fmt.Errorf("sqlstore: update user %q: %w", u.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return auth.ErrNotFound
	}
	return nil
}

type sessionRow struct {
	Hash     []byte `db:"hash"`
	UserID   int64  `db:"user_id"`
	CSRF     string `db:"csrf"`
	Created  int64  `db:"created"`
	LastSeen int64  `db:"last_seen"`
	Remote   string `db:"remote"`
}

// CreateSession stores a web session.
func (s *Store) CreateSession(ctx context.Context, ss auth.Session) error {
	_, err := s.exec(ctx, "INSERT INTO sessions (hash, user_id, csrf, created, last_seen, remote) VALUES (?, ?, ?, ?, ?, ?)",
		ss.Hash, ss.UserID, ss.CSRF, toMicros(ss.Created), toMicros(ss.LastSeen), ss.Remote)
	if err != nil {
		return fmt.Errorf("sqlstore: create session: %w", err)
	}
	return nil
}

// SessionByHash returns a session, or auth.ErrNotFound.
func (s *Store) SessionByHash(ctx context.Context, hash []byte) (auth.Session, error) {
	var r sessionRow
	err := s.r.GetContext(ctx, &r, s.r.Rebind("SELECT hash, user_id, csrf, created, last_seen, remote FROM sessions WHERE hash = ?"), hash)
	if errors.Is(err, sql.ErrNoRows) {
		return auth.Session{}, auth.ErrNotFound
	}
	if err != nil {
		return auth.Session{}, fmt.Errorf("sqlstore: session: %w", err)
	}
	return auth.Session{Hash: r.Hash, UserID: r.UserID, CSRF: r.CSRF, Created: micros(r.Created), LastSeen: micros(r.LastSeen), Remote: r.Remote}, nil
}

// TouchSession notes a session as used at at.
func (s *Store) TouchSession(ctx context.Context, hash []byte, at time.Time) error {
	if _, err := s.exec(ctx, "UPDATE sessions SET last_seen = ? WHERE hash = ? AND last_seen < ?", at.UnixMicro(), hash, at.UnixMicro()); err != nil {
		return fmt.Errorf("sqlstore: touch session: %w", err)
	}
	return nil
}

// DeleteSession ends one session.
func (s *Store) DeleteSession(ctx context.Context, hash []byte) error {
	if _, err := s.exec(ctx, "DELETE FROM sessions WHERE hash = ?", hash); err != nil {
		return fmt.Errorf("sqlstore: delete session: %w", err)
	}
	return nil
}

// DeleteUserSessions ends every session of a user.
func (s *Store) DeleteUserSessions(ctx context.Context, userID int64) error {
	if _, err := s.exec(ctx, "DELETE FROM sessions WHERE user_id = ?", userID); err != nil {
		return fmt.Errorf("sqlstore: delete sessions of user %d: %w", userID, err)
	}
	return nil
}

// DeleteAudit deletes audit entries older than before, in small
// transactions.
func (s *Store) DeleteAudit(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.deleteOlder(ctx, "SELECT id FROM audit WHERE at < ? ORDER BY at LIMIT ?", "DELETE FROM audit WHERE id IN", before)
	if err != nil {
		return n, fmt.Errorf("sqlstore: delete old audit entries: %w", err)
	}
	return n, nil
}

// DeleteSessions deletes the sessions last seen before idle or created
// before created.
func (s *Store) DeleteSessions(ctx context.Context, idle, created time.Time) (int64, error) {
	res, err := s.exec(ctx, "DELETE FROM sessions WHERE last_seen < ? OR created < ?", idle.UnixMicro(), created.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete expired sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

type tokenRow struct {
	ID       int64  `db:"id"`
	Hash     []byte `db:"hash"`
	UserID   int64  `db:"user_id"`
	User     string `db:"username"`
	Name     string `db:"name"`
	Created  int64  `db:"created"`
	LastUsed int64  `db:"last_used"`
	Revoked  int64  `db:"revoked"`
}

func (r tokenRow) token() auth.Token {
	return auth.Token{ID: r.ID, Hash: r.Hash, UserID: r.UserID, User: r.User, Name: r.Name,
		Created: micros(r.Created), LastUsed: micros(r.LastUsed), Revoked: micros(r.Revoked)}
}

const tokenSelect = `SELECT t.id, t.hash, t.user_id, COALESCE(u.name, '') AS username, t.name, t.created, t.last_used, t.revoked
	FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id`

// CreateToken stores an API token and returns it with its ID.
func (s *Store) CreateToken(ctx context.Context, t auth.Token) (auth.Token, error) {
	id, err := s.insertID(ctx, "INSERT INTO api_tokens (hash, user_id, name, created) VALUES (?, ?, ?, ?)",
		t.Hash, t.UserID, t.Name, toMicros(t.Created))
	if err != nil {
		return auth.Token{}, fmt.Errorf("sqlstore: create token: %w", err)
	}
	t.ID = id
	return t, nil
}

// TokenByHash returns a token (revoked ones too), or auth.ErrNotFound.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (auth.Token, error) {
	var r tokenRow
	err := s.r.GetContext(ctx, &r, s.r.Rebind(tokenSelect+" WHERE t.hash = ?"), hash)
	if errors.Is(err, sql.ErrNoRows) {
		return auth.Token{}, auth.ErrNotFound
	}
	if err != nil {
		return auth.Token{}, fmt.Errorf("sqlstore: token: %w", err)
	}
	return r.token(), nil
}

// Tokens lists the tokens of userID (0: everyone's), newest first.
func (s *Store) Tokens(ctx context.Context, userID int64) ([]auth.Token, error) {
	q, args := tokenSelect, []any{}
	if userID != 0 {
		q, args = q+" WHERE t.user_id = ?", append(args, userID)
	}
	var rows []tokenRow
	if err := s.r.SelectContext(ctx, &rows, s.r.Rebind(q+" ORDER BY t.id DESC"), args...); err != nil {
		return nil, fmt.Errorf("sqlstore: tokens: %w", err)
	}
	out := make([]auth.Token, len(rows))
	for i, r := range rows {
		out[i] = r.token()
	}
	return out, nil
}

// RevokeToken revokes a token (revoking it again keeps the first time);
// auth.ErrNotFound when there is no such token.
func (s *Store) RevokeToken(ctx context.Context, id int64, at time.Time) error {
	res, err := s.exec(ctx, "UPDATE api_tokens SET revoked = CASE WHEN revoked = 0 THEN ? ELSE revoked END WHERE id = ?", at.UnixMicro(), id)
	if err != nil {
		return fmt.Errorf("sqlstore: revoke token %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return auth.ErrNotFound
	}
	return nil
}

// TouchToken notes a token as used at at.
func (s *Store) TouchToken(ctx context.Context, id int64, at time.Time) error {
	if _, err := s.exec(ctx, "UPDATE api_tokens SET last_used = ? WHERE id = ?", at.UnixMicro(), id); err != nil {
		return fmt.Errorf("sqlstore: touch token %d: %w", id, err)
	}
	return nil
}

type auditRow struct {
	ID     int64  `db:"id"`
	At     int64  `db:"at"`
	User   string `db:"username"`
	Method string `db:"method"`
	Action string `db:"action"`
	Login  string `db:"login"`
	Query  string `db:"query"`
	Remote string `db:"remote"`
}

// AppendAudit stores one audit entry.
func (s *Store) AppendAudit(ctx context.Context, e auth.AuditEntry) error {
	_, err := s.exec(ctx, "INSERT INTO audit (at, username, method, action, login, query, remote) VALUES (?, ?, ?, ?, ?, ?, ?)",
		e.At.UnixMicro(), e.User, string(e.Method), e.Action, e.Login, e.Query, e.Remote)
	if err != nil {
		return fmt.Errorf("sqlstore: audit: %w", err)
	}
	return nil
}

// Audit returns audit entries selected by q, newest first.
func (s *Store) Audit(ctx context.Context, q auth.AuditQuery) ([]auth.AuditEntry, error) {
	var (
		where []string
		args  []any
	)
	if q.Login != "" {
		where, args = append(where, "(login = ? OR query = ?)"), append(args, q.Login, q.Login)
	}
	if q.User != "" {
		where, args = append(where, "username = ?"), append(args, q.User)
	}
	if q.Before > 0 {
		where, args = append(where, "id < ?"), append(args, q.Before)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = auth.DefaultAuditLimit
	}
	query := "SELECT id, at, username, method, action, login, query, remote FROM audit"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY id DESC LIMIT ?"
	var rows []auditRow
	if err := s.r.SelectContext(ctx, &rows, s.r.Rebind(query), append(args, limit)...); err != nil {
		return nil, fmt.Errorf("sqlstore: audit: %w", err)
	}
	out := make([]auth.AuditEntry, len(rows))
	for i, r := range rows {
		out[i] = auth.AuditEntry{ID: r.ID, At: micros(r.At), User: r.User, Method: auth.Method(r.Method), Action: r.Action,
			Login: r.Login, Query: r.Query, Remote: r.Remote}
	}
	return out, nil
}
