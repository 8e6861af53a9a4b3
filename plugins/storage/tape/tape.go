// Package tape is the storage kind for tape systems behind the WLCG Tape
// REST API (stage, poll, release, archive info) with an HTTP data door for
// files on the disk buffer. A bucket is a cartridge group: bucket "b" and
// path "p" are the tape path /b/p. A file can be read only once it is on
// disk: Open of a file on tape only is ErrUnavailable until it is staged.
package tape

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/pando-wms/pando/plugins/storage"
)

func init() {
	storage.Register("tape", func(_ context.Context, c storage.Config) (storage.Endpoint, error) {
		u, err := url.Parse(c.URL)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("%w: tape endpoint %q: url %q: want http(s)://HOST:PORT", storage.ErrConfig, c.Name, c.URL)
		}
		return &Endpoint{name: c.Name, base: strings.TrimSuffix(c.URL, "/"), secret: c.SecretKey,
			client: &http.Client{Timeout: 5 * time.Minute}}, nil
	})
}

// Endpoint is a tape endpoint.
type Endpoint struct {
	name, base string
	secret     string // shared with the tape system: authenticates us and signs door URLs
	client     *http.Client
}

func (e *Endpoint) Name() string { return e.name }
func (e *Endpoint) Kind() string { return "tape" }

func tapePath(bucket, p string) string { return path.Clean("/" + bucket + "/" + p) }

func (e *Endpoint) do(ctx context.Context, method, rel string, body io.Reader, hdr map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, e.base+rel, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if e.secret != "" {
		req.Header.Set("Authorization", "Bearer "+e.secret)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %s: %v", storage.ErrUnavailable, e.name, err)
	}
	return resp, nil
}

// check turns an error status into the storage kinds, with the server's detail.
func (e *Endpoint) check(resp *http.Response, what string) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	var p struct {
		Detail string `json:"detail"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &p) == nil && p.Detail != "" {
		msg = p.Detail
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		return fmt.Errorf("%w: %s: %s: %s", storage.ErrNotFound, e.name, what, msg)
	case http.StatusBadRequest:
		return fmt.Errorf("%w: %s: %s: %s", storage.ErrConfig, e.name, what, msg)
	}
	return fmt.Errorf("%w: %s: %s: %s: %s", storage.ErrUnavailable, e.name, what, resp.Status, msg)
}

func (e *Endpoint) Stat(ctx context.Context, bucket, p string) (storage.Info, error) {
	tp := tapePath(bucket, p)
	resp, err := e.do(ctx, http.MethodHead, "/data"+tp, nil, map[string]string{"Want-Digest": "adler32"})
	if err != nil {
		return storage.Info{}, err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return storage.Info{}, fmt.Errorf("%w: %s: %s", storage.ErrNotFound, e.name, tp)
	}
	if err := e.check(resp, "stat "+tp); err != nil {
		return storage.Info{}, err
	}
	size, _ := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
	info := storage.Info{Bucket: bucket, Path: strings.TrimPrefix(path.Clean("/"+p), "/"), Size: size}
	info.ModTime, _ = http.ParseTime(resp.Header.Get("Last-Modified"))
	if sum, ok := strings.CutPrefix(resp.Header.Get("Digest"), "adler32="); ok {
		info.Adler32 = sum
	}
	return info, nil
}

func (e *Endpoint) List(ctx context.Context, bucket, prefix string) ([]storage.Info, error) {
	base := "/" + bucket + "/"
	resp, err := e.do(ctx, http.MethodGet, "/data"+base+prefix+"?list=1", nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := e.check(resp, "list "+base+prefix); err != nil {
		return nil, err
	}
	var entries []struct {
		Path    string `json:"path"`
		Size    int64  `json:"size"`
		Adler32 string `json:"adler32"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&entries); err != nil {
		return nil, fmt.Errorf("%w: %s: list: %v", storage.ErrUnavailable, e.name, err)
	}
	out := make([]storage.Info, 0, len(entries))
	for _, x := range entries {
		out = append(out, storage.Info{Bucket: bucket, Path: strings.TrimPrefix(x.Path, base), Size: x.Size, Adler32: x.Adler32})
	}
	return out, nil
}

