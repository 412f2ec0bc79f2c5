package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultSessionIdle        = 2 * time.Hour
	DefaultSessionMax         = 12 * time.Hour
	DefaultFailuresPerUser    = 5
	DefaultFailuresPerAddress = 20
	DefaultFailureWindow      = 15 * time.Minute
	// DefaultAuditCoalesce is the window within which repeated views of the
	// same login by the same user (and action) make one audit entry.
	DefaultAuditCoalesce = time.Minute
)

// tokenPrefix marks authwatch API tokens, so that one pasted in the wrong
// place (a ticket, a chat) is recognisable and secret scanners can find it.
const tokenPrefix = "aw_"

// Options configure a Service. Store is required.
type Options struct {
	Store Store

	// SessionIdle ends a web session nobody used for that long; SessionMax
	// ends any session that old.
	SessionIdle time.Duration
	SessionMax  time.Duration

	// ProxyHeader (e.g. "X-Remote-User") names the account of a request
	// that comes from one of TrustedProxies; from any other address the
	// header is ignored. TrustedProxies are also believed about
	// X-Forwarded-For (the client's address, for the rate limit and the
	// audit log) and X-Forwarded-Proto (Secure cookies).
	ProxyHeader    string
	TrustedProxies []netip.Prefix

	// Failed logins allowed per user name and per client address within
	// FailureWindow; past them, logins are refused until the window ends.
	FailuresPerUser    int
	FailuresPerAddress int
	FailureWindow      time.Duration

	// BcryptCost for new password hashes (tests use bcrypt.MinCost).
	BcryptCost int
	// AuditCoalesce: see DefaultAuditCoalesce.
	AuditCoalesce time.Duration
	// AuditRetention is how long audit entries are kept; 0 keeps them
	// forever.
	AuditRetention time.Duration

	// Now is the clock (tests move it); time.Now by default.
	Now    func() time.Time
	Logger *slog.Logger
}

// Service authenticates requests and manages accounts.
type Service struct {
	store       Store
	idle, max   time.Duration
	touchEvery  time.Duration
	proxyHeader string
	proxies     []netip.Prefix
	byUser      *limiter
	byAddr      *limiter
	hash        *hasher
	coalesce    time.Duration
	auditKeep   time.Duration
	now         func() time.Time
	log         *slog.Logger

	auditMu   sync.Mutex
	auditLast map[string]time.Time // coalescing key → when last written
}

