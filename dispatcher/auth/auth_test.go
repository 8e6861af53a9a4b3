package auth

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pando-wms/pando/dispatcher/store"
)

// memStore is an in-memory Lookup and Creator that counts lookups.
type memStore struct {
	mu      sync.Mutex
	tokens  map[string]store.Token
	lookups int
	err     error
}

func newMemStore() *memStore { return &memStore{tokens: map[string]store.Token{}} }

func (m *memStore) TokenByHash(_ context.Context, hash string) (*store.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	if m.err != nil {
		return nil, m.err
	}
	t, ok := m.tokens[hash]
	if !ok {
		return nil, store.ErrNotFound
	}
	return &t, nil
}

func (m *memStore) CreateToken(_ context.Context, t store.Token) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.tokens[t.Hash]; dup {
		return errors.New("duplicate")
	}
	m.tokens[t.Hash] = t
	return nil
}

func (m *memStore) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lookups
}

func TestNewSecret(t *testing.T) {
	re := regexp.MustCompile(`^pando_[A-Za-z0-9_-]{43}$`)
	a, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSecret()
	if !re.MatchString(a) || a == b {
		t.Errorf("secrets %q, %q", a, b)
	}
}

func TestHash(t *testing.T) {
	// sha256("abc")
	if got := Hash("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("Hash = %s", got)
	}
}

func TestCan(t *testing.T) {
	all := []Action{SubmitTask, ReadOwn, ReadAll, KillOwn, KillAny, CreateToken, ConnectAgent, ViewAgents}
	want := map[store.Role][]Action{
		store.RoleAdmin:    all,
		store.RoleOperator: {SubmitTask, ReadOwn, ReadAll, KillOwn, KillAny, ViewAgents},
		store.RoleUser:     {SubmitTask, ReadOwn, KillOwn},
		store.RoleAgent:    {ConnectAgent},
		"":                 nil,
		"root":             nil,
	}
	for role, allowed := range want {
		for _, a := range all {
			exp := false
			for _, x := range allowed {
				exp = exp || x == a
			}
			if got := (Principal{Name: "n", Role: role}).Can(a); got != exp {
				t.Errorf("role %q Can(%v) = %v, want %v", role, a, got, exp)
			}
		}
	}
}

func TestParseRole(t *testing.T) {
	tests := []struct {
		in   string
		want store.Role
		err  bool
	}{
		{"admin", store.RoleAdmin, false},
		{" Operator ", store.RoleOperator, false},
		{"USER", store.RoleUser, false},
		{"agent", store.RoleAgent, false},
		{"", "", true},
		{"root", "", true},
	}
	for _, tt := range tests {
		got, err := ParseRole(tt.in)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("ParseRole(%q) = %q, %v", tt.in, got, err)
		}
	}
	if _, err := ParseRole("root"); err == nil || !strings.Contains(err.Error(), `unknown role "root"`) {
		t.Errorf("error text: %v", err)
	}
}

func TestCreateAndAuthenticate(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	a := NewAuthenticator(st, time.Minute)
	secret, err := a.Create(ctx, store.RoleUser, "alice")
	if err != nil {
		t.Fatal(err)
	}
	tok, ok := st.tokens[Hash(secret)]
	if !ok || tok.Name != "alice" || tok.Role != store.RoleUser || tok.Created.IsZero() {
		t.Fatalf("stored token %+v", tok)
	}
	for _, stored := range st.tokens {
		if strings.Contains(stored.Hash, secret) {
			t.Fatal("secret stored in clear")
		}
	}
	p, err := a.Authenticate(ctx, secret)
	if err != nil || p != (Principal{Name: "alice", Role: store.RoleUser}) {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
}

func TestAuthenticateErrors(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	a := NewAuthenticator(st, time.Minute)
	if _, err := a.Authenticate(ctx, ""); !errors.Is(err, ErrNoToken) {
		t.Errorf("empty: %v", err)
	}
	if _, err := a.Authenticate(ctx, "pando_nope"); !errors.Is(err, ErrBadToken) {
		t.Errorf("unknown: %v", err)
	}
	if _, err := a.Authenticate(ctx, strings.Repeat("x", 10_000)); !errors.Is(err, ErrBadToken) {
		t.Errorf("long: %v", err)
	}
	boom := errors.New("database is locked")
	st.err = boom
	_, err := a.Authenticate(ctx, "pando_x")
	if !errors.Is(err, boom) || errors.Is(err, ErrBadToken) {
		t.Errorf("store error: %v", err)
	}
}

func TestCache(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	a := NewAuthenticator(st, time.Minute)
	now := time.Unix(1_000_000, 0)
	a.now = func() time.Time { return now }
	secret, _ := a.Create(ctx, store.RoleAgent, "pilot-1")

	for range 3 {
		if _, err := a.Authenticate(ctx, secret); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.count(); n != 1 {
		t.Errorf("%d lookups for 3 hits, want 1", n)
	}
	for range 2 {
		a.Authenticate(ctx, "pando_unknown")
	}
	if n := st.count(); n != 3 {
		t.Errorf("misses cached: %d lookups, want 3", n)
	}
	now = now.Add(time.Minute)
	a.Authenticate(ctx, secret)
	if n := st.count(); n != 4 {
		t.Errorf("expired entry served: %d lookups, want 4", n)
	}
}

func TestCacheDisabled(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	a := NewAuthenticator(st, 0)
	secret, _ := a.Create(ctx, store.RoleUser, "bob")
	a.Authenticate(ctx, secret)
	a.Authenticate(ctx, secret)
	if n := st.count(); n != 2 || len(a.cache) != 0 {
		t.Errorf("lookups %d, cache %d", n, len(a.cache))
	}
}

func TestCacheBounded(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	a := NewAuthenticator(st, time.Hour)
	a.max = 50
	for i := range 500 {
		secret, err := a.Create(ctx, store.RoleUser, fmt.Sprint("u", i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Authenticate(ctx, secret); err != nil {
			t.Fatal(err)
		}
		if len(a.cache) > a.max {
			t.Fatalf("cache holds %d entries, max %d", len(a.cache), a.max)
		}
	}
}

func TestCreateRefuses(t *testing.T) {
	ctx := context.Background()
	a := NewAuthenticator(newMemStore(), time.Minute)
	if _, err := a.Create(ctx, "root", "x"); err == nil {
		t.Error("unknown role accepted")
	}
	for _, name := range []string{"", strings.Repeat("n", 129), "a\nb"} {
		if _, err := a.Create(ctx, store.RoleUser, name); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	ro := NewAuthenticator(lookupOnly{newMemStore()}, time.Minute)
	if _, err := ro.Create(ctx, store.RoleUser, "x"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("read-only store: %v", err)
	}
}

type lookupOnly struct{ l Lookup }

func (l lookupOnly) TokenByHash(ctx context.Context, h string) (*store.Token, error) {
	return l.l.TokenByHash(ctx, h)
}

func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	a := NewAuthenticator(newMemStore(), time.Minute)
	secret, _ := a.Create(ctx, store.RoleUser, "c")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if _, err := a.Authenticate(ctx, secret); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
