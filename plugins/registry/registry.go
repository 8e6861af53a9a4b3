// Package registry holds the kinds plugins register in init: storage
// endpoints, batch systems. Filled at start, read afterwards.
package registry

import (
	"sort"
	"sync"
)

// Kinds maps a kind's name to its factory F.
type Kinds[F any] struct {
	what string // for the panic of a kind registered twice
	mu   sync.RWMutex
	m    map[string]F
}

// New returns an empty registry of what ("storage", "batch").
func New[F any](what string) *Kinds[F] { return &Kinds[F]{what: what, m: map[string]F{}} }

// Register adds a kind; a name registered twice is a programming error.
func (k *Kinds[F]) Register(kind string, f F) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, dup := k.m[kind]; dup {
		panic(k.what + ": kind registered twice: " + kind)
	}
	k.m[kind] = f
}

// Names lists the registered kinds, sorted.
func (k *Kinds[F]) Names() []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]string, 0, len(k.m))
	for n := range k.m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Get returns the factory of kind.
func (k *Kinds[F]) Get(kind string) (F, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	f, ok := k.m[kind]
	return f, ok
}
