package auth_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"authwatch/watcher/sqlstore"
	"authwatch/webui/auth"
)

func newService(t *testing.T, edit func(*auth.Options)) *auth.Service {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), sqlstore.Options{Path: filepath.Join(t.TempDir(), "a.db"), Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	o := auth.Options{Store: st, BcryptCost: bcrypt.MinCost}
	if edit != nil {
		edit(&o)
	}
	s, err := auth.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNormalizeName(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"Maria", "maria", true},
		{" joao.silva@isp ", "joao.silva@isp", true},
		{"a_b-c", "a_b-c", true},
		{"", "", false},
		{"-x", "", false},
		{".x", "", false},
		{"desk", "", false},
		{"ma ria", "", false},
		{"maría", "", false},
		{strings.Repeat("a", 65), "", false},
	}
	for _, tt := range tests {
		got, err := auth.NormalizeName(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("NormalizeName(%q) = %q, %v", tt.in, got, err)
		}
		if err != nil && !auth.IsBadInput(err) {
			t.Errorf("NormalizeName(%q): %v is not a bad-input error", tt.in, err)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	for _, tt := range []struct {
		pw string
		ok bool
	}{
		{"12345678", true},
		{"1234567", false},
		{strings.Repeat("x", 72), true},
		{strings.Repeat("x", 73), false},
		{"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", false},
	} {
		if err := auth.CheckPassword(tt.pw); (err == nil) != tt.ok {
			t.Errorf("CheckPassword(len %d): %v", len(tt.pw), err)
		}
	}
}

func TestRateLimitMessage(t *testing.T) {
	for _, tt := range []struct {
		e    auth.RateLimitError
		want string
	}{
		{auth.RateLimitError{Scope: "user", RetryAfter: 14*time.Minute + time.Second}, "too many failed logins for this user; try again in 15 minutes"},
		{auth.RateLimitError{Scope: "address", RetryAfter: 20 * time.Second}, "too many failed logins for this address; try again in 1 minute"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%q, want %q", got, tt.want)
		}
	}
}

// ClientAddr believes X-Forwarded-For only from trusted proxies, and only
// up to the first address that is not one.
func TestClientAddr(t *testing.T) {
	s := newService(t, func(o *auth.Options) {
		o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}
	})
	tests := []struct {
		name, remote, xff, want string
	}{
		{"direct", "203.0.113.5:4000", "", "203.0.113.5"},
		{"direct, forged header", "203.0.113.5:4000", "198.51.100.1", "203.0.113.5"},
		{"via proxy", "10.0.0.2:4000", "198.51.100.1", "198.51.100.1"},
		{"via two proxies", "10.0.0.2:4000", "198.51.100.1, 10.0.0.3", "198.51.100.1"},
		{"client-forged left part", "10.0.0.2:4000", "1.2.3.4, 198.51.100.1", "198.51.100.1"},
		{"garbled", "10.0.0.2:4000", "nonsense", "10.0.0.2"},
		{"proxy without header", "10.0.0.2:4000", "", "10.0.0.2"},
		{"ipv6", "[2804:db8::1]:4000", "", "2804:db8::1"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if got := s.ClientAddr(r).String(); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestTokens(t *testing.T) {
	s := newService(t, nil)
	ctx := context.Background()
	if _, err := s.AddUser(ctx, "ana", auth.RoleAgent, "long-enough"); err != nil {
		t.Fatal(err)
	}
	secret, tok, err := s.CreateToken(ctx, "ana", "ci")
	if err != nil || !strings.HasPrefix(secret, "aw_") || len(secret) < 40 || tok.ID == 0 {
		t.Fatalf("%q %+v %v", secret, tok, err)
	}
	identify := func(h string) (auth.Identity, error) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", h)
		return s.Identify(r)
	}
	if id, err := identify("Bearer " + secret); err != nil || id.User != "ana" || id.Method != auth.MethodToken || id.CSRF != "" {
		t.Fatalf("%+v %v", id, err)
	}
	if _, err := identify("bearer " + secret); err != nil {
		t.Errorf("scheme is case-insensitive: %v", err)
	}
	for _, h := range []string{"Basic " + secret, "Bearer", "Bearer " + secret + "x", "Bearer " + strings.Repeat("a", 300)} {
		if _, err := identify(h); !errors.Is(err, auth.ErrInvalid) {
			t.Errorf("%.20q: %v", h, err)
		}
	}
	s.SetDisabled(ctx, "ana", true)
	if _, err := identify("Bearer " + secret); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("token of a disabled user: %v", err)
	}
	s.SetDisabled(ctx, "ana", false)
	if err := s.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := identify("Bearer " + secret); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("revoked token: %v", err)
	}
	if list, _ := s.Tokens(ctx, "ana"); len(list) != 1 || list[0].Revoked.IsZero() {
		t.Errorf("list %+v", list)
	}
}

func TestPasswordChangeEndsSessions(t *testing.T) {
	s := newService(t, nil)
	ctx := context.Background()
	s.AddUser(ctx, "ana", auth.RoleAgent, "long-enough")
	res, err := s.Login(ctx, "ana", "long-enough", netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Recheck(ctx, res.Identity); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPassword(ctx, "ana", "another-one"); err != nil {
		t.Fatal(err)
	}
	if err := s.Recheck(ctx, res.Identity); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("session after a password change: %v", err)
	}
	if _, err := s.Login(ctx, "ana", "long-enough", netip.MustParseAddr("127.0.0.1")); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("old password: %v", err)
	}
	if _, err := s.Login(ctx, "ana", "another-one", netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Errorf("new password: %v", err)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, o := range []auth.Options{
		{},
		{Store: &sqlstore.Store{}, ProxyHeader: "X-Remote-User"},
		{Store: &sqlstore.Store{}, SessionIdle: time.Hour, SessionMax: time.Minute},
		{Store: &sqlstore.Store{}, BcryptCost: 99},
		{Store: &sqlstore.Store{}, AuditRetention: -time.Hour},
	} {
		if _, err := auth.New(o); err == nil {
			t.Errorf("accepted %+v", o)
		}
	}
}

// Run deletes audit entries past the retention at its first pass.
func TestAuditRetention(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := now.Add(-400 * 24 * time.Hour)
	s := newService(t, func(o *auth.Options) {
		o.AuditRetention = 365 * 24 * time.Hour
		o.Now = func() time.Time { return clock }
	})
	ctx := context.Background()
	id := auth.Identity{User: "ana", Method: auth.MethodSession}
	for _, login := range []string{"joao", "maria"} {
		if err := s.Record(ctx, id, "customer", login, "", netip.Addr{}); err != nil {
			t.Fatal(err)
		}
		clock = now // maria is looked at 400 days after joao
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	var entries []auth.AuditEntry
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if entries, _ = s.Audit(ctx, auth.AuditQuery{}); len(entries) < 2 {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Login != "maria" {
		t.Fatalf("audit after the retention: %+v", entries)
	}
}