func (e *Endpoint) Open(ctx context.Context, bucket, p string, off, n int64) (io.ReadCloser, error) {
	tp := tapePath(bucket, p)
	if n == 0 {
		if _, err := e.Stat(ctx, bucket, p); err != nil {
			return nil, err
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	hdr := map[string]string{}
	if off > 0 || n > 0 {
		end := ""
		if n > 0 {
			end = strconv.FormatInt(off+n-1, 10)
		}
		hdr["Range"] = fmt.Sprintf("bytes=%d-%s", off, end)
	}
	resp, err := e.do(ctx, http.MethodGet, "/data"+tp, nil, hdr)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusConflict {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %s: %s is on tape only: stage it first", storage.ErrUnavailable, e.name, tp)
	}
	if err := e.check(resp, "read "+tp); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp.Body, nil
}

func (e *Endpoint) Put(ctx context.Context, bucket, p string, r io.ReadSeeker) (storage.Info, error) {
	sum, size, err := storage.Adler32(r)
	if err != nil {
		return storage.Info{}, err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return storage.Info{}, err
	}
	tp := tapePath(bucket, p)
	resp, err := e.do(ctx, http.MethodPut, "/data"+tp, io.NopCloser(r), nil)
	if err != nil {
		return storage.Info{}, err
	}
	resp.Body.Close()
	if err := e.check(resp, "write "+tp); err != nil {
		return storage.Info{}, err
	}
	return storage.Info{Bucket: bucket, Path: strings.TrimPrefix(path.Clean("/"+p), "/"), Size: size, Adler32: sum, ModTime: time.Now()}, nil
}

// Presign signs a data door URL (see SignedQuery) with the endpoint's
// secret; without one it cannot. A GET works once the file is staged.
func (e *Endpoint) Presign(_ context.Context, method, bucket, p string, ttl time.Duration) (*url.URL, error) {
	if e.secret == "" {
		return nil, fmt.Errorf("%w: tape endpoint %q has no secret_key to sign URLs with", storage.ErrUnsupported, e.name)
	}
	if method != http.MethodGet && method != http.MethodPut {
		return nil, fmt.Errorf("%w: presign %s", storage.ErrUnsupported, method)
	}
	tp := tapePath(bucket, p)
	u, err := url.Parse(e.base + "/data" + tp)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", storage.ErrConfig, err)
	}
	u.RawQuery = SignedQuery(e.secret, method, tp, time.Now().Add(ttl))
	return u, nil
}

// FileState is one file of a stage request, as the API reports it.
type FileState struct {
	Path   string `json:"path"`
	State  string `json:"state"`
	OnDisk bool   `json:"onDisk"`
	Error  string `json:"error,omitempty"`
}

// Stage asks for files (tape paths) to be brought to disk and returns the request ID.
func (e *Endpoint) Stage(ctx context.Context, paths []string) (string, error) {
	body := struct {
		Files []map[string]string `json:"files"`
	}{}
	for _, p := range paths {
		body.Files = append(body.Files, map[string]string{"path": p})
	}
	var out struct {
		RequestID string `json:"requestId"`
	}
	if err := e.call(ctx, http.MethodPost, "/api/v1/stage", body, &out); err != nil {
		return "", err
	}
	return out.RequestID, nil
}

// Poll reports the state of each file of a stage request.
func (e *Endpoint) Poll(ctx context.Context, id string) ([]FileState, error) {
	var out struct {
		Files []FileState `json:"files"`
	}
	if err := e.call(ctx, http.MethodGet, "/api/v1/stage/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return out.Files, nil
}

// Release lets the tape system drop staged files from its disk buffer.
func (e *Endpoint) Release(ctx context.Context, id string, paths []string) error {
	return e.call(ctx, http.MethodPost, "/api/v1/release/"+url.PathEscape(id), map[string][]string{"paths": paths}, nil)
}

// Locality is where each file is: TAPE, DISK, DISK_AND_TAPE or NONE.
func (e *Endpoint) Locality(ctx context.Context, paths []string) (map[string]string, error) {
	var out []struct {
		Path     string `json:"path"`
		Locality string `json:"locality"`
		Error    string `json:"error"`
	}
	if err := e.call(ctx, http.MethodPost, "/api/v1/archiveinfo", map[string][]string{"paths": paths}, &out); err != nil {
		return nil, err
	}
	m := make(map[string]string, len(out))
	for _, x := range out {
		m[x.Path] = x.Locality
		if x.Error != "" {
			m[x.Path] = "NONE"
		}
	}
	return m, nil
}

func (e *Endpoint) call(ctx context.Context, method, rel string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	resp, err := e.do(ctx, method, rel, body, map[string]string{"Content-Type": "application/json"})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := e.check(resp, method+" "+rel); err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return errors.Join(fmt.Errorf("%w: %s: %s: bad answer", storage.ErrUnavailable, e.name, rel), err)
	}
	return nil
}
