// Package emulator is a tape system behind the WLCG Tape REST API, for
// tests and demos (`pando tape serve`): files live on cartridges (the first
// directory of their path), drives mount a cartridge, seek and read at a
// fixed rate into a disk buffer of bounded size, from which a data door
// serves them. Stage requests are queued; a drive prefers files on the
// cartridge it has mounted, as the schedulers of CTA, Enstore or GEMSS do,
// or (OrderFIFO) serves them strictly oldest first, as a tape system that
// recalls in arrival order does.
//
// API (under /api/v1): POST stage {"files":[{"path":P}]} → 201 {"requestId"};
// GET stage/ID; POST stage/ID/cancel {"paths"}; DELETE stage/ID; POST
// release/ID {"paths"}; POST archiveinfo {"paths"} → [{"path","locality"}].
// Data door: HEAD, GET (ranges; 409 while a file is only on tape), PUT
// /data/PATH (written to tape and kept on disk), GET /data/PREFIX?list=1.
// `Want-Digest: adler32` gets a `Digest: adler32=HEX` header.
package emulator

import (
	"container/list"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pando-wms/pando/plugins/storage/tape"
)

// Config describes the emulated library.
type Config struct {
	Dir         string        // DIR/tape holds the cartridges' contents, DIR/disk the buffer
	Drives      int           // default 2
	Mount       time.Duration // cartridge mount (and unmount) time; default 2s
	Seek        time.Duration // positioning before each file; default 1s
	Rate        int64         // bytes/s read from tape; default 300 MB/s
	BufferBytes int64         // disk buffer; default 10 GiB
	Order       string        // OrderTape (default) or OrderFIFO
	// Secret, when set, is required: as a bearer token on every request,
	// or as the key of a signed data door URL (tape.SignedQuery).
	Secret string
	Logger *slog.Logger
}

// Recall orders of Config.Order.
const (
	// OrderTape: a drive takes queued files of the cartridge it holds
	// first, whenever they were asked for.
	OrderTape = "tape"
	// OrderFIFO: a drive takes the oldest queued file whose cartridge no
	// other drive holds, remounting as often as arrival order says.
	OrderFIFO = "fifo"
)

// File states of the API.
const (
	Submitted = "SUBMITTED"
	Started   = "STARTED"
	Completed = "COMPLETED"
	Failed    = "FAILED"
	Cancelled = "CANCELLED"
)

type fileReq struct {
	Path   string `json:"path"`
	State  string `json:"state"`
	OnDisk bool   `json:"onDisk"`
	Error  string `json:"error,omitempty"`
	pinned bool   // holds a pin on its file (see unpinFile)
}

type request struct {
	ID          string     `json:"id"`
	CreatedAt   int64      `json:"createdAt"`
	StartedAt   int64      `json:"startedAt,omitempty"`
	CompletedAt int64      `json:"completedAt,omitempty"`
	Files       []*fileReq `json:"files"`
}

// Server is the emulator. Run its Handler; Close stops the drives.
type Server struct {
	cfg  Config
	log  *slog.Logger
	tape string
	disk string

	mu       sync.Mutex
	cond     *sync.Cond
	requests map[string]*request
	queue    *list.List      // of *queued, oldest first
	onDisk   map[string]bool // paths in the buffer
	pins     map[string]int  // active stage requests holding a path on disk
	used     int64           // bytes in the buffer
	lru      []string        // buffer paths, oldest first, for eviction
	mounted  []string        // cartridge in each drive ("" none)
	closed   bool
	wg       sync.WaitGroup
	mounts   int64 // cartridges mounted
	read     int64 // bytes read from tape
}

// Stats reports the cartridges mounted and the bytes read from tape so far.
func (s *Server) Stats() (mounts, bytesRead int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mounts, s.read
}

type queued struct {
	req  *request
	file *fileReq
}

