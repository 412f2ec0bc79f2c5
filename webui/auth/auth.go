package auth

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Role is what an account may do.
type Role string

// The roles.
const (
	// RoleAgent reads customers, their events and runs reboot watches.
	RoleAgent Role = "agent"
	// RoleAdmin also sees NAS/router health, manages accounts and reads the
	// audit log.
	RoleAdmin Role = "admin"
)

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleAgent, RoleAdmin:
		return r, nil
	}
	return "", badInput("role %q: must be agent or admin", s)
}

// Method says how a request proved who it is.
type Method string

// The methods, as GET /api/me reports them in "auth".
const (
	MethodSession Method = "session" // the authwatch_session cookie
	MethodToken   Method = "token"   // Authorization: Bearer
	MethodProxy   Method = "proxy"   // the trusted reverse proxy's header
	MethodDesk    Method = "desk"    // no accounts: [http] auth = false on loopback
)

// DeskUser is the name desk mode acts under, in the audit log and /api/me.
const DeskUser = "desk"

// Errors of the Service and the Store.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrBadCredentials is a wrong user name or password, deliberately
	// without saying which.
	ErrBadCredentials = errors.New("wrong user name or password")
	// ErrDisabled is a disabled account that gave the right password.
	ErrDisabled = errors.New("account disabled; ask an admin")
	// ErrNoCredentials is a request that carries none.
	ErrNoCredentials = errors.New("login required")
	// ErrExpired is a session past its idle or absolute expiry.
	ErrExpired = errors.New("session expired; log in again")
	// ErrInvalid is a session id or token that is unknown, revoked, or of a
	// disabled or unknown account.
	ErrInvalid = errors.New("invalid or revoked credentials")
)

// inputError is a refused name, role or password: the caller's mistake.
type inputError struct{ error }

func badInput(format string, args ...any) error { return inputError{fmt.Errorf(format, args...)} }

// IsBadInput reports whether err is a refused name, role or password (a
// 400, not a failure of the server).
func IsBadInput(err error) bool {
	var e inputError
	return errors.As(err, &e)
}

// RateLimitError is a login refused because of too many failures.
type RateLimitError struct {
	Scope      string // "user" or "address"
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	what := "this user"
	if e.Scope == "address" {
		what = "this address"
	}
	minutes := int((e.RetryAfter + time.Minute - 1) / time.Minute)
	unit := "minutes"
	if minutes == 1 {
		unit = "minute"
	}
	return fmt.Sprintf("too many failed logins for %s; try again in %d %s", what, minutes, unit)
}

// User is an account. PasswordHash never leaves the package's callers in
// API output: it has no JSON name.
type User struct {
	ID              int64     `json:"id"`
	Name            string    `json:"name"`
	Role            Role      `json:"role"`
	PasswordHash    []byte    `json:"-"`
	Disabled        bool      `json:"disabled"`
	Created         time.Time `json:"created"`
	PasswordChanged time.Time `json:"password_changed"`
}

// Session is a stored web session. Hash is the SHA-256 of the cookie value,
// which is never stored.
type Session struct {
	Hash     []byte
	UserID   int64
	CSRF     string
	Created  time.Time
	LastSeen time.Time
	Remote   string
}

// Token is a stored API token. Hash is the SHA-256 of the token, which is
// shown once at creation and never stored.
type Token struct {
	ID       int64     `json:"id"`
	Hash     []byte    `json:"-"`
	UserID   int64     `json:"-"`
	User     string    `json:"user"` // filled by Tokens
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used,omitzero"`
	Revoked  time.Time `json:"revoked,omitzero"`
}

// AuditEntry is one access to customers' data.
type AuditEntry struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	User   string    `json:"user"`
	Method Method    `json:"auth"`
	Action string    `json:"action"`          // "customer", "events", "lookup", "watch"…
	Login  string    `json:"login,omitempty"` // the customer, "*" for every one
	Query  string    `json:"query,omitempty"` // what was searched, a watch id…
	Remote string    `json:"remote"`          // the client's address
}

// AuditQuery selects audit entries, newest first.
type AuditQuery struct {
	Login  string // entries about this login, or whose query was exactly it
	User   string
	Before int64 // id; 0 for the newest
	Limit  int
}

// Store keeps accounts, sessions, tokens and the audit log.
// watcher/sqlstore implements it. Names are stored as given (the Service
// lower-cases them).
type Store interface {
	CreateUser(ctx context.Context, u User) (User, error) // ErrExists
	UserByName(ctx context.Context, name string) (User, error)
	UserByID(ctx context.Context, id int64) (User, error)
	Users(ctx context.Context) ([]User, error)
	// UpdateUser saves Role, PasswordHash, Disabled and PasswordChanged.
	UpdateUser(ctx context.Context, u User) error

	CreateSession(ctx context.Context, s Session) error
	SessionByHash(ctx context.Context, hash []byte) (Session, error)
	TouchSession(ctx context.Context, hash []byte, at time.Time) error
	DeleteSession(ctx context.Context, hash []byte) error
	DeleteUserSessions(ctx context.Context, userID int64) error
	// DeleteSessions deletes sessions last seen before idle or created
	// before created, and returns how many.
	DeleteSessions(ctx context.Context, idle, created time.Time) (int64, error)

	CreateToken(ctx context.Context, t Token) (Token, error) // sets ID
	TokenByHash(ctx context.Context, hash []byte) (Token, error)
	// Tokens lists the tokens of userID (0: every user), newest first.
	Tokens(ctx context.Context, userID int64) ([]Token, error)
	RevokeToken(ctx context.Context, id int64, at time.Time) error // ErrNotFound
	TouchToken(ctx context.Context, id int64, at time.Time) error

	AppendAudit(ctx context.Context, e AuditEntry) error
	Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
	// DeleteAudit deletes audit entries older than before and returns how
	// many.
	DeleteAudit(ctx context.Context, before time.Time) (int64, error)
}

// Identity is who a request acts as.
type Identity struct {
	User   string
	UserID int64 // 0 in desk mode
	Role   Role
	Method Method
	// CSRF is the session's token (MethodSession only).
	CSRF string

	hash  []byte // of the session id (MethodSession) or token (MethodToken)
	token int64  // id, MethodToken
}

// IsAdmin reports whether the identity has the admin role.
func (id Identity) IsAdmin() bool { return id.Role == RoleAdmin }

// Desk is the identity of every request in desk mode: a local admin.
func Desk() Identity { return Identity{User: DeskUser, Role: RoleAdmin, Method: MethodDesk} }

type ctxKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity the request was authenticated as.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}
