// Package podman runs payloads in podman containers, through podman's REST
// API (github.com/containers/podman/v5/pkg/bindings) on a unix socket: the
// pilot's own `podman system service` unless it is given one.
//
// Build with the tags of the Makefile (remote, exclude_graphdriver_btrfs,
// exclude_graphdriver_devicemapper, containers_image_openpgp).
package podman

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/bindings/images"

	pc "github.com/pando-wms/pando/containers"
)

// The error kinds of package containers that only this runtime returns.
var (
	ErrImageNotFound = pc.ErrImageNotFound
	ErrUnavailable   = pc.ErrUnavailable
)

// pullTimeout bounds a pull from a registry: sites without one fail fast enough.
const pullTimeout = 2 * time.Minute

// Runtime creates podman containers. It is safe for concurrent use.
type Runtime struct {
	conn  context.Context // carries the bindings' client
	log   *slog.Logger
	owner string // this process, as OwnerLabel records it

	mu       sync.Mutex
	archives map[string]archiveImage // by archive reference ("oci-archive:/path")
}

type archiveImage struct {
	name    string
	modTime time.Time
	size    int64
}

// New connects to the podman service at socket (a path or unix:// URI) and
// checks that it answers.
func New(ctx context.Context, socket string, log *slog.Logger) (*Runtime, error) {
	if !strings.Contains(socket, "://") {
		socket = "unix://" + socket
	}
	conn, err := bindings.NewConnection(context.WithoutCancel(ctx), socket)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, socket, err)
	}
	owner, _ := processID(os.Getpid())
	return &Runtime{conn: conn, log: log, owner: owner, archives: make(map[string]archiveImage)}, nil
}

func (r *Runtime) Name() string { return "podman" }

// call is ctx (its deadline and cancellation) carrying the connection's client.
func (r *Runtime) call(ctx context.Context) context.Context { return callCtx{ctx, r.conn} }

type callCtx struct {
	context.Context
	conn context.Context
}

func (c callCtx) Value(k any) any {
	if v := c.Context.Value(k); v != nil {
		return v
	}
	return c.conn.Value(k)
}

// Create resolves the image (local, loaded from an archive, or pulled) and
// creates the container, not yet started.
func (r *Runtime) Create(ctx context.Context, s pc.Spec) (pc.Container, error) {
	if s.Image == "" {
		return nil, fmt.Errorf("%w: the podman runtime needs an image", pc.ErrInvalidSpec)
	}
	image, err := r.image(ctx, s.Image)
	if err != nil {
		return nil, err
	}
	g, err := generate(s, image)
	if err != nil {
		return nil, err
	}
	g.Labels[OwnerLabel] = r.owner
	resp, err := containers.CreateWithSpec(r.call(ctx), g, nil)
	if err != nil {
		return nil, classify(err, "create "+s.Name)
	}
	c := &container{rt: r, id: resp.ID, spec: s, waited: make(chan struct{}), outDone: make(chan struct{})}
	return c, nil
}

// image returns a local name for ref, loading or pulling it as needed.
func (r *Runtime) image(ctx context.Context, ref string) (string, error) {
	if path, ok := archivePath(ref); ok {
		return r.loadArchive(ctx, ref, path)
	}
	ok, err := images.Exists(r.call(ctx), ref, nil)
	if err != nil {
		return "", classify(err, "look up image "+ref)
	}
	if ok {
		return ref, nil
	}
	pctx, cancel := context.WithTimeout(ctx, pullTimeout)
	defer cancel()
	quiet := true
	if _, err := images.Pull(r.call(pctx), ref, &images.PullOptions{Quiet: &quiet}); err != nil {
		if c := classify(err, "pull "+ref); errors.Is(c, ErrUnavailable) {
			return "", c
		}
		return "", fmt.Errorf("%w: %s is not present and could not be pulled: %v", ErrImageNotFound, ref, err)
	}
	return ref, nil
}

func archivePath(ref string) (string, bool) {
	for _, p := range []string{"oci-archive:", "docker-archive:"} {
		if path, ok := strings.CutPrefix(ref, p); ok {
			return path, true
		}
	}
	return "", false
}

// loadArchive loads an image archive once per version of the file.
func (r *Runtime) loadArchive(ctx context.Context, ref, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%w: archive %s: %v", ErrImageNotFound, path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("%w: archive %s: %v", ErrImageNotFound, path, err)
	}
	r.mu.Lock()
	a, ok := r.archives[ref]
	r.mu.Unlock()
	if ok && a.modTime.Equal(st.ModTime()) && a.size == st.Size() {
		if exists, err := images.Exists(r.call(ctx), a.name, nil); err == nil && exists {
			return a.name, nil
		}
	}
	rep, err := images.Load(r.call(ctx), f)
	if err != nil {
		if c := classify(err, "load "+path); errors.Is(c, ErrUnavailable) {
			return "", c
		}
		return "", fmt.Errorf("%w: load archive %s: %v", ErrImageNotFound, path, err)
	}
	if len(rep.Names) == 0 {
		return "", fmt.Errorf("%w: archive %s holds no image", ErrImageNotFound, path)
	}
	name := rep.Names[0]
	r.mu.Lock()
	r.archives[ref] = archiveImage{name: name, modTime: st.ModTime(), size: st.Size()}
	r.mu.Unlock()
	r.log.Info("image loaded", "archive", path, "image", name)
	return name, nil
}

// classify maps a bindings error onto the kinds callers test for.
func classify(err error, what string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	prefix := ""
	if what != "" {
		prefix = what + ": "
	}
	switch {
	case strings.Contains(msg, "dial unix") || strings.Contains(msg, "unable to connect to Podman socket"):
		return fmt.Errorf("%w: %s%v", ErrUnavailable, prefix, err)
	case strings.Contains(msg, "name is in use") || strings.Contains(msg, "already in use"):
		return fmt.Errorf("%w: %s%v", pc.ErrNameInUse, prefix, err)
	case strings.Contains(msg, "image not known") || strings.Contains(msg, "no such image"):
		return fmt.Errorf("%w: %s%v", ErrImageNotFound, prefix, err)
	case strings.Contains(msg, "command that was not found") || strings.Contains(msg, "executable file not found") ||
		strings.Contains(msg, "unable to start container process: exec: ") &&
			(strings.Contains(msg, "permission denied") || strings.Contains(msg, "no such file or directory") || strings.Contains(msg, "not a directory")):
		// runc's own words for an argv[0] it cannot execute, not any EPERM or ENOENT.
		return fmt.Errorf("%w: %s%v", pc.ErrNotFound, prefix, err)
	}
	if prefix != "" {
		return fmt.Errorf("podman: %s%w", prefix, err)
	}
	return err
}