// New prepares the library and starts its drives.
func New(cfg Config) (*Server, error) {
	if cfg.Drives <= 0 {
		cfg.Drives = 2
	}
	if cfg.Mount == 0 {
		cfg.Mount = 2 * time.Second
	}
	if cfg.Seek == 0 {
		cfg.Seek = time.Second
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 300e6
	}
	if cfg.BufferBytes <= 0 {
		cfg.BufferBytes = 10 << 30
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	switch cfg.Order {
	case "":
		cfg.Order = OrderTape
	case OrderTape, OrderFIFO:
	default:
		return nil, fmt.Errorf("tape emulator: order %q: want %s or %s", cfg.Order, OrderTape, OrderFIFO)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, tape: filepath.Join(cfg.Dir, "tape"), disk: filepath.Join(cfg.Dir, "disk"),
		requests: map[string]*request{}, queue: list.New(), onDisk: map[string]bool{}, pins: map[string]int{},
		mounted: make([]string, cfg.Drives)}
	s.cond = sync.NewCond(&s.mu)
	for _, d := range []string{s.tape, s.disk} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	// What a previous run left in the buffer stays on disk.
	_ = filepath.WalkDir(s.disk, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel := "/" + filepath.ToSlash(strings.TrimPrefix(p, s.disk+string(filepath.Separator)))
			if info, err := d.Info(); err == nil {
				s.onDisk[rel], s.used = true, s.used+info.Size()
				s.lru = append(s.lru, rel)
			}
		}
		return nil
	})
	for i := range cfg.Drives {
		s.wg.Add(1)
		go s.drive(i)
	}
	return s, nil
}

// Close stops the drives after the file each is reading.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	s.wg.Wait()
}

// clean maps an API path to its canonical form ("/cartridge/...").
func clean(p string) (string, bool) {
	c := path.Clean("/" + p)
	if c == "/" || strings.Contains(p, "\x00") || strings.Count(c, "/") < 2 {
		return "", false // a file must sit on a cartridge: /CARTRIDGE/NAME
	}
	return c, true
}

func cartridge(p string) string { return strings.SplitN(p[1:], "/", 2)[0] }

func (s *Server) tapeFile(p string) string { return filepath.Join(s.tape, filepath.FromSlash(p)) }
func (s *Server) diskFile(p string) string { return filepath.Join(s.disk, filepath.FromSlash(p)) }

// drive serves the queue: files of the mounted cartridge first (OrderTape),
// else the oldest file whose cartridge no other drive holds, mounting it.
func (s *Server) drive(i int) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		var pick *list.Element
		for pick == nil && !s.closed {
			for el := s.queue.Front(); el != nil; el = el.Next() {
				q := el.Value.(*queued)
				if s.cfg.Order == OrderTape && s.mounted[i] != "" && cartridge(q.file.Path) == s.mounted[i] {
					pick = el
					break
				}
				if pick == nil && !s.mountedElsewhere(i, cartridge(q.file.Path)) {
					pick = el // the oldest file whose cartridge no other drive holds
				}
			}
			if pick == nil {
				s.cond.Wait()
			}
		}
		if s.closed {
			s.mu.Unlock()
			return
		}
		q := s.queue.Remove(pick).(*queued)
		q.file.State = Started
		if q.req.StartedAt == 0 {
			q.req.StartedAt = time.Now().Unix()
		}
		cart := cartridge(q.file.Path)
		mount := s.mounted[i] != cart
		s.mounted[i] = cart
		s.mu.Unlock()

		if mount {
			time.Sleep(s.cfg.Mount)
			s.mu.Lock()
			s.mounts++
			s.mu.Unlock()
		}
		time.Sleep(s.cfg.Seek)
		err := s.recall(q.file.Path)
		s.mu.Lock()
		switch {
		case q.file.State == Cancelled:
		case err != nil:
			q.file.State, q.file.Error = Failed, err.Error()
			// A failed file is not coming to disk: its request no longer
			// holds it (else a later request's copy could never be evicted).
			s.unpinFile(q.file)
		default:
			q.file.State, q.file.OnDisk = Completed, true
		}
		s.finishIfDone(q.req)
		s.cond.Broadcast()
		s.mu.Unlock()
	}
}

func (s *Server) mountedElsewhere(i int, cart string) bool {
	for j, m := range s.mounted {
		if j != i && m == cart {
			return true
		}
	}
	return false
}