// New checks o and returns a Service.
func New(o Options) (*Service, error) {
	if o.Store == nil {
		return nil, errors.New("auth: no Store")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.SessionIdle, DefaultSessionIdle)
	def(&o.SessionMax, DefaultSessionMax)
	def(&o.FailureWindow, DefaultFailureWindow)
	def(&o.AuditCoalesce, DefaultAuditCoalesce)
	if o.FailuresPerUser == 0 {
		o.FailuresPerUser = DefaultFailuresPerUser
	}
	if o.FailuresPerAddress == 0 {
		o.FailuresPerAddress = DefaultFailuresPerAddress
	}
	switch {
	case o.SessionIdle < 0 || o.SessionMax < o.SessionIdle:
		return nil, errors.New("auth: session max must be at least session idle")
	case o.FailuresPerUser < 0 || o.FailuresPerAddress < 0 || o.FailureWindow < 0:
		return nil, errors.New("auth: negative login limits")
	case o.AuditRetention < 0:
		return nil, errors.New("auth: negative audit retention")
	case o.ProxyHeader != "" && len(o.TrustedProxies) == 0:
		return nil, errors.New("auth: a proxy header needs trusted proxies")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	h, err := newHasher(o.BcryptCost, 2)
	if err != nil {
		return nil, err
	}
	return &Service{
		store: o.Store, idle: o.SessionIdle, max: o.SessionMax,
		touchEvery:  min(time.Minute, o.SessionIdle/4),
		proxyHeader: o.ProxyHeader, proxies: o.TrustedProxies,
		byUser:   newLimiter(o.FailuresPerUser, o.FailureWindow),
		byAddr:   newLimiter(o.FailuresPerAddress, o.FailureWindow),
		hash:     h,
		coalesce: o.AuditCoalesce, auditKeep: o.AuditRetention,
		now: o.Now, log: o.Logger,
		auditLast: map[string]time.Time{},
	}, nil
}

// Store returns the Service's store.
func (s *Service) Store() Store { return s.store }

// AddUser creates an account.
func (s *Service) AddUser(ctx context.Context, name string, role Role, password string) (User, error) {
	name, err := NormalizeName(name)
	if err != nil {
		return User{}, err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return User{}, err
	}
	if err := CheckPassword(password); err != nil {
		return User{}, err
	}
	h, err := s.hash.hash(ctx, password)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	now := s.now().UTC().Truncate(time.Microsecond) // as the store keeps it
	u, err := s.store.CreateUser(ctx, User{Name: name, Role: role, PasswordHash: h, Created: now, PasswordChanged: now})
	if errors.Is(err, ErrExists) {
		return User{}, fmt.Errorf("user %q: %w", name, ErrExists)
	}
	if err != nil {
		return User{}, err
	}
	s.log.Info("auth: user added", "user", name, "role", role)
	return u, nil
}

// User returns one account by name.
func (s *Service) User(ctx context.Context, name string) (User, error) {
	n, err := NormalizeName(name)
	if err != nil {
		return User{}, err
	}
	u, err := s.store.UserByName(ctx, n)
	if errors.Is(err, ErrNotFound) {
		return User{}, fmt.Errorf("no user %q: %w", n, ErrNotFound)
	}
	return u, err
}

// Users lists every account.
func (s *Service) Users(ctx context.Context) ([]User, error) { return s.store.Users(ctx) }

// Change is a set of changes to one account; nil fields stay as they are.
type Change struct {
	Role     *Role
	Disabled *bool
	Password *string
}

// Change applies c to the account name, all of it or nothing: every value
// is checked before anything is saved. A new password or a disabling ends
// the account's web sessions (API tokens stay valid: they are separate
// credentials, revoked on their own). A role applies from the next request.
func (s *Service) Change(ctx context.Context, name string, c Change) (User, error) {
	if c.Role != nil {
		if _, err := ParseRole(string(*c.Role)); err != nil {
			return User{}, err
		}
	}
	if c.Password != nil {
		if err := CheckPassword(*c.Password); err != nil {
			return User{}, err
		}
	}
	u, err := s.User(ctx, name)
	if err != nil {
		return User{}, err
	}
	next := u
	if c.Role != nil {
		next.Role = *c.Role
	}
	if c.Disabled != nil {
		next.Disabled = *c.Disabled
	}
	if next.Role != RoleAdmin || next.Disabled {
		if err := s.keepAnAdmin(ctx, u); err != nil {
			return User{}, err
		}
	}
	if c.Password != nil {
		if next.PasswordHash, err = s.hash.hash(ctx, *c.Password); err != nil {
			return User{}, fmt.Errorf("hash password: %w", err)
		}
		next.PasswordChanged = s.now().UTC().Truncate(time.Microsecond)
	}
	if err := s.store.UpdateUser(ctx, next); err != nil {
		return User{}, err
	}
	s.log.Info("auth: user updated", "user", next.Name, "role", next.Role, "disabled", next.Disabled, "password_changed", c.Password != nil)
	if c.Password != nil || (next.Disabled && !u.Disabled) {
		if err := s.store.DeleteUserSessions(ctx, next.ID); err != nil {
			return next, err
		}
	}
	return next, nil
}

// SetPassword changes a user's password and ends their web sessions.
func (s *Service) SetPassword(ctx context.Context, name, password string) error {
	_, err := s.Change(ctx, name, Change{Password: &password})
	return err
}

// SetDisabled disables (ending their sessions; their tokens stop working)
// or enables an account.
func (s *Service) SetDisabled(ctx context.Context, name string, disabled bool) error {
	_, err := s.Change(ctx, name, Change{Disabled: &disabled})
	return err
}

// SetRole changes an account's role; it applies from the next request.
func (s *Service) SetRole(ctx context.Context, name string, role Role) error {
	_, err := s.Change(ctx, name, Change{Role: &role})
	return err
}

// keepAnAdmin refuses to disable or demote u when u is the last enabled
// admin: nobody could manage accounts from the page any more.
func (s *Service) keepAnAdmin(ctx context.Context, u User) error {
	if u.Role != RoleAdmin || u.Disabled {
		return nil
	}
	users, err := s.store.Users(ctx)
	if err != nil {
		return err
	}
	for _, o := range users {
		if o.ID != u.ID && o.Role == RoleAdmin && !o.Disabled {
			return nil
		}
	}
	return badInput("user %q is the last enabled admin; make another admin first", u.Name)
}

// LoginResult is a new web session.
type LoginResult struct {
	// Cookie is the session id for the authwatch_session cookie: shown to
	// the browser once, stored only hashed.
	Cookie   string
	Identity Identity
}

// Login checks a user name and password from a client address and opens a
// web session. Errors: *RateLimitError, ErrBadCredentials, ErrDisabled, or a
// store failure.
func (s *Service) Login(ctx context.Context, name, password string, remote netip.Addr) (LoginResult, error) {
	now := s.now()
	userKey := strings.ToLower(strings.TrimSpace(name))
	if len(userKey) > maxNameLen {
		userKey = userKey[:maxNameLen]
	}
	addrKey := addrKey(remote)
	if d := s.byAddr.blocked(addrKey, now); d > 0 {
		return LoginResult{}, &RateLimitError{Scope: "address", RetryAfter: d}
	}
	if d := s.byUser.blocked(userKey, now); d > 0 {
		return LoginResult{}, &RateLimitError{Scope: "user", RetryAfter: d}
	}
	var u User
	known := false
	if n, err := NormalizeName(name); err == nil {
		u, err = s.store.UserByName(ctx, n)
		switch {
		case err == nil:
			known = true
		case !errors.Is(err, ErrNotFound):
			return LoginResult{}, fmt.Errorf("login: %w", err)
		}
	}
	var hash []byte
	if known {
		hash = u.PasswordHash
	}
	ok, err := s.hash.verify(ctx, hash, password)
	if err != nil {
		return LoginResult{}, fmt.Errorf("login: %w", err)
	}
	if !ok {
		s.byUser.fail(userKey, now)
		s.byAddr.fail(addrKey, now)
		// The name only when it is an account: people type passwords into
		// the user field.
		if known {
			s.log.Warn("auth: login failed", "user", u.Name, "remote", remote)
		} else {
			s.log.Warn("auth: login failed for an unknown user", "remote", remote)
		}
		return LoginResult{}, ErrBadCredentials
	}
	if u.Disabled {
		s.log.Warn("auth: login refused, account disabled", "user", u.Name, "remote", remote)
		return LoginResult{}, ErrDisabled
	}
	s.byUser.reset(userKey)
	cookie := randomString(32)
	sess := Session{Hash: digest(cookie), UserID: u.ID, CSRF: randomString(32), Created: now, LastSeen: now, Remote: remote.String()}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return LoginResult{}, fmt.Errorf("login: %w", err)
	}
	s.log.Info("auth: logged in", "user", u.Name, "role", u.Role, "remote", remote)
	return LoginResult{Cookie: cookie, Identity: Identity{
		User: u.Name, UserID: u.ID, Role: u.Role, Method: MethodSession, CSRF: sess.CSRF, hash: sess.Hash,
	}}, nil
}

