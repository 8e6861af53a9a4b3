// Package storage is how Pando reads and writes data: named endpoints of a
// kind (s3, posix, tape), each behind one interface with stat, list,
// ranged read, write and presign. Kinds register themselves in init (see
// plugins/storage/s3 and plugins/storage/posix); the conformance suite in
// storagetest runs against every kind.
package storage

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"net/url"
	"time"

	"github.com/pando-wms/pando/plugins/registry"
)

// Error kinds. Implementations wrap them with %w; callers test with errors.Is.
var (
	// ErrNotFound: no such object (or bucket).
	ErrNotFound = errors.New("storage: not found")
	// ErrUnavailable: the endpoint cannot be reached or failed; retrying may help.
	ErrUnavailable = errors.New("storage: endpoint unavailable")
	// ErrUnsupported: this kind cannot do that (a posix endpoint cannot presign).
	ErrUnsupported = errors.New("storage: not supported by this endpoint")
	// ErrChecksum: the data read does not match its recorded checksum.
	ErrChecksum = errors.New("storage: checksum mismatch")
	// ErrConfig: an endpoint's configuration is wrong.
	ErrConfig = errors.New("storage: bad configuration")
)

// Info describes one stored object.
type Info struct {
	Bucket  string    `json:"bucket"`
	Path    string    `json:"path"`
	Size    int64     `json:"size"`
	Adler32 string    `json:"adler32,omitempty"` // 8 lowercase hex digits; empty when not recorded
	ModTime time.Time `json:"mod_time"`
}

// Endpoint is one named storage endpoint. Implementations are safe for concurrent use.
type Endpoint interface {
	Name() string
	Kind() string
	// Stat describes one object.
	Stat(ctx context.Context, bucket, path string) (Info, error)
	// List returns the objects under prefix, sorted by path.
	List(ctx context.Context, bucket, prefix string) ([]Info, error)
	// Open reads n bytes of an object from offset off (n < 0: to its end).
	Open(ctx context.Context, bucket, path string, off, n int64) (io.ReadCloser, error)
	// Put stores an object and records its adler32 beside it, which it
	// returns in Info. r may be read twice (checksum first, then the upload).
	Put(ctx context.Context, bucket, path string, r io.ReadSeeker) (Info, error)
	// Presign returns a URL that lets its holder GET or PUT one object until
	// it expires, without the endpoint's credentials.
	Presign(ctx context.Context, method, bucket, path string, ttl time.Duration) (*url.URL, error)
}

// Config is one endpoint of a storage file (pando dispatcher --storage FILE).
type Config struct {
	Name      string `yaml:"name"`
	Kind      string `yaml:"kind"`
	URL       string `yaml:"url"`
	AccessKey string `yaml:"access_key,omitempty"`
	SecretKey string `yaml:"secret_key,omitempty"`
	Region    string `yaml:"region,omitempty"`
	Root      string `yaml:"root,omitempty"` // posix: the directory holding the buckets
	// tape: the data carousel's window, files and bytes (e.g. 64GiB)
	// requested or on the disk buffer at once.
	WindowFiles int    `yaml:"window_files,omitempty"`
	WindowBytes string `yaml:"window_bytes,omitempty"`
}

// Factory makes an endpoint of one kind from its configuration.
type Factory func(ctx context.Context, c Config) (Endpoint, error)

// kinds is the registry the plugins fill in init.
var kinds = registry.New[Factory]("storage")

// Register makes a kind available; plugins call it from init.
func Register(kind string, f Factory) { kinds.Register(kind, f) }

// Kinds lists the registered kinds.
func Kinds() []string { return kinds.Names() }

// New makes the endpoint c describes.
func New(ctx context.Context, c Config) (Endpoint, error) {
	if c.Name == "" {
		return nil, fmt.Errorf("%w: an endpoint needs a name", ErrConfig)
	}
	f, ok := kinds.Get(c.Kind)
	if !ok {
		return nil, fmt.Errorf("%w: endpoint %q: unknown kind %q (known: %v)", ErrConfig, c.Name, c.Kind, Kinds())
	}
	return f(ctx, c)
}

// Adler32 returns the adler32 of everything r yields, as Info carries it.
func Adler32(r io.Reader) (string, int64, error) {
	h := adler32.New()
	n, err := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n, err
}
