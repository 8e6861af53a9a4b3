// Package cache is the node and edge data cache: objects content-addressed
// by endpoint, path and checksum, kept on disk under a byte budget with
// least-recently-used eviction, fetched upstream once however many readers
// ask at the same time, and served to payloads over HTTP with ranges.
package cache

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrFull: the object does not fit, even after evicting everything unpinned.
var ErrFull = errors.New("cache: full")

// Key names an object's content: the same path with another checksum is another object.
type Key struct {
	Endpoint, Path, Adler32 string
}

// ID is the key's file name in the cache and its name in URLs.
func (k Key) ID() string {
	h := sha256.Sum256([]byte(k.Endpoint + "\x00" + k.Path + "\x00" + k.Adler32))
	return hex.EncodeToString(h[:16])
}

// Fill writes the object into the file at dst (created by Fill) and
// verifies it; the cache moves it into place only when Fill succeeds.
type Fill func(ctx context.Context, dst string) error

type entry struct {
	id    string
	size  int64
	pins  int
	elem  *list.Element // in lru while present
	ready chan struct{} // closed when the fill ended
	err   error         // the fill's error, once ready
}

// Cache is safe for concurrent use.
type Cache struct {
	dir string
	max int64
	log *slog.Logger

	mu      sync.Mutex
	entries map[string]*entry
	lru     *list.List // front: most recently used; holds present entries only
	used    int64      // bytes of present and reserved entries
	fills   int64      // upstream fills started (for tests and stats)
	version uint64     // changes whenever an object appears or goes
}

// New opens (or creates) a cache in dir bounded by max bytes. Objects a
// previous run left are kept, oldest first in the LRU order.
func New(dir string, max int64, log *slog.Logger) (*Cache, error) {
	if max <= 0 {
		return nil, fmt.Errorf("cache: the byte budget must be positive")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	c := &Cache{dir: dir, max: max, log: log, entries: map[string]*entry{}, lru: list.New()}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type old struct {
		id   string
		size int64
		mod  time.Time
	}
	var olds []old
	for _, de := range des {
		name := de.Name()
		if strings.HasSuffix(name, ".fill") {
			os.Remove(filepath.Join(dir, name)) // a fill the last run did not finish
			continue
		}
		if info, err := de.Info(); err == nil && info.Mode().IsRegular() {
			olds = append(olds, old{name, info.Size(), info.ModTime()})
		}
	}
	sort.Slice(olds, func(i, j int) bool { return olds[i].mod.Before(olds[j].mod) })
	for _, o := range olds {
		e := &entry{id: o.id, size: o.size, ready: make(chan struct{})}
		close(e.ready)
		e.elem = c.lru.PushFront(e) // oldest first: it ends at the back, evicted first
		c.entries[o.id] = e
		c.used += o.size
	}
	c.evict(0)
	return c, nil
}

// Handle is a pinned object: it stays on disk until Release.
type Handle struct {
	c    *Cache
	e    *entry
	once sync.Once
	Path string
	Size int64
}

// Release unpins the object.
func (h *Handle) Release() {
	h.once.Do(func() {
		h.c.mu.Lock()
		h.e.pins--
		h.c.mu.Unlock()
	})
}

// Get returns the object, filling it through fill if absent. Concurrent
// callers for the same key share one fill; a failed fill is not cached.
func (c *Cache) Get(ctx context.Context, k Key, size int64, fill Fill) (*Handle, error) {
	id := k.ID()
	for {
		c.mu.Lock()
		e, ok := c.entries[id]
		if !ok {
			break // fill it, still holding mu
		}
		e.pins++
		c.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			c.unpin(e)
			return nil, ctx.Err()
		}
		if e.err != nil {
			c.unpin(e)
			if errors.Is(e.err, context.Canceled) && ctx.Err() == nil {
				continue // the filler gave up, not us: try again
			}
			return nil, e.err
		}
		c.mu.Lock()
		if e.elem != nil {
			c.lru.MoveToFront(e.elem)
		}
		c.mu.Unlock()
		return &Handle{c: c, e: e, Path: filepath.Join(c.dir, id), Size: e.size}, nil
	}
	// c.mu is held: reserve room and register the fill.
	if !c.evict(size) {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %s needs %d bytes of a %d-byte budget, the rest is in use", ErrFull, k.Path, size, c.max)
	}
	e := &entry{id: id, size: size, pins: 1, ready: make(chan struct{})}
	c.entries[id] = e
	c.used += size
	c.fills++
	c.mu.Unlock()

	err := c.fill(ctx, e, fill)
	c.mu.Lock()
	if err != nil {
		delete(c.entries, id)
		c.used -= size
		e.pins--
	} else {
		e.elem = c.lru.PushFront(e)
		c.version++
	}
	e.err = err
	close(e.ready)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &Handle{c: c, e: e, Path: filepath.Join(c.dir, id), Size: size}, nil
}