// recall reads a file from tape into the buffer at the drive's rate.
func (s *Server) recall(p string) error {
	s.mu.Lock()
	if s.onDisk[p] {
		s.touch(p)
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	src, err := os.Open(s.tapeFile(p))
	if err != nil {
		return fmt.Errorf("not on tape: %s", p)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	if err := s.reserve(p, st.Size()); err != nil {
		return err
	}
	time.Sleep(time.Duration(float64(st.Size()) / float64(s.cfg.Rate) * float64(time.Second)))
	if err := copyFile(src, s.diskFile(p)); err != nil {
		s.mu.Lock()
		s.used -= st.Size()
		s.mu.Unlock()
		return err
	}
	s.mu.Lock()
	s.onDisk[p] = true
	s.lru = append(s.lru, p)
	s.read += st.Size()
	s.mu.Unlock()
	return nil
}

// reserve makes room in the buffer, evicting files no request pins.
func (s *Server) reserve(p string, size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.used+size > s.cfg.BufferBytes {
		evicted := false
		for k, old := range s.lru {
			if s.pins[old] == 0 {
				s.evict(k)
				evicted = true
				break
			}
		}
		if !evicted {
			return fmt.Errorf("disk buffer full (%d of %d bytes pinned)", s.used, s.cfg.BufferBytes)
		}
	}
	s.used += size
	return nil
}

func (s *Server) evict(k int) {
	p := s.lru[k]
	s.lru = append(s.lru[:k], s.lru[k+1:]...)
	if st, err := os.Stat(s.diskFile(p)); err == nil {
		s.used -= st.Size()
	}
	os.Remove(s.diskFile(p))
	delete(s.onDisk, p)
}

func (s *Server) touch(p string) {
	for k, old := range s.lru {
		if old == p {
			s.lru = append(append(s.lru[:k:k], s.lru[k+1:]...), p)
			return
		}
	}
}

func (s *Server) finishIfDone(r *request) {
	for _, f := range r.Files {
		if f.State == Submitted || f.State == Started {
			return
		}
	}
	if r.CompletedAt == 0 {
		r.CompletedAt = time.Now().Unix()
	}
}

func copyFile(src io.Reader, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := dst + ".part"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, src)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"status": code, "title": http.StatusText(code), "detail": msg})
}

// Handler serves the API and the data door.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/stage", s.stage)
	mux.HandleFunc("GET /api/v1/stage/{id}", s.poll)
	mux.HandleFunc("POST /api/v1/stage/{id}/cancel", s.cancel)
	mux.HandleFunc("DELETE /api/v1/stage/{id}", s.remove)
	mux.HandleFunc("POST /api/v1/release/{id}", s.release)
	mux.HandleFunc("POST /api/v1/archiveinfo", s.archiveInfo)
	mux.HandleFunc("/data/", s.data)
	if s.cfg.Secret == "" {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bearer := r.Header.Get("Authorization") == "Bearer "+s.cfg.Secret
		door, isDoor := strings.CutPrefix(r.URL.Path, "/data")
		signed := isDoor && r.URL.Query().Has("signature") &&
			tape.VerifyQuery(s.cfg.Secret, r.Method, door, r.URL.Query(), time.Now())
		switch {
		case bearer || signed:
			mux.ServeHTTP(w, r)
		case isDoor && r.URL.Query().Has("signature"):
			fail(w, http.StatusForbidden, "signature invalid or expired")
		default:
			fail(w, http.StatusUnauthorized, "a bearer token or a signed URL is required")
		}
	})
}

