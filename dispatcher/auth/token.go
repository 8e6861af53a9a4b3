package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode"

	"github.com/pando-wms/pando/dispatcher/store"
)

var (
	ErrNoToken  = errors.New("auth: no token")
	ErrBadToken = errors.New("auth: unknown token")
	// ErrReadOnly is returned by Create when the Lookup cannot create tokens.
	ErrReadOnly = errors.New("auth: token store cannot create tokens")
)

const (
	secretPrefix = "pando_"
	// maxSecretLen refuses junk before it reaches the store.
	maxSecretLen = 512
	// cacheSize bounds the cache; beyond it entries are dropped at random.
	cacheSize = 10_000
)

// NewSecret returns a fresh token secret: "pando_" and 32 random bytes in
// unpadded base64url. The prefix makes leaked tokens easy to scan for.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	return secretPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// Hash is the hex SHA-256 of a secret, the form the store keeps. A fast
// hash suffices: secrets carry 256 random bits, nothing to brute-force.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Lookup finds a token by the hash of its secret; store.Store is one.
type Lookup interface {
	TokenByHash(ctx context.Context, hash string) (*store.Token, error)
}

// Creator stores a new token. A Lookup that is also a Creator lets the
// Authenticator mint tokens (store.Store is both).
type Creator interface {
	CreateToken(ctx context.Context, t store.Token) error
}

// Authenticator resolves secrets to principals, caching hits for a while
// so that a busy API does not query the store on every request. A token
// removed from the store stays valid for up to the cache TTL.
type Authenticator struct {
	lookup Lookup
	ttl    time.Duration
	now    func() time.Time
	max    int

	mu    sync.Mutex
	cache map[string]cached // by hash, so that no secret stays in memory
}

type cached struct {
	p       Principal
	expires time.Time
}

// NewAuthenticator returns an Authenticator over l; ttl <= 0 disables the
// cache.
func NewAuthenticator(l Lookup, ttl time.Duration) *Authenticator {
	return &Authenticator{lookup: l, ttl: ttl, now: time.Now, max: cacheSize, cache: make(map[string]cached)}
}

// Authenticate returns the principal holding secret: ErrNoToken if secret
// is empty, ErrBadToken if no token matches, or the store's error.
func (a *Authenticator) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if secret == "" {
		return Principal{}, ErrNoToken
	}
	if len(secret) > maxSecretLen {
		return Principal{}, ErrBadToken
	}
	h := Hash(secret)
	if p, ok := a.cached(h); ok {
		return p, nil
	}
	t, err := a.lookup.TokenByHash(ctx, h)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Principal{}, ErrBadToken
	case err != nil:
		return Principal{}, fmt.Errorf("auth: look up token: %w", err)
	}
	// Lookups are by hash, so their timing tells nothing about the secret
	// (finding a preimage is infeasible). The constant-time check guards
	// against a store whose match is looser than byte equality, e.g. a
	// case-insensitive collation.
	if t == nil || subtle.ConstantTimeCompare([]byte(t.Hash), []byte(h)) != 1 {
		return Principal{}, ErrBadToken
	}
	p := Principal{Name: t.Name, Role: t.Role}
	a.remember(h, p)
	return p, nil
}

func (a *Authenticator) cached(h string) (Principal, bool) {
	if a.ttl <= 0 {
		return Principal{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.cache[h]
	if !ok {
		return Principal{}, false
	}
	if !a.now().Before(c.expires) {
		delete(a.cache, h)
		return Principal{}, false
	}
	return c.p, true
}

func (a *Authenticator) remember(h string, p Principal) {
	if a.ttl <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if len(a.cache) >= a.max {
		for k, c := range a.cache {
			if !now.Before(c.expires) {
				delete(a.cache, k)
			}
		}
		// Still full of live entries: drop a tenth (map order is random),
		// so that the sweep is paid once per many inserts.
		for k := range a.cache {
			if len(a.cache) < a.max-a.max/10 {
				break
			}
			delete(a.cache, k)
		}
	}
	a.cache[h] = cached{p: p, expires: now.Add(a.ttl)}
}

// Create mints a token for name with role and returns its secret, which
// is not kept anywhere: show it to the user once.
func (a *Authenticator) Create(ctx context.Context, role store.Role, name string) (string, error) {
	c, ok := a.lookup.(Creator)
	if !ok {
		return "", ErrReadOnly
	}
	if !validRole(role) {
		return "", fmt.Errorf("%w: unknown role %q", ErrBadRequest, role)
	}
	if err := checkName(name); err != nil {
		return "", err
	}
	secret, err := NewSecret()
	if err != nil {
		return "", err
	}
	t := store.Token{Hash: Hash(secret), Name: name, Role: role, Created: a.now().UTC()}
	if err := c.CreateToken(ctx, t); err != nil {
		return "", fmt.Errorf("auth: create token: %w", err)
	}
	return secret, nil
}

// ErrBadRequest marks a Create refused for its arguments (role or name),
// not for a store failure.
var ErrBadRequest = errors.New("auth: bad token request")

func checkName(name string) error {
	if name == "" || len(name) > 128 {
		return fmt.Errorf("%w: token name must be 1 to 128 bytes, got %d", ErrBadRequest, len(name))
	}
	for _, r := range name {
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("%w: token name %q has a non-printable character", ErrBadRequest, name)
		}
	}
	return nil
}