func (c *Cache) fill(ctx context.Context, e *entry, fill Fill) error {
	final := filepath.Join(c.dir, e.id)
	tmp := final + ".fill"
	os.Remove(tmp)
	if err := fill(ctx, tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	st, err := os.Stat(tmp)
	if err == nil && st.Size() != e.size {
		err = fmt.Errorf("cache: fill wrote %d bytes, want %d", st.Size(), e.size)
	}
	if err == nil {
		err = os.Chmod(tmp, 0o444)
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func (c *Cache) unpin(e *entry) {
	c.mu.Lock()
	e.pins--
	c.mu.Unlock()
}

// evict makes room for need more bytes by removing unpinned entries from
// the LRU's back. It reports whether the room is there. c.mu is held.
func (c *Cache) evict(need int64) bool {
	for el := c.lru.Back(); el != nil && c.used+need > c.max; {
		e := el.Value.(*entry)
		prev := el.Prev()
		if e.pins == 0 {
			if err := os.Remove(filepath.Join(c.dir, e.id)); err != nil && !errors.Is(err, os.ErrNotExist) {
				c.log.Warn("cache: evict", "id", e.id, "err", err)
			}
			c.lru.Remove(el)
			delete(c.entries, e.id)
			c.used -= e.size
			c.version++
		}
		el = prev
	}
	return c.used+need <= c.max
}

// InputKey is the key of a job's input (wire.InputFile's Source, Adler32
// and Size): the pilot fills the cache under it, and the dispatcher
// computes it to find pilots that hold an input. Without a recorded
// checksum the size tells versions apart.
func InputKey(source, adler32 string, size int64) Key {
	endpoint, path, _ := strings.Cut(source, ":")
	if adler32 == "" {
		adler32 = "size:" + strconv.FormatInt(size, 10)
	}
	return Key{Endpoint: endpoint, Path: path, Adler32: adler32}
}

// Present lists the IDs of the objects on disk, and a version that changes
// whenever that set does.
func (c *Cache) Present() (ids []string, version uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids = make([]string, 0, c.lru.Len())
	for el := c.lru.Front(); el != nil; el = el.Next() {
		ids = append(ids, el.Value.(*entry).id)
	}
	return ids, c.version
}

// Stats is the cache's occupancy.
type Stats struct {
	Objects int   `json:"objects"`
	Bytes   int64 `json:"bytes"`
	Max     int64 `json:"max_bytes"`
	Fills   int64 `json:"fills"`
}

func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Objects: c.lru.Len(), Bytes: c.used, Max: c.max, Fills: c.fills}
}

// Handler serves present objects at /objects/ID, with Range support, so
// that a payload can stream its inputs from the node instead of staging
// them. IDs are unguessable names of content the node holds for its jobs.
func (c *Cache) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := strings.CutPrefix(r.URL.Path, "/objects/")
		if !ok || strings.ContainsAny(id, "/.") || id == "" {
			http.NotFound(w, r)
			return
		}
		c.mu.Lock()
		e, ok := c.entries[id]
		if ok && e.elem != nil {
			e.pins++
			c.lru.MoveToFront(e.elem)
		} else {
			ok = false
		}
		c.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		defer c.unpin(e)
		f, err := os.Open(filepath.Join(c.dir, id))
		if err != nil {
			http.Error(w, "cache: "+err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "", time.Time{}, f)
	})
}
