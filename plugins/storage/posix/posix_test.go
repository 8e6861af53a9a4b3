package posix_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pando-wms/pando/plugins/storage"
	_ "github.com/pando-wms/pando/plugins/storage/posix"
	"github.com/pando-wms/pando/plugins/storage/storagetest"
)

func TestConformance(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	ep, err := storage.New(context.Background(), storage.Config{Name: "shared", Kind: "posix", Root: root})
	if err != nil {
		t.Fatal(err)
	}
	storagetest.Run(t, ep, "b")
}

// Paths cannot leave their bucket.
func TestNoEscape(t *testing.T) {
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "b"), 0o755)
	os.WriteFile(filepath.Join(root, "secret"), []byte("x"), 0o600)
	ep, _ := storage.New(context.Background(), storage.Config{Name: "shared", Kind: "posix", URL: "file://" + root})
	for _, p := range []string{"../secret", "../../etc/passwd"} {
		if _, err := ep.Stat(context.Background(), "b", p); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat %q: %v, want not found", p, err)
		}
	}
	if _, err := ep.Stat(context.Background(), "..", "secret"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("bucket ..: %v", err)
	}
}