func (s *Server) stage(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Files []struct {
			Path string `json:"path"`
		} `json:"files"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<20)).Decode(&body); err != nil || len(body.Files) == 0 {
		fail(w, http.StatusBadRequest, "want {\"files\": [{\"path\": ...}, ...]}")
		return
	}
	req := &request{ID: newID(), CreatedAt: time.Now().Unix()}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range body.Files {
		p, ok := clean(f.Path)
		fr := &fileReq{Path: f.Path, State: Submitted}
		req.Files = append(req.Files, fr)
		switch {
		case !ok:
			fr.State, fr.Error = Failed, "bad path: a file sits on a cartridge, /CARTRIDGE/NAME"
		case s.onDisk[p]:
			fr.Path, fr.State, fr.OnDisk, fr.pinned = p, Completed, true, true
			s.pins[p]++
			s.touch(p)
		default:
			fr.Path, fr.pinned = p, true
			s.pins[p]++
			s.queue.PushBack(&queued{req: req, file: fr})
		}
	}
	s.requests[req.ID] = req
	s.finishIfDone(req)
	s.cond.Broadcast()
	writeJSON(w, http.StatusCreated, map[string]string{"requestId": req.ID})
}

func (s *Server) poll(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.requests[r.PathValue("id")]
	if !ok {
		fail(w, http.StatusNotFound, "no such stage request")
		return
	}
	writeJSON(w, http.StatusOK, req)
}

func pathsBody(r *http.Request) ([]string, error) {
	var body struct {
		Paths []string `json:"paths"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<20)).Decode(&body); err != nil {
		return nil, err
	}
	return body.Paths, nil
}

// unpin drops a request's hold on the files named (all when paths is nil).
func (s *Server) unpin(req *request, paths []string, cancel bool) {
	want := map[string]bool{}
	for _, p := range paths {
		if c, ok := clean(p); ok {
			want[c] = true
		}
	}
	for _, f := range req.Files {
		if paths != nil && !want[f.Path] {
			continue
		}
		if cancel && (f.State == Submitted || f.State == Started) {
			f.State = Cancelled
			for el := s.queue.Front(); el != nil; el = el.Next() {
				if q := el.Value.(*queued); q.file == f {
					s.queue.Remove(el)
					break
				}
			}
		}
		s.unpinFile(f)
	}
	s.finishIfDone(req)
}

// unpinFile drops the pin f's request holds on its file, once.
func (s *Server) unpinFile(f *fileReq) {
	if !f.pinned {
		return
	}
	f.pinned = false
	if s.pins[f.Path]--; s.pins[f.Path] <= 0 {
		delete(s.pins, f.Path)
	}
}

// onRequest runs fn on the stage request the URL names, under the lock;
// withPaths first reads a {"paths": [...]} body for it.
func (s *Server) onRequest(w http.ResponseWriter, r *http.Request, withPaths bool, fn func(req *request, paths []string)) {
	var paths []string
	if withPaths {
		var err error
		if paths, err = pathsBody(r); err != nil {
			fail(w, http.StatusBadRequest, "want {\"paths\": [...]}")
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.requests[r.PathValue("id")]
	if !ok {
		fail(w, http.StatusNotFound, "no such stage request")
		return
	}
	fn(req, paths)
	w.WriteHeader(http.StatusOK)
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	s.onRequest(w, r, true, func(req *request, paths []string) { s.unpin(req, paths, true) })
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request) {
	s.onRequest(w, r, false, func(req *request, _ []string) {
		s.unpin(req, nil, true)
		delete(s.requests, req.ID)
	})
}

// release lets the buffer drop files this request staged (they stay on
// disk until space is needed).
func (s *Server) release(w http.ResponseWriter, r *http.Request) {
	s.onRequest(w, r, true, func(req *request, paths []string) { s.unpin(req, paths, false) })
}

func (s *Server) archiveInfo(w http.ResponseWriter, r *http.Request) {
	paths, err := pathsBody(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "want {\"paths\": [...]}")
		return
	}
	out := make([]map[string]string, 0, len(paths))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range paths {
		c, ok := clean(p)
		if !ok {
			out = append(out, map[string]string{"path": p, "error": "bad path"})
			continue
		}
		_, tapeErr := os.Stat(s.tapeFile(c))
		loc := "NONE"
		switch {
		case tapeErr == nil && s.onDisk[c]:
			loc = "DISK_AND_TAPE"
		case tapeErr == nil:
			loc = "TAPE"
		case s.onDisk[c]:
			loc = "DISK"
		}
		out = append(out, map[string]string{"path": c, "locality": loc})
	}
	writeJSON(w, http.StatusOK, out)
}

// ListEntry is one file of a listing.
type ListEntry struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	Adler32 string `json:"adler32"`
	OnDisk  bool   `json:"onDisk"`
}

