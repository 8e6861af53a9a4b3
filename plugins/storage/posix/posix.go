// Package posix is the storage kind for a directory on a shared file
// system: buckets are its subdirectories, objects its files. It cannot
// presign: only those who mount the file system reach it.
package posix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pando-wms/pando/plugins/storage"
)

// xattr caches an object's adler32 beside it, so that Stat need not read it.
const xattr = "user.pando.adler32"

func init() {
	storage.Register("posix", func(_ context.Context, c storage.Config) (storage.Endpoint, error) {
		root := c.Root
		if root == "" {
			if u, err := url.Parse(c.URL); err == nil && u.Scheme == "file" {
				root = u.Path
			}
		}
		if !filepath.IsAbs(root) {
			return nil, fmt.Errorf("%w: posix endpoint %q needs an absolute root (root: or url: file:///DIR)", storage.ErrConfig, c.Name)
		}
		return &Endpoint{name: c.Name, root: root}, nil
	})
}

// Endpoint is a posix storage endpoint.
type Endpoint struct {
	name, root string
}

func (e *Endpoint) Name() string { return e.name }
func (e *Endpoint) Kind() string { return "posix" }

// file maps bucket and object path to a file, refusing paths that leave the bucket.
func (e *Endpoint) file(bucket, p string) (string, error) {
	if bucket == "" || strings.ContainsAny(bucket, "/\x00") || bucket == "." || bucket == ".." {
		return "", fmt.Errorf("%w: bad bucket name %q", storage.ErrNotFound, bucket)
	}
	clean := path.Clean("/" + p)
	if p == "" || clean == "/" || strings.Contains(p, "\x00") {
		return "", fmt.Errorf("%w: bad object path %q", storage.ErrNotFound, p)
	}
	return filepath.Join(e.root, bucket, filepath.FromSlash(clean)), nil
}

func wrap(err error, what string) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", storage.ErrNotFound, what)
	}
	return fmt.Errorf("%w: %s: %v", storage.ErrUnavailable, what, err)
}

func (e *Endpoint) Stat(ctx context.Context, bucket, p string) (storage.Info, error) {
	f, err := e.file(bucket, p)
	if err != nil {
		return storage.Info{}, err
	}
	st, err := os.Stat(f)
	if err != nil {
		return storage.Info{}, wrap(err, bucket+"/"+p)
	}
	if st.IsDir() {
		return storage.Info{}, fmt.Errorf("%w: %s/%s is a directory", storage.ErrNotFound, bucket, p)
	}
	info := storage.Info{Bucket: bucket, Path: strings.TrimPrefix(path.Clean("/"+p), "/"), Size: st.Size(), ModTime: st.ModTime()}
	info.Adler32 = e.checksum(f, st)
	return info, nil
}

// checksum reads the cached adler32 if it is newer than the file's content, else computes and caches it.
func (e *Endpoint) checksum(f string, st fs.FileInfo) string {
	buf := make([]byte, 64)
	if n, err := unix.Getxattr(f, xattr, buf); err == nil {
		if sum, at, ok := strings.Cut(string(buf[:n]), " "); ok && at == fmt.Sprint(st.ModTime().UnixNano()) {
			return sum
		}
	}
	r, err := os.Open(f)
	if err != nil {
		return ""
	}
	defer r.Close()
	sum, _, err := storage.Adler32(r)
	if err != nil {
		return ""
	}
	_ = unix.Setxattr(f, xattr, []byte(sum+" "+fmt.Sprint(st.ModTime().UnixNano())), 0) // a cache: best effort
	return sum
}

func (e *Endpoint) List(ctx context.Context, bucket, prefix string) ([]storage.Info, error) {
	dir, err := e.file(bucket, "x")
	if err != nil {
		return nil, err
	}
	base := filepath.Dir(dir)
	if _, err := os.Stat(base); err != nil {
		return nil, wrap(err, "bucket "+bucket)
	}
	var out []storage.Info
	err = filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, base+string(filepath.Separator)))
		if d.IsDir() || !strings.HasPrefix(rel, prefix) {
			return nil
		}
		info, err := e.Stat(ctx, bucket, rel)
		if err != nil {
			return err
		}
		out = append(out, info)
		return nil
	})
	if err != nil {
		return nil, wrap(err, "list "+bucket+"/"+prefix)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (e *Endpoint) Open(ctx context.Context, bucket, p string, off, n int64) (io.ReadCloser, error) {
	f, err := e.file(bucket, p)
	if err != nil {
		return nil, err
	}
	r, err := os.Open(f)
	if err != nil {
		return nil, wrap(err, bucket+"/"+p)
	}
	if _, err := r.Seek(off, io.SeekStart); err != nil {
		r.Close()
		return nil, wrap(err, bucket+"/"+p)
	}
	if n < 0 {
		return r, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(r, n), r}, nil
}

// Put writes to a temporary file and renames it, so that readers never see a partial object.
func (e *Endpoint) Put(ctx context.Context, bucket, p string, r io.ReadSeeker) (storage.Info, error) {
	f, err := e.file(bucket, p)
	if err != nil {
		return storage.Info{}, err
	}
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		return storage.Info{}, wrap(err, bucket+"/"+p)
	}
	tmp, err := os.CreateTemp(filepath.Dir(f), ".pando-put-*")
	if err != nil {
		return storage.Info{}, wrap(err, bucket+"/"+p)
	}
	defer os.Remove(tmp.Name())
	sum, n, err := storage.Adler32(io.TeeReader(r, tmp))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f)
	}
	if err != nil {
		return storage.Info{}, wrap(err, "put "+bucket+"/"+p)
	}
	st, err := os.Stat(f)
	if err != nil {
		return storage.Info{}, wrap(err, bucket+"/"+p)
	}
	_ = unix.Setxattr(f, xattr, []byte(sum+" "+fmt.Sprint(st.ModTime().UnixNano())), 0)
	return storage.Info{Bucket: bucket, Path: strings.TrimPrefix(path.Clean("/"+p), "/"), Size: n, Adler32: sum, ModTime: st.ModTime()}, nil
}

func (e *Endpoint) Presign(context.Context, string, string, string, time.Duration) (*url.URL, error) {
	return nil, fmt.Errorf("%w: posix endpoint %q cannot presign", storage.ErrUnsupported, e.name)
}
