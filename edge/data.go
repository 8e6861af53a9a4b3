package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pando-wms/pando/edge/cache"
	"github.com/pando-wms/pando/pilot/stage"
)

// dataServer serves job inputs to pilots that cannot reach the storage:
// GET /fetch?url=PRESIGNED&src=ENDPOINT:BUCKET/PATH&size=N&adler32=X fills
// the edge's cache from the presigned URL once per object (verified by
// size and adler32) and serves it, ranges included; PUT /store?url=PRESIGNED
// passes an output upload through. Only URLs of the allowed storage hosts
// are used: the edge is not an open proxy.
type dataServer struct {
	cache  *cache.Cache
	fetch  *stage.Fetcher
	client *http.Client // output uploads
	allow  []string     // HOST:PORT of the storage endpoints
}

func (d *dataServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/store" && r.Method == http.MethodPut:
		d.store(w, r)
		return
	case r.URL.Path != "/fetch" || (r.Method != http.MethodGet && r.Method != http.MethodHead):
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	raw, src, sum := q.Get("url"), q.Get("src"), q.Get("adler32")
	size, err := strconv.ParseInt(q.Get("size"), 10, 64)
	u, uerr := url.Parse(raw)
	switch {
	case err != nil || size < 0 || src == "" || uerr != nil:
		http.Error(w, "edge: want url, src, size and adler32", http.StatusBadRequest)
		return
	case (u.Scheme != "http" && u.Scheme != "https") || !slices.Contains(d.allow, u.Host):
		http.Error(w, fmt.Sprintf("edge: storage host %q is not one this edge serves", u.Host), http.StatusForbidden)
		return
	}
	h, err := d.cache.Get(r.Context(), cache.InputKey(src, sum, size), size, func(ctx context.Context, dst string) error {
		return d.fetch.Fetch(ctx, filepath.Dir(dst), []stage.Source{{Name: filepath.Base(dst), URL: raw, Size: size, Adler32: sum}})
	})
	if err != nil {
		status := http.StatusBadGateway
		if strings.Contains(err.Error(), "403 Forbidden") {
			status = http.StatusForbidden // an expired URL: the pilot renews it and asks again
		}
		if errors.Is(err, cache.ErrFull) {
			status = http.StatusServiceUnavailable
		}
		http.Error(w, "edge: "+err.Error(), status)
		return
	}
	defer h.Release()
	f, err := os.Open(h.Path)
	if err != nil {
		http.Error(w, "edge: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	http.ServeContent(w, r, "", time.Time{}, f)
}

// store passes an output upload (PUT /store?url=PRESIGNED) through to an
// allowed storage host, streaming, and answers with the storage's status.
func (d *dataServer) store(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("url")
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !slices.Contains(d.allow, u.Host) {
		http.Error(w, "edge: not a presigned URL of a storage host this edge serves", http.StatusForbidden)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPut, raw, r.Body)
	if err != nil {
		http.Error(w, "edge: "+err.Error(), http.StatusBadRequest)
		return
	}
	req.ContentLength = r.ContentLength
	if r.ContentLength == 0 {
		req.Body = http.NoBody
	}
	resp, err := d.client.Do(req)
	if err != nil {
		http.Error(w, "edge: storage unreachable: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, 64<<10))
}
