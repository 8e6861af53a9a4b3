package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"
)

// File is a storage file: the endpoints a dispatcher may use.
type File struct {
	Endpoints []Config `yaml:"endpoints"`
}

// LoadFile reads and checks a storage file. Unknown keys, duplicate names
// and unknown kinds are errors that name the endpoint.
func LoadFile(path string) ([]Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
	}
	seen := map[string]bool{}
	for i, c := range f.Endpoints {
		switch {
		case c.Name == "":
			return nil, fmt.Errorf("%w: %s: endpoint %d has no name", ErrConfig, path, i+1)
		case seen[c.Name]:
			return nil, fmt.Errorf("%w: %s: endpoint %q named twice", ErrConfig, path, c.Name)
		}
		seen[c.Name] = true
	}
	return f.Endpoints, nil
}

// Set is the endpoints by name.
type Set map[string]Endpoint

// OpenAll makes every endpoint of cfgs.
func OpenAll(ctx context.Context, cfgs []Config) (Set, error) {
	s := Set{}
	for _, c := range cfgs {
		ep, err := New(ctx, c)
		if err != nil {
			return nil, err
		}
		s[c.Name] = ep
	}
	return s, nil
}

// Get returns the named endpoint.
func (s Set) Get(name string) (Endpoint, error) {
	if ep, ok := s[name]; ok {
		return ep, nil
	}
	return nil, fmt.Errorf("%w: no storage endpoint named %q", ErrNotFound, name)
}

// IsRetryable says whether an operation that failed with err may succeed later.
func IsRetryable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrChecksum)
}
