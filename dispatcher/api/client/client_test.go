package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pando-wms/pando/dispatcher/api"
)

func TestNewRejectsMalformedAddress(t *testing.T) {
	for _, s := range []string{"", "localhost:7480", "127.0.0.1:7480", "ftp://host", "http://", "http://h:1/?x=1", "://x"} {
		if _, err := New(s, "t", nil); err == nil || !strings.Contains(err.Error(), "invalid dispatcher address") {
			t.Errorf("New(%q) = %v, want an invalid address error", s, err)
		}
	}
	for _, s := range []string{"http://127.0.0.1:7480", "https://pando.example.org/", "http://h:1/prefix"} {
		if _, err := New(s, "t", nil); err != nil {
			t.Errorf("New(%q): %v", s, err)
		}
	}
}

// request is what the fake server saw.
type request struct {
	method, path, query, auth, ctype, body string
}

// recorder answers every request with status and answer, and records it.
func recorder(t *testing.T, status int, answer string) (*Client, *request) {
	t.Helper()
	var got request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL+"/", "s3cret", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c, &got
}

func TestEndpoints(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		answer string
		call   func(c *Client) (any, error)
		want   request
		result string // fmt %+v of the decoded answer
	}{
		{"submit", `{"id":7,"jobs":3}`,
			func(c *Client) (any, error) { return c.Submit(ctx, []byte("name: x\n")) },
			request{"POST", "/api/v1/tasks", "", "", "application/yaml", "name: x\n"}, "{ID:7 Jobs:3}"},
		{"tasks", `[{"id":1,"name":"a"}]`,
			func(c *Client) (any, error) { return c.Tasks(ctx, 10, 5) },
			request{"GET", "/api/v1/tasks", "after=5&limit=10", "", "", ""}, "1 a"},
		{"tasks defaults", `[]`,
			func(c *Client) (any, error) { return c.Tasks(ctx, 0, 0) },
			request{"GET", "/api/v1/tasks", "", "", "", ""}, ""},
		{"task", `{"id":3,"counts":{"finished":2}}`,
			func(c *Client) (any, error) { return c.Task(ctx, 3) },
			request{"GET", "/api/v1/tasks/3", "", "", "", ""}, "3 map[finished:2]"},
		{"jobs", `[{"id":4,"task":3}]`,
			func(c *Client) (any, error) { return c.Jobs(ctx, 3, "failed", 2, 1) },
			request{"GET", "/api/v1/jobs", "after=1&limit=2&state=failed&task=3", "", "", ""}, "4 3"},
		{"job", `{"id":4,"attempts":[{"attempt":1}]}`,
			func(c *Client) (any, error) { return c.Job(ctx, 4) },
			request{"GET", "/api/v1/jobs/4", "", "", "", ""}, "4 1"},
		{"kill", `{"id":3,"kind":"task","affected":2}`,
			func(c *Client) (any, error) { return c.Kill(ctx, 3) },
			request{"POST", "/api/v1/kill/3", "", "", "", ""}, "{ID:3 Kind:task Affected:2}"},
		{"retry", `{"id":4,"kind":"job","affected":1}`,
			func(c *Client) (any, error) { return c.Retry(ctx, 4) },
			request{"POST", "/api/v1/retry/4", "", "", "", ""}, "{ID:4 Kind:job Affected:1}"},
		{"token", `{"token":"tok","name":"bob","role":"user"}`,
			func(c *Client) (any, error) { return c.CreateToken(ctx, "user", "bob") },
			request{"POST", "/api/v1/tokens", "", "", "application/json", `{"role":"user","name":"bob"}`}, "{Token:tok Name:bob Role:user}"},
		{"whoami", `{"name":"bob","role":"user"}`,
			func(c *Client) (any, error) { return c.Whoami(ctx) },
			request{"GET", "/api/v1/whoami", "", "", "", ""}, "{Name:bob Role:user}"},
		{"agents", `[{"id":"a1","resources":{"cores":8}}]`,
			func(c *Client) (any, error) { return c.Agents(ctx) },
			request{"GET", "/api/v1/agents", "", "", "", ""}, "a1 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, got := recorder(t, http.StatusOK, tt.answer)
			v, err := tt.call(c)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.auth = "Bearer s3cret"
			if *got != tt.want {
				t.Errorf("request = %+v\nwant      %+v", *got, tt.want)
			}
			if s := summary(v); s != tt.result {
				t.Errorf("result = %q, want %q", s, tt.result)
			}
		})
	}
}

