// Package s3 is the storage kind for S3-compatible object stores, on
// minio-go. The adler32 of each object Pando writes is kept in its
// metadata (x-amz-meta-adler32).
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/pando-wms/pando/plugins/storage"
)

const metaKey = "adler32"

func init() {
	storage.Register("s3", newEndpoint)
}

// Endpoint is an S3 storage endpoint.
type Endpoint struct {
	name string
	c    *minio.Client
}

func newEndpoint(_ context.Context, c storage.Config) (storage.Endpoint, error) {
	u, err := url.Parse(c.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("%w: s3 endpoint %q: url %q: want http(s)://HOST:PORT", storage.ErrConfig, c.Name, c.URL)
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		return nil, fmt.Errorf("%w: s3 endpoint %q needs access_key and secret_key", storage.ErrConfig, c.Name)
	}
	region := c.Region
	if region == "" {
		region = "us-east-1" // fixed, so that minio-go never asks the server for the bucket's location
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""),
		Secure:       u.Scheme == "https",
		Region:       region,
		BucketLookup: minio.BucketLookupPath,
		// minio-go's default (10 tries, up to ~9 s) hides an outage behind a
		// caller's deadline; Pando's stage-in and stage-out retry with their
		// own back-off, so report a dead server within about a second.
		MaxRetries: 3,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: s3 endpoint %q: %v", storage.ErrConfig, c.Name, err)
	}
	return &Endpoint{name: c.Name, c: client}, nil
}

func (e *Endpoint) Name() string { return e.name }
func (e *Endpoint) Kind() string { return "s3" }

// wrap maps minio-go's errors onto the storage kinds.
func (e *Endpoint) wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "NoSuchKey" || resp.Code == "NoSuchBucket" || resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %s: %s", storage.ErrNotFound, e.name, what)
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		// The server did not answer within the caller's time: retryable.
		return fmt.Errorf("%w: %s: %s: %w", storage.ErrUnavailable, e.name, what, err)
	case resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w: %s: %s: access denied: %v", storage.ErrConfig, e.name, what, err)
	}
	return fmt.Errorf("%w: %s: %s: %v", storage.ErrUnavailable, e.name, what, err)
}

func info(bucket string, o minio.ObjectInfo) storage.Info {
	i := storage.Info{Bucket: bucket, Path: o.Key, Size: o.Size, ModTime: o.LastModified}
	for k, v := range o.UserMetadata {
		if strings.EqualFold(k, metaKey) || strings.EqualFold(k, "X-Amz-Meta-"+metaKey) {
			i.Adler32 = v
		}
	}
	return i
}

func (e *Endpoint) Stat(ctx context.Context, bucket, path string) (storage.Info, error) {
	o, err := e.c.StatObject(ctx, bucket, path, minio.StatObjectOptions{})
	if err != nil {
		return storage.Info{}, e.wrap(err, bucket+"/"+path)
	}
	return info(bucket, o), nil
}

func (e *Endpoint) List(ctx context.Context, bucket, prefix string) ([]storage.Info, error) {
	var out []storage.Info
	for o := range e.c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true, WithMetadata: true}) {
		if o.Err != nil {
			return nil, e.wrap(o.Err, "list "+bucket+"/"+prefix)
		}
		if strings.HasSuffix(o.Key, "/") {
			continue
		}
		i := info(bucket, o)
		if i.Adler32 == "" { // listings may omit user metadata
			if st, err := e.Stat(ctx, bucket, o.Key); err == nil {
				i.Adler32 = st.Adler32
			}
		}
		out = append(out, i)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (e *Endpoint) Open(ctx context.Context, bucket, path string, off, n int64) (io.ReadCloser, error) {
	opts := minio.GetObjectOptions{}
	switch {
	case n == 0:
		return io.NopCloser(strings.NewReader("")), nil
	case n > 0:
		if err := opts.SetRange(off, off+n-1); err != nil {
			return nil, fmt.Errorf("%w: range %d+%d: %v", storage.ErrConfig, off, n, err)
		}
	case off > 0:
		if err := opts.SetRange(off, 0); err != nil {
			return nil, fmt.Errorf("%w: range from %d: %v", storage.ErrConfig, off, err)
		}
	}
	obj, err := e.c.GetObject(ctx, bucket, path, opts)
	if err != nil {
		return nil, e.wrap(err, bucket+"/"+path)
	}
	// GetObject is lazy: a missing object shows at the first read. Stat it
	// now so that Open itself fails with ErrNotFound.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, e.wrap(err, bucket+"/"+path)
	}
	return obj, nil
}

func (e *Endpoint) Put(ctx context.Context, bucket, path string, r io.ReadSeeker) (storage.Info, error) {
	sum, size, err := storage.Adler32(r)
	if err != nil {
		return storage.Info{}, fmt.Errorf("storage: read %s for upload: %w", path, err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return storage.Info{}, fmt.Errorf("storage: rewind %s for upload: %w", path, err)
	}
	up, err := e.c.PutObject(ctx, bucket, path, r, size, minio.PutObjectOptions{
		UserMetadata: map[string]string{metaKey: sum},
		ContentType:  "application/octet-stream",
	})
	if err != nil {
		return storage.Info{}, e.wrap(err, "put "+bucket+"/"+path)
	}
	return storage.Info{Bucket: bucket, Path: path, Size: up.Size, Adler32: sum, ModTime: up.LastModified}, nil
}

func (e *Endpoint) Presign(ctx context.Context, method, bucket, path string, ttl time.Duration) (*url.URL, error) {
	var (
		u   *url.URL
		err error
	)
	switch method {
	case http.MethodGet:
		u, err = e.c.PresignedGetObject(ctx, bucket, path, ttl, nil)
	case http.MethodPut:
		u, err = e.c.PresignedPutObject(ctx, bucket, path, ttl)
	default:
		return nil, fmt.Errorf("%w: presign %s", storage.ErrUnsupported, method)
	}
	if err != nil {
		return nil, e.wrap(err, "presign "+bucket+"/"+path)
	}
	return u, nil
}
