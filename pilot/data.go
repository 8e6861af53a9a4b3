package pilot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pando-wms/pando/dispatcher/errcode"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/edge/cache"
	"github.com/pando-wms/pando/pilot/stage"
)

// DefaultCacheBytes bounds the node cache of staged inputs.
const DefaultCacheBytes = 10 << 30

// urlTimeout bounds one URL request, including the wait for a session.
const urlTimeout = 2 * time.Minute

// stagedInputs are a job's inputs in the node cache, pinned while it runs.
type stagedInputs struct {
	dir     string // read-only directory of links, $PANDO_INPUT_DIR
	names   []string
	urls    []string // node cache URLs, for stream jobs
	handles []*cache.Handle
}

func (s *stagedInputs) release() {
	if s == nil {
		return
	}
	for _, h := range s.handles {
		if h != nil { // nil: that input failed
			h.Release()
		}
	}
	if s.dir != "" {
		os.Chmod(s.dir, 0o700)
		os.RemoveAll(s.dir)
	}
}

// stageErr is a staging failure with its error code.
type stageErr struct {
	code errcode.Code
	err  error
}

func (e *stageErr) Error() string { return e.err.Error() }
func (e *stageErr) Unwrap() error { return e.err }

func stageFailure(err error) *stageErr {
	var se *stageErr
	if errors.As(err, &se) {
		return se
	}
	code := errcode.StageInFailed
	switch {
	case errors.Is(err, stage.ErrChecksum):
		code = errcode.StageInChecksum
	case strings.Contains(err.Error(), "404 Not Found"):
		code = errcode.StageInputMissing
	}
	return &stageErr{code, err}
}

// stageIn fills the node cache with the job's inputs (one download per
// object on the node, verified by size and adler32) and links them into a
// read-only directory beside the work directory.
func (p *Pilot) stageIn(ctx context.Context, j *job) (*stagedInputs, error) {
	in := j.a.Inputs
	if missing := missingURLs(in); len(missing) > 0 {
		urls, err := p.requestURLs(ctx, j, missing, nil)
		if err != nil {
			return nil, &stageErr{errcode.StageInFailed, fmt.Errorf("input URLs: %w", err)}
		}
		for k, name := range missing {
			for i := range in {
				if in[i].Name == name {
					in[i].URL = urls.Inputs[k]
				}
			}
		}
	}
	if j.a.Stream {
		if _, err := p.serveCache(); err != nil {
			return nil, &stageErr{errcode.StageInFailed, fmt.Errorf("node cache server: %w", err)}
		}
	}
	s := &stagedInputs{dir: j.dir + ".in", handles: make([]*cache.Handle, len(in)),
		names: make([]string, len(in)), urls: make([]string, len(in))}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return s, &stageErr{errcode.PilotWorkdir, err}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4) // files at once; each downloads in parallel ranges
	for i, f := range in {
		g.Go(func() error {
			h, err := p.cached(gctx, j, f)
			if err != nil {
				return err
			}
			s.handles[i] = h
			s.names[i] = f.Name
			if j.a.Stream {
				s.urls[i] = p.cacheURL + "/objects/" + filepath.Base(h.Path)
			}
			return linkOrCopy(h.Path, filepath.Join(s.dir, f.Name))
		})
	}
	if err := g.Wait(); err != nil {
		return s, stageFailure(err)
	}
	return s, os.Chmod(s.dir, 0o555)
}

func missingURLs(in []wire.InputFile) []string {
	var names []string
	for _, f := range in {
		if f.URL == "" {
			names = append(names, f.Name)
		}
	}
	return names
}

// cached returns input f from the node cache, downloading it on a miss.
func (p *Pilot) cached(ctx context.Context, j *job, f wire.InputFile) (*cache.Handle, error) {
	fetch := stage.New(stage.Options{Client: p.http, Logger: p.log,
		Renew: func(ctx context.Context, _ stage.Source) (string, error) {
			u, err := p.requestURLs(ctx, j, []string{f.Name}, nil)
			if err != nil {
				return "", err
			}
			return p.viaProxy(u.Inputs[0], f), nil
		}})
	return p.cache.Get(ctx, cache.InputKey(f.Source, f.Adler32, f.Size), f.Size,
		func(ctx context.Context, dst string) error {
			err := fetch.Fetch(ctx, filepath.Dir(dst), []stage.Source{{Name: filepath.Base(dst),
				URL: p.viaProxy(f.URL, f), Size: f.Size, Adler32: f.Adler32}})
			if err != nil {
				return fmt.Errorf("input %s (%s): %w", f.Name, f.Source, err)
			}
			return nil
		})
}