// summary prints the fields the endpoint tests check.
func summary(v any) string {
	switch v := v.(type) {
	case []api.Task:
		var s []string
		for _, t := range v {
			s = append(s, fmt.Sprint(t.ID, " ", t.Name))
		}
		return strings.Join(s, ",")
	case api.Task:
		return fmt.Sprint(v.ID, " ", v.Counts)
	case []api.Job:
		return fmt.Sprint(v[0].ID, " ", v[0].Task)
	case api.Job:
		return fmt.Sprint(v.ID, " ", v.Attempts[0].Attempt)
	case []api.Agent:
		return fmt.Sprint(v[0].ID, " ", v[0].Resources.Cores)
	}
	return fmt.Sprintf("%+v", v)
}

func TestErrorStatuses(t *testing.T) {
	tests := []struct {
		status       int
		body         string
		notFound     bool
		unauthorized bool
		text         string
	}{
		{404, `{"error":"task 9 not found"}`, true, false, "dispatcher: task 9 not found (404)"},
		{401, `{"error":"bad token"}`, false, true, "dispatcher: bad token (401)"},
		{403, `{"error":"admin only"}`, false, false, "dispatcher: admin only (403)"},
		{502, "<html>Bad Gateway</html>\n", false, false, "dispatcher: <html>Bad Gateway</html> (502)"},
		{500, "", false, false, "dispatcher: 500 Internal Server Error"},
	}
	for _, tt := range tests {
		c, _ := recorder(t, tt.status, tt.body)
		_, err := c.Task(context.Background(), 9)
		var e *Error
		if !errors.As(err, &e) || e.Status != tt.status {
			t.Fatalf("status %d: err = %v, want an *Error", tt.status, err)
		}
		if IsNotFound(err) != tt.notFound || IsUnauthorized(err) != tt.unauthorized {
			t.Errorf("status %d: IsNotFound %v, IsUnauthorized %v", tt.status, IsNotFound(err), IsUnauthorized(err))
		}
		if IsNotFound(fmt.Errorf("wrapped: %w", err)) != tt.notFound {
			t.Errorf("status %d: IsNotFound does not see through wrapping", tt.status)
		}
		if err.Error() != tt.text {
			t.Errorf("status %d: text %q, want %q", tt.status, err.Error(), tt.text)
		}
	}
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close()
	c, err := New(addr, "t", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Whoami(context.Background())
	want := "cannot reach dispatcher at " + addr + ": connection refused"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

func TestCancelledContext(t *testing.T) {
	c, _ := recorder(t, 200, `{}`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Whoami(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// firstWrite signals when the first bytes reach it.
type firstWrite struct {
	strings.Builder
	got chan struct{}
}

func (w *firstWrite) Write(p []byte) (int, error) {
	if w.Len() == 0 {
		close(w.got)
	}
	return w.Builder.Write(p)
}

func TestLogsStreams(t *testing.T) {
	release := make(chan struct{})
	var query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.RawQuery
		io.WriteString(w, "line 1\n")
		w.(http.Flusher).Flush()
		<-release // the rest comes only once the client has seen line 1
		io.WriteString(w, "line 2\n")
	}))
	defer srv.Close()
	c, _ := New(srv.URL, "t", srv.Client())
	w := &firstWrite{got: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- c.Logs(context.Background(), 4, true, 10, 2, w) }()
	select {
	case <-w.got:
		close(release)
	case <-time.After(10 * time.Second):
		t.Fatal("no log bytes before the stream ended: not streamed")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if w.String() != "line 1\nline 2\n" {
		t.Errorf("log = %q", w.String())
	}
	if query != "attempt=2&follow=true&offset=10" {
		t.Errorf("query = %q", query)
	}
}

func TestLogsBrokenStream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "short")
	}))
	defer srv.Close()
	c, _ := New(srv.URL, "t", srv.Client())
	var b strings.Builder
	err := c.Logs(context.Background(), 4, false, 0, 0, &b)
	if err == nil || !strings.Contains(err.Error(), "log stream from dispatcher at "+srv.URL+" broke") {
		t.Fatalf("err = %v", err)
	}
	if b.String() != "short" {
		t.Errorf("log = %q", b.String())
	}
}