// addrKey is the rate-limit key of an address: IPv6 clients usually hold a
// whole /64, so that is what is counted.
func addrKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// Logout ends id's web session (other methods have nothing to end).
func (s *Service) Logout(ctx context.Context, id Identity) error {
	if id.Method != MethodSession || id.hash == nil {
		return nil
	}
	s.log.Info("auth: logged out", "user", id.User)
	return s.store.DeleteSession(ctx, id.hash)
}

// session returns the identity of a session by its hash, enforcing expiry
// and the account's state, and notes it as used.
func (s *Service) session(ctx context.Context, hash []byte) (Identity, error) {
	sess, err := s.store.SessionByHash(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return Identity{}, ErrInvalid
	}
	if err != nil {
		return Identity{}, err
	}
	now := s.now()
	if now.Sub(sess.Created) >= s.max || now.Sub(sess.LastSeen) >= s.idle {
		if err := s.store.DeleteSession(ctx, hash); err != nil {
			s.log.Error("auth: delete expired session", "err", err)
		}
		return Identity{}, ErrExpired
	}
	u, err := s.store.UserByID(ctx, sess.UserID)
	if errors.Is(err, ErrNotFound) || err == nil && u.Disabled {
		return Identity{}, ErrInvalid
	}
	if err != nil {
		return Identity{}, err
	}
	if now.Sub(sess.LastSeen) >= s.touchEvery {
		if err := s.store.TouchSession(ctx, hash, now); err != nil {
			s.log.Error("auth: note session use", "user", u.Name, "err", err)
		}
	}
	return Identity{User: u.Name, UserID: u.ID, Role: u.Role, Method: MethodSession, CSRF: sess.CSRF, hash: hash}, nil
}