// viaProxy routes a download through the edge's input server when the
// node cannot reach the storage itself (--input-proxy).
func (p *Pilot) viaProxy(u string, f wire.InputFile) string {
	if p.cfg.InputProxy == "" {
		return u
	}
	q := url.Values{"url": {u}, "src": {f.Source}, "size": {strconv.FormatInt(f.Size, 10)}, "adler32": {f.Adler32}}
	return strings.TrimSuffix(p.cfg.InputProxy, "/") + "/fetch?" + q.Encode()
}

// putViaProxy routes an output upload through the edge, like viaProxy.
func (p *Pilot) putViaProxy(u string) string {
	if p.cfg.InputProxy == "" {
		return u
	}
	return strings.TrimSuffix(p.cfg.InputProxy, "/") + "/store?" + url.Values{"url": {u}}.Encode()
}

// linkOrCopy makes dst a hard link to src, or a copy across file systems.
func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o444)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// stageOut uploads the outputs of a successful payload through PUT URLs the
// dispatcher presigns, and returns them with their sizes and adler32.
func (p *Pilot) stageOut(ctx context.Context, j *job) ([]wire.OutputFile, error) {
	names, err := stage.Outputs(j.dir, j.a.Outputs)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	first, err := p.requestURLs(ctx, j, nil, names)
	if err != nil {
		return nil, fmt.Errorf("output URLs: %w", err)
	}
	fresh := make(map[string]string, len(names))
	for i, n := range names {
		fresh[n] = first.Outputs[i]
	}
	up := stage.New(stage.Options{Client: p.http, Logger: p.log})
	outs, err := up.Upload(ctx, j.dir, names, func(ctx context.Context, name string) (string, error) {
		if u, ok := fresh[name]; ok { // the first try uses the batch's URL
			delete(fresh, name)
			return p.putViaProxy(u), nil
		}
		u, err := p.requestURLs(ctx, j, nil, []string{name})
		if err != nil {
			return "", err
		}
		return p.putViaProxy(u.Outputs[0]), nil
	})
	if err != nil {
		return nil, err
	}
	files := make([]wire.OutputFile, len(outs))
	for i, o := range outs {
		files[i] = wire.OutputFile{Name: o.Name, Size: o.Size, Adler32: o.Adler32}
	}
	return files, nil
}

// requestURLs asks the dispatcher for input or output URLs of j, on a
// stream of its own, waiting for a session if the pilot is disconnected.
func (p *Pilot) requestURLs(ctx context.Context, j *job, inputs, outputs []string) (*wire.URLs, error) {
	ctx, cancel := context.WithTimeout(ctx, urlTimeout)
	defer cancel()
	req := &wire.URLRequest{JobID: j.a.JobID, Attempt: j.a.Attempt, Inputs: inputs, Outputs: outputs}
	var last error
	for ctx.Err() == nil {
		if !p.waitSession(ctx) {
			break
		}
		u, err := p.askURLs(ctx, req)
		if err == nil {
			if u.Code != 0 {
				return nil, fmt.Errorf("dispatcher refused (%s): %s", errcode.Code(u.Code), u.Message)
			}
			if len(u.Inputs) != len(inputs) || len(u.Outputs) != len(outputs) {
				return nil, fmt.Errorf("dispatcher answered %d+%d URLs for %d+%d files", len(u.Inputs), len(u.Outputs), len(inputs), len(outputs))
			}
			return u, nil
		}
		last = err
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	if last == nil {
		last = ctx.Err()
	}
	return nil, fmt.Errorf("no answer from the dispatcher: %w", last)
}

func (p *Pilot) askURLs(ctx context.Context, req *wire.URLRequest) (*wire.URLs, error) {
	sess, _ := p.current()
	if sess == nil {
		return nil, errors.New("not connected")
	}
	st, err := sess.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	defer st.CancelRead(0)
	m, err := wire.Exchange(st, req, 30*time.Second)
	if err != nil {
		return nil, err
	}
	u, ok := m.(*wire.URLs)
	if !ok {
		return nil, fmt.Errorf("expected URLs, got message type %d", m.Type())
	}
	return u, nil
}

// serveCache starts the node cache's HTTP server on loopback, once, for jobs
// that stream their inputs, and returns its base URL.
func (p *Pilot) serveCache() (string, error) {
	p.serveOnce.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			p.cacheErr = err
			return
		}
		p.cacheSrv = &http.Server{Handler: p.cache.Handler(), ReadHeaderTimeout: 10 * time.Second}
		p.cacheURL = "http://" + ln.Addr().String()
		p.serveWG.Add(1)
		go func() {
			defer p.serveWG.Done()
			if err := p.cacheSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				p.log.Warn("node cache server stopped", "err", err)
			}
		}()
	})
	if p.cacheURL == "" && p.cacheErr == nil {
		return "", errors.New("the pilot is stopping")
	}
	return p.cacheURL, p.cacheErr
}

// newHTTPClient keeps a connection per range in flight to each storage host.
func newHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	tr.DisableCompression = true
	return &http.Client{Transport: tr}
}