func (s *Server) data(w http.ResponseWriter, r *http.Request) {
	raw := strings.TrimPrefix(r.URL.Path, "/data")
	if r.Method == http.MethodGet && r.URL.Query().Get("list") != "" {
		s.list(w, raw)
		return
	}
	p, ok := clean(raw)
	if !ok {
		fail(w, http.StatusBadRequest, "bad path: a file sits on a cartridge, /CARTRIDGE/NAME")
		return
	}
	switch r.Method {
	case http.MethodPut:
		s.put(w, r, p)
	case http.MethodHead, http.MethodGet:
		s.get(w, r, p)
	default:
		fail(w, http.StatusMethodNotAllowed, "HEAD, GET or PUT")
	}
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, p string) {
	st, err := os.Stat(s.tapeFile(p))
	if err != nil {
		fail(w, http.StatusNotFound, "no such file")
		return
	}
	w.Header().Set("Last-Modified", st.ModTime().UTC().Format(http.TimeFormat))
	if strings.Contains(strings.ToLower(r.Header.Get("Want-Digest")), "adler32") {
		if sum, err := adler(s.tapeFile(p)); err == nil {
			w.Header().Set("Digest", "adler32="+sum)
		}
	}
	s.mu.Lock()
	on := s.onDisk[p]
	if on {
		s.touch(p)
	}
	s.mu.Unlock()
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Length", fmt.Sprint(st.Size()))
		w.Header().Set("X-Locality", map[bool]string{true: "DISK_AND_TAPE", false: "TAPE"}[on])
		w.WriteHeader(http.StatusOK)
		return
	}
	if !on {
		fail(w, http.StatusConflict, "file is on tape only: stage it first")
		return
	}
	f, err := os.Open(s.diskFile(p))
	if err != nil {
		fail(w, http.StatusConflict, "file left the disk buffer: stage it again")
		return
	}
	defer f.Close()
	http.ServeContent(w, r, "", time.Time{}, f)
}

// put archives a file: written to tape, and kept in the buffer as a fresh write would be.
func (s *Server) put(w http.ResponseWriter, r *http.Request, p string) {
	if err := copyFile(r.Body, s.tapeFile(p)); err != nil {
		fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	st, err := os.Stat(s.tapeFile(p))
	if err != nil {
		fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.mu.Lock()
	if s.onDisk[p] {
		for k, old := range s.lru {
			if old == p {
				s.evict(k)
				break
			}
		}
	}
	s.mu.Unlock()
	if err := s.reserve(p, st.Size()); err == nil {
		src, err := os.Open(s.tapeFile(p))
		if err == nil {
			err = copyFile(src, s.diskFile(p))
			src.Close()
		}
		s.mu.Lock()
		if err == nil {
			s.onDisk[p] = true
			s.lru = append(s.lru, p)
		} else {
			s.used -= st.Size()
		}
		s.mu.Unlock()
	}
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) list(w http.ResponseWriter, prefix string) {
	var out []ListEntry
	_ = filepath.WalkDir(s.tape, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || strings.HasSuffix(p, ".part") {
			return nil
		}
		rel := "/" + filepath.ToSlash(strings.TrimPrefix(p, s.tape+string(filepath.Separator)))
		if !strings.HasPrefix(rel, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		sum, _ := adler(p)
		s.mu.Lock()
		on := s.onDisk[rel]
		s.mu.Unlock()
		out = append(out, ListEntry{Path: rel, Size: info.Size(), Adler32: sum, OnDisk: on})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	if out == nil {
		out = []ListEntry{}
	}
	writeJSON(w, http.StatusOK, out)
}

func adler(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := adler32.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return fmt.Sprintf("%08x", h.Sum32()), nil
}

// Serve runs the emulator on addr until ctx ends.
func Serve(ctx context.Context, addr string, cfg Config) error {
	s, err := New(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	srv := &http.Server{Addr: addr, Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	s.log.Info("tape emulator serving", "addr", addr, "drives", s.cfg.Drives, "mount", s.cfg.Mount, "seek", s.cfg.Seek,
		"rate", s.cfg.Rate, "buffer", s.cfg.BufferBytes)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
