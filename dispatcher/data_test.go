package dispatcher

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pando-wms/pando/dispatcher/broker"
	"github.com/pando-wms/pando/dispatcher/store"
	"github.com/pando-wms/pando/dispatcher/task"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/plugins/storage"
	_ "github.com/pando-wms/pando/plugins/storage/s3"
	"github.com/pando-wms/pando/plugins/storage/s3/s3test"
)

// pushes records what the broker sends one agent.
type pushes struct {
	mu   sync.Mutex
	sent []wire.Message
}

func (p *pushes) Send(m []wire.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent = append(p.sent, m...)
	return nil
}
func (p *pushes) Close(int, string)   {}
func (p *pushes) LastSeen() time.Time { return time.Now() }

// A pilot whose input URL expired gets a fresh one for the same object, and
// PUT URLs for its outputs under the task's path template; a stranger or a
// stale attempt gets nothing.
func TestURLRequests(t *testing.T) {
	srv := s3test.Start(t, "data", "out")
	ctx := context.Background()
	ep, err := storage.New(ctx, storage.Config{Name: "lake", Kind: "s3", URL: srv.URL, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ep.Put(ctx, "data", "in/a.dat", strings.NewReader("input bytes")); err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: Config{Storage: storage.Set{"lake": ep}}, log: slog.New(slog.DiscardHandler),
		broker: broker.New(broker.Config{AgentTimeout: time.Minute, Grace: time.Minute}, slog.New(slog.DiscardHandler))}
	spec := &task.Spec{Name: "t", Command: []string{"x"}, Jobs: 1, MaxAttempts: 1, FilesPerJob: 1,
		Resources: task.Resources{Cores: 1, MemoryBytes: 1 << 20, Walltime: time.Minute},
		Inputs:    &task.Inputs{Endpoint: "lake", Bucket: "data", Prefix: "in/"},
		Outputs:   &task.Outputs{Endpoint: "lake", Bucket: "out", Path: "{task}/{job}/", Patterns: []string{"*"}}}
	s.broker.Submit(store.NewTask{Task: store.Task{ID: 1, MaxAttempts: 1},
		Jobs:  []store.Job{{ID: 2, TaskID: 1, State: store.Ready, MaxAttempts: 1}},
		Files: []store.File{{JobID: 2, TaskID: 1, Dir: store.Input, Name: "a.dat", Endpoint: "lake", Bucket: "data", Path: "in/a.dat", Size: 11}},
	}, spec, func(error) {})
	p := &pushes{}
	if _, err := s.broker.Connect(&wire.Hello{Version: wire.Version, AgentID: "a1", Name: "p1"}, p); err != nil {
		t.Fatal(err)
	}
	s.broker.Want("a1", p, &wire.Want{Slots: 1, Cores: 1, MemoryBytes: 1 << 30})
	_, after := s.broker.TakeBatch()
	for _, f := range after {
		f(nil)
	}
	if len(p.sent) != 1 {
		t.Fatalf("pushed %v, want one Assign", p.sent)
	}

	u := s.urls("a1", &wire.URLRequest{JobID: 2, Attempt: 1, Inputs: []string{"a.dat"}, Outputs: []string{"sub/r.txt"}})
	if u.Code != 0 || len(u.Inputs) != 1 || len(u.Outputs) != 1 {
		t.Fatalf("urls = %+v", u)
	}
	resp, err := http.Get(u.Inputs[0])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "input bytes" {
		t.Errorf("renewed input URL served %q (%s)", body, resp.Status)
	}
	req, _ := http.NewRequest(http.MethodPut, u.Outputs[0], bytes.NewReader([]byte("result")))
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT to the output URL: %v %v", resp, err)
	}
	resp.Body.Close()
	if inf, err := ep.Stat(ctx, "out", "1/2/sub/r.txt"); err != nil || inf.Size != 6 {
		t.Errorf("output stored as %+v, %v; want out/1/2/sub/r.txt", inf, err)
	}
	for _, bad := range []struct {
		agent string
		req   wire.URLRequest
	}{
		{"a2", wire.URLRequest{JobID: 2, Attempt: 1, Inputs: []string{"a.dat"}}},
		{"a1", wire.URLRequest{JobID: 2, Attempt: 2, Inputs: []string{"a.dat"}}},
		{"a1", wire.URLRequest{JobID: 2, Attempt: 1, Inputs: []string{"other.dat"}}},
		{"a1", wire.URLRequest{JobID: 2, Attempt: 1, Outputs: []string{"../escape"}}},
	} {
		if u := s.urls(bad.agent, &bad.req); u.Code == 0 || len(u.Inputs)+len(u.Outputs) > 0 {
			t.Errorf("urls(%s, %+v) = %+v; want refused", bad.agent, bad.req, u)
		}
	}
}
