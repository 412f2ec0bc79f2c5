package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Password length limits. bcrypt reads at most 72 bytes; refusing longer
// passwords beats silently ignoring their end.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 72
	maxNameLen     = 64
)

// DefaultBcryptCost makes one check take a few hundred milliseconds on a
// small server: cheap for a person logging in, dear for a guesser.
const DefaultBcryptCost = 12

// CheckPassword says what is wrong with a new password, if anything.
func CheckPassword(p string) error {
	switch {
	case !utf8.ValidString(p):
		return badInput("password: not valid UTF-8")
	case len(p) < MinPasswordLen:
		return badInput("password: at least %d characters", MinPasswordLen)
	case len(p) > MaxPasswordLen:
		return badInput("password: at most %d bytes", MaxPasswordLen)
	}
	return nil
}

// NormalizeName lower-cases an account name and checks it: 1 to 64 of
// a-z 0-9 . _ @ -, starting with a letter or digit (so it can never be
// mistaken for a flag or be "desk").
func NormalizeName(name string) (string, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "" || len(n) > maxNameLen {
		return "", badInput("user name: 1 to %d characters", maxNameLen)
	}
	for i, c := range n {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '@' || c == '-'):
		default:
			return "", badInput("user name %q: use a-z, 0-9 and . _ @ - (starting with a letter or digit)", name)
		}
	}
	if n == DeskUser {
		return "", badInput("user name %q is reserved", n)
	}
	return n, nil
}

// hasher bounds concurrent bcrypt work, so a burst of logins (or of guesses
// from many addresses) cannot take every core from RADIUS ingest.
type hasher struct {
	cost  int
	slots chan struct{}

	dummyOnce sync.Once
	dummy     []byte // compared against for unknown users, to take the same time
}

func newHasher(cost, concurrency int) (*hasher, error) {
	if cost == 0 {
		cost = DefaultBcryptCost
	}
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("auth: bcrypt cost %d outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	return &hasher{cost: cost, slots: make(chan struct{}, max(concurrency, 1))}, nil
}

func (h *hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *hasher) release() { <-h.slots }

func (h *hasher) hash(ctx context.Context, password string) ([]byte, error) {
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	defer h.release()
	return bcrypt.GenerateFromPassword([]byte(password), h.cost)
}

// verify reports whether password matches hash; a nil hash is compared
// against a dummy, so unknown users take as long as known ones.
func (h *hasher) verify(ctx context.Context, hash []byte, password string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	if hash == nil {
		h.dummyOnce.Do(func() {
			h.dummy, _ = bcrypt.GenerateFromPassword([]byte(randomString(16)), h.cost)
		})
		bcrypt.CompareHashAndPassword(h.dummy, []byte(password))
		return false, nil
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil, nil
}

// randomString returns n random bytes, base64url-encoded.
func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand panics rather than return short)
	return base64.RawURLEncoding.EncodeToString(b)
}

// RandomPassword returns a password to print once (the demo's admin).
func RandomPassword() string { return randomString(15) }

func digest(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}
