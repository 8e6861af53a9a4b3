package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/pando-wms/pando/dispatcher/store"
)

func testTokens(t *testing.T, open Opener) {
	ctx := context.Background()
	s := fresh(t, open)
	tok := store.Token{Hash: "9f86d081884c7d65", Name: "alice", Role: store.RoleUser, Created: at(1)}
	agent := store.Token{Hash: "60303ae22b998861", Name: "site-a", Role: store.RoleAgent, Created: at(2)}
	for _, x := range []store.Token{tok, agent} {
		if err := s.CreateToken(ctx, x); err != nil {
			t.Fatalf("CreateToken(%s): %v", x.Name, err)
		}
	}
	for _, want := range []store.Token{tok, agent} {
		got, err := s.TokenByHash(ctx, want.Hash)
		if err != nil {
			t.Fatalf("TokenByHash(%s): %v", want.Name, err)
		}
		if d := diff(*got, want); d != "" {
			t.Errorf("TokenByHash(%s): %s", want.Name, d)
		}
	}
	dup := store.Token{Hash: tok.Hash, Name: "mallory", Role: store.RoleAdmin}
	if err := s.CreateToken(ctx, dup); err == nil {
		t.Error("CreateToken with a stored hash succeeded")
	}
	if got, _ := s.TokenByHash(ctx, tok.Hash); got == nil || got.Name != tok.Name || got.Role != tok.Role {
		t.Errorf("duplicate replaced the token: %+v", got)
	}
	if _, err := s.TokenByHash(ctx, "ffff"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TokenByHash of a missing hash: %v, want ErrNotFound", err)
	}
}