// token returns the identity of an API token by its hash.
func (s *Service) token(ctx context.Context, hash []byte) (Identity, error) {
	t, err := s.store.TokenByHash(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return Identity{}, ErrInvalid
	}
	if err != nil {
		return Identity{}, err
	}
	if !t.Revoked.IsZero() {
		return Identity{}, ErrInvalid
	}
	u, err := s.store.UserByID(ctx, t.UserID)
	if errors.Is(err, ErrNotFound) || err == nil && u.Disabled {
		return Identity{}, ErrInvalid
	}
	if err != nil {
		return Identity{}, err
	}
	if now := s.now(); now.Sub(t.LastUsed) >= time.Minute {
		if err := s.store.TouchToken(ctx, t.ID, now); err != nil {
			s.log.Error("auth: note token use", "token", t.ID, "err", err)
		}
	}
	return Identity{User: u.Name, UserID: u.ID, Role: u.Role, Method: MethodToken, token: t.ID, hash: hash}, nil
}

// proxyUser returns the identity named by the trusted proxy's header.
func (s *Service) proxyUser(ctx context.Context, name string) (Identity, error) {
	n, err := NormalizeName(name)
	if err != nil {
		return Identity{}, ErrInvalid
	}
	u, err := s.store.UserByName(ctx, n)
	if errors.Is(err, ErrNotFound) || err == nil && u.Disabled {
		s.log.Warn("auth: proxy header names no enabled account", "user", n)
		return Identity{}, ErrInvalid
	}
	if err != nil {
		return Identity{}, err
	}
	return Identity{User: u.Name, UserID: u.ID, Role: u.Role, Method: MethodProxy}, nil
}

// Recheck says whether id is still good (the session not expired or ended,
// the token not revoked, the account enabled): long-lived websockets ask now
// and then. It counts as use of the session.
func (s *Service) Recheck(ctx context.Context, id Identity) error {
	switch id.Method {
	case MethodSession:
		_, err := s.session(ctx, id.hash)
		return err
	case MethodToken:
		_, err := s.token(ctx, id.hash)
		return err
	case MethodProxy:
		_, err := s.proxyUser(ctx, id.User)
		return err
	case MethodDesk:
		return nil
	}
	return ErrInvalid
}

// CreateToken makes an API token for user. The token is returned once and
// only its hash is stored.
func (s *Service) CreateToken(ctx context.Context, user, name string) (string, Token, error) {
	u, err := s.User(ctx, user)
	if err != nil {
		return "", Token{}, err
	}
	if u.Disabled {
		return "", Token{}, badInput("user %q is disabled", u.Name)
	}
	if len(name) > 100 {
		return "", Token{}, badInput("token name: at most 100 characters")
	}
	secret := tokenPrefix + randomString(32)
	t, err := s.store.CreateToken(ctx, Token{Hash: digest(secret), UserID: u.ID, User: u.Name, Name: name, Created: s.now().UTC()})
	if err != nil {
		return "", Token{}, err
	}
	s.log.Info("auth: token created", "user", u.Name, "token", t.ID, "name", name)
	return secret, t, nil
}

// Tokens lists the tokens of user, or of everyone when user is "".
func (s *Service) Tokens(ctx context.Context, user string) ([]Token, error) {
	var id int64
	if user != "" {
		u, err := s.User(ctx, user)
		if err != nil {
			return nil, err
		}
		id = u.ID
	}
	return s.store.Tokens(ctx, id)
}

// RevokeToken revokes a token by id, at once.
func (s *Service) RevokeToken(ctx context.Context, id int64) error {
	if err := s.store.RevokeToken(ctx, id, s.now().UTC()); err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("no token %d: %w", id, err)
		}
		return err
	}
	s.log.Info("auth: token revoked", "token", id)
	return nil
}

// CheckCSRF compares a request's X-CSRF-Token with the session's, in
// constant time.
func CheckCSRF(id Identity, got string) bool {
	return id.CSRF != "" && subtle.ConstantTimeCompare([]byte(id.CSRF), []byte(got)) == 1
}

// Run deletes expired sessions, and audit entries past the retention,
// hourly until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		now := s.now()
		n, err := s.store.DeleteSessions(ctx, now.Add(-s.idle), now.Add(-s.max))
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("auth: delete expired sessions", "err", err)
		case n > 0:
			s.log.Debug("auth: expired sessions deleted", "sessions", n)
		}
		s.sweepAudit(now)
		if s.auditKeep > 0 {
			n, err := s.store.DeleteAudit(ctx, now.Add(-s.auditKeep))
			switch {
			case err != nil && ctx.Err() == nil:
				s.log.Error("auth: delete old audit entries", "err", err)
			case n > 0:
				s.log.Info("auth: old audit entries deleted", "entries", n, "older_than", s.auditKeep)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
