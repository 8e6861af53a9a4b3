package stage

import (
	"context"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ErrUpload: an output could not be uploaded after every retry.
var ErrUpload = errors.New("stage: upload failed")

// Output is one file a job produced, as uploaded.
type Output struct {
	Name    string `json:"name"` // path relative to the work directory
	Size    int64  `json:"size"`
	Adler32 string `json:"adler32"`
}

// PresignPut returns a URL to PUT the named output to (the dispatcher's
// presigner, through the pilot's session).
type PresignPut func(ctx context.Context, name string) (string, error)

// Outputs lists the regular files of dir matching any of patterns
// (filepath.Match syntax, relative to dir), sorted and without duplicates.
func Outputs(dir string, patterns []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, p := range patterns {
		if filepath.IsAbs(p) || strings.HasPrefix(filepath.Clean(p), "..") {
			return nil, fmt.Errorf("%w: output pattern %q must stay inside the work directory", ErrUpload, p)
		}
		matches, err := filepath.Glob(filepath.Join(dir, p))
		if err != nil {
			return nil, fmt.Errorf("%w: output pattern %q: %v", ErrUpload, p, err)
		}
		for _, m := range matches {
			st, err := os.Lstat(m)
			if err != nil || !st.Mode().IsRegular() { // no directories, no symlinks out of the sandbox
				continue
			}
			rel, err := filepath.Rel(dir, m)
			if err != nil || seen[rel] {
				continue
			}
			seen[rel] = true
			out = append(out, rel)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Upload PUTs each named file of dir to the URL presign gives for it, with
// retries (a fresh URL each time), and returns what was uploaded with
// sizes and adler32s, computed while sending.
func (f *Fetcher) Upload(ctx context.Context, dir string, names []string, presign PresignPut) ([]Output, error) {
	outs := make([]Output, len(names))
	for i, name := range names {
		var last error
		for attempt := 0; attempt <= f.retries; attempt++ {
			if attempt > 0 {
				f.log.Warn("retrying output", "file", name, "attempt", attempt+1, "err", last)
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
				}
			}
			outs[i], last = f.put(ctx, dir, name, presign)
			if last == nil || ctx.Err() != nil {
				break
			}
		}
		if last != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrUpload, name, last)
		}
	}
	return outs, nil
}

func (f *Fetcher) put(ctx context.Context, dir, name string, presign PresignPut) (Output, error) {
	u, err := presign(ctx, name)
	if err != nil {
		return Output{}, fmt.Errorf("presign: %w", err)
	}
	file, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return Output{}, err
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return Output{}, err
	}
	h := adler32.New()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, io.TeeReader(file, h))
	if err != nil {
		return Output{}, err
	}
	req.ContentLength = st.Size()
	if st.Size() == 0 {
		req.Body = http.NoBody
	}
	resp, err := f.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = redact(ue.URL)
		}
		return Output{}, err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return Output{}, fmt.Errorf("PUT %s: %s: %s", redact(u), resp.Status, strings.TrimSpace(string(msg)))
	}
	return Output{Name: name, Size: st.Size(), Adler32: fmt.Sprintf("%08x", h.Sum32())}, nil
}
