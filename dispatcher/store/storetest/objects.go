package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/pando-wms/pando/dispatcher/store"
)

func testObjects(t *testing.T, open Opener) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	q1 := store.Object{Kind: store.KindQueue, Name: "grid", Value: []byte(`{"status":"online"}`), Updated: at(1)}
	q2 := store.Object{Kind: store.KindQueue, Name: "cpu", Value: []byte(`{}`), Updated: at(2)}
	sh := store.Object{Kind: store.KindShare, Name: "prod/mc", Value: []byte(`{"target":50}`), Updated: at(3)}
	for _, o := range []store.Object{q1, q2, sh} {
		if err := s.PutObject(ctx, o); err != nil {
			t.Fatalf("PutObject(%s %s): %v", o.Kind, o.Name, err)
		}
	}
	q1.Value, q1.Updated = []byte(`{"status":"draining"}`), at(4)
	if err := s.PutObject(ctx, q1); err != nil {
		t.Fatalf("PutObject replacing: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir) // durable
	t.Cleanup(func() { s.Close() })
	got, err := s.Objects(ctx, store.KindQueue)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(got, []store.Object{q2, q1}); d != "" {
		t.Errorf("Objects(queue): %s", d)
	}
	if err := s.DeleteObject(ctx, store.KindQueue, "cpu"); err != nil {
		t.Fatalf("DeleteObject: %v", err)
	}
	if err := s.DeleteObject(ctx, store.KindQueue, "cpu"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DeleteObject = %v, want ErrNotFound", err)
	}
	got, _ = s.Objects(ctx, store.KindShare)
	if d := diff(got, []store.Object{sh}); d != "" {
		t.Errorf("Objects(share): %s", d)
	}
	if got, err := s.Objects(ctx, "nothing"); err != nil || len(got) != 0 {
		t.Errorf("Objects of an unknown kind = %v, %v", got, err)
	}
}
