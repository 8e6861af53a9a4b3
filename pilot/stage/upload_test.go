package stage_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pando-wms/pando/pilot/stage"
	"github.com/pando-wms/pando/plugins/storage"
)

func TestUploadOutputs(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	files := map[string][]byte{"a.txt": content(1000, 1), "b.txt": nil, "sub/c.dat": content(200_000, 2), "skip.log": []byte("no")}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(t.TempDir(), "secret.txt")
	os.WriteFile(secret, []byte("host file"), 0o600)
	os.Symlink(secret, filepath.Join(dir, "link.txt")) // a payload's symlink must not export host files
	names, err := stage.Outputs(dir, []string{"*.txt", "sub/*.dat", "*.txt"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, " ") != "a.txt b.txt sub/c.dat" {
		t.Fatalf("outputs %v, want a.txt b.txt sub/c.dat", names)
	}
	if _, err := stage.Outputs(dir, []string{"../*"}); err == nil {
		t.Fatal("a pattern leaving the work directory was accepted")
	}
	presign := func(ctx context.Context, name string) (string, error) {
		u, err := e.ep.Presign(ctx, http.MethodPut, "data", "task1/job1/"+name, time.Minute)
		if err != nil {
			return "", err
		}
		return u.String(), nil
	}
	outs, err := stage.New(stage.Options{}).Upload(context.Background(), dir, names, presign)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		want, _, _ := storage.Adler32(strings.NewReader(string(files[o.Name])))
		if o.Size != int64(len(files[o.Name])) || o.Adler32 != want {
			t.Errorf("%s: reported %d bytes %s, want %d %s", o.Name, o.Size, o.Adler32, len(files[o.Name]), want)
		}
		r, err := e.ep.Open(context.Background(), "data", "task1/job1/"+o.Name, 0, -1)
		if err != nil {
			t.Fatalf("%s not in S3: %v", o.Name, err)
		}
		got, n, _ := storage.Adler32(r)
		r.Close()
		if n != o.Size || got != o.Adler32 {
			t.Errorf("%s in S3: %d bytes %s, reported %d %s", o.Name, n, got, o.Size, o.Adler32)
		}
	}
	e.srv.Stop()
	if _, err := stage.New(stage.Options{Retries: -1}).Upload(context.Background(), dir, names, presign); !errors.Is(err, stage.ErrUpload) {
		t.Fatalf("server down: %v, want ErrUpload", err)
	}
}
