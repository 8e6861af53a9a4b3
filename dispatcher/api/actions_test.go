package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/pando-wms/pando/dispatcher/store"
)

func TestKillRetry(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.token(store.RoleUser, "alice"), e.token(store.RoleUser, "bob")
	ta, tb := e.submit(alice), e.submit(bob)
	ja, jb := e.jobs(ta)[4].ID, e.jobs(tb)[4].ID

	// bob's work, and work that does not exist, is not found for alice and
	// never reaches the backend.
	for _, id := range []int64{tb, jb, 999999} {
		e.fails("POST", fmt.Sprint("/kill/", id), alice, "", http.StatusNotFound)
		e.fails("POST", fmt.Sprint("/retry/", id), alice, "", http.StatusNotFound)
	}
	e.fails("POST", "/kill/x", alice, "", http.StatusBadRequest)
	e.fails("POST", "/retry/0", alice, "", http.StatusBadRequest)
	if kills, retries := e.be.calls(); len(kills)+len(retries) != 0 {
		t.Fatalf("backend called: kills %v, retries %v", kills, retries)
	}

	// alice acts on her task and her job; the backend's answer is passed on.
	var r ActionResponse
	e.ok("POST", fmt.Sprint("/kill/", ta), alice, "", http.StatusOK, &r)
	if r != (ActionResponse{ID: ta, Kind: "task", Affected: 7}) {
		t.Errorf("kill = %+v", r)
	}
	e.ok("POST", fmt.Sprint("/kill/", ja), alice, "", http.StatusOK, nil)
	e.ok("POST", fmt.Sprint("/retry/", ja), alice, "", http.StatusOK, &r)
	if r != (ActionResponse{ID: ja, Kind: "job", Affected: 1}) {
		t.Errorf("retry = %+v", r)
	}
	e.ok("POST", fmt.Sprint("/retry/", ta), alice, "", http.StatusOK, nil)

	// Staff act on anyone's work.
	for _, role := range []store.Role{store.RoleOperator, store.RoleAdmin} {
		tok := e.token(role, "staff")
		e.ok("POST", fmt.Sprint("/kill/", tb), tok, "", http.StatusOK, nil)
		e.ok("POST", fmt.Sprint("/retry/", jb), tok, "", http.StatusOK, nil)
	}

	kills, retries := e.be.calls()
	if want := []int64{ta, ja, tb, tb}; !slices.Equal(kills, want) {
		t.Errorf("kills %v, want %v", kills, want)
	}
	if want := []int64{ja, ta, jb, jb}; !slices.Equal(retries, want) {
		t.Errorf("retries %v, want %v", retries, want)
	}
}

func TestLogs(t *testing.T) {
	e := newEnv(t)
	alice := e.token(store.RoleUser, "alice")
	js := e.jobs(e.submit(alice))
	job := e.finish(js[0], store.Finished, 0)
	e.writeLog(job.ID, 1, "hello from job 0\n")

	get := func(q string) string {
		t.Helper()
		status, data := e.call("GET", fmt.Sprintf("/jobs/%d/logs%s", job.ID, q), alice, "")
		if status != http.StatusOK {
			t.Fatalf("logs%s = %d %s", q, status, data)
		}
		return string(data)
	}
	if got := get(""); got != "hello from job 0\n" {
		t.Errorf("logs = %q", got)
	}
	if got := get("?offset=6"); got != "from job 0\n" {
		t.Errorf("offset 6 = %q", got)
	}
	if got := get("?offset=1000"); got != "" {
		t.Errorf("offset past the end = %q", got)
	}
	// A job that has not run, and an attempt without output, have empty logs.
	status, data := e.call("GET", fmt.Sprintf("/jobs/%d/logs", js[1].ID), alice, "")
	if status != http.StatusOK || len(data) != 0 {
		t.Errorf("logs of a job that has not run = %d %q", status, data)
	}
	if got := get("?attempt=2"); got != "" {
		t.Errorf("attempt 2 = %q", got)
	}
	e.writeLog(job.ID, 2, "second try\n")
	if got := get("?attempt=2"); got != "second try\n" {
		t.Errorf("attempt 2 = %q", got)
	}
	// Not following a job that is done returns at once.
	if got := get("?follow=true"); got != "hello from job 0\n" {
		t.Errorf("follow of a finished job = %q", got)
	}

	for _, q := range []string{"?offset=x", "?offset=-1", "?attempt=x", "?attempt=-1"} {
		e.fails("GET", fmt.Sprintf("/jobs/%d/logs%s", job.ID, q), alice, "", http.StatusBadRequest)
	}
	e.fails("GET", "/jobs/999999/logs", alice, "", http.StatusNotFound)
}

func TestLogsHeaders(t *testing.T) {
	e := newEnv(t)
	alice := e.token(store.RoleUser, "alice")
	job := e.finish(e.jobs(e.submit(alice))[0], store.Finished, 0)
	e.writeLog(job.ID, 1, "<script>alert(1)</script>\n")
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/jobs/%d/logs", e.url, job.ID), nil)
	req.Header.Set("Authorization", "Bearer "+alice)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if n := resp.Header.Get("X-Content-Type-Options"); n != "nosniff" {
		t.Errorf("X-Content-Type-Options %q", n)
	}
}

func TestLogsFollow(t *testing.T) {
	e := newEnv(t)
	alice := e.token(store.RoleUser, "alice")
	job := e.jobs(e.submit(alice))[3]
	job.State, job.Attempt = store.Running, 1
	e.be.setLive(job)
	e.writeLog(job.ID, 1, "first\n")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/jobs/%d/logs?follow=true", e.url, job.ID), nil)
	req.Header.Set("Authorization", "Bearer "+alice)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	read := func(want string) {
		t.Helper()
		buf := make([]byte, len(want))
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != want {
			t.Fatalf("read %q, %v; want %q", buf, err, want)
		}
	}
	read("first\n")
	e.writeLog(job.ID, 1, "second\n")
	read("second\n")
	e.writeLog(job.ID, 1, "third\n")
	e.be.endLive(job.ID)
	// The stream ends once the job is no longer live, with what it wrote
	// last.
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "third\n" {
		t.Errorf("rest %q, %v; want \"third\\n\" and the end", rest, err)
	}
}

func TestLogsFollowNextAttempt(t *testing.T) {
	e := newEnv(t)
	alice := e.token(store.RoleUser, "alice")
	job := e.jobs(e.submit(alice))[0]
	job.State, job.Attempt = store.Running, 1
	e.be.setLive(job)
	e.writeLog(job.ID, 1, "one\n")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/jobs/%d/logs?follow=1", e.url, job.ID), nil)
	req.Header.Set("Authorization", "Bearer "+alice)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "one\n" {
		t.Fatalf("read %q, %v", buf, err)
	}
	// A retry starts attempt 2; the follower moves on to its log.
	e.writeLog(job.ID, 2, "two\n")
	job.Attempt = 2
	e.be.setLive(job)
	buf = make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "two\n" {
		t.Fatalf("read %q, %v", buf, err)
	}
	e.be.endLive(job.ID)
	if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
		t.Errorf("rest %q, %v", rest, err)
	}
}

// A follower that goes away does not keep the handler running.
func TestLogsFollowClientGone(t *testing.T) {
	e := newEnv(t)
	alice := e.token(store.RoleUser, "alice")
	job := e.jobs(e.submit(alice))[0]
	job.State, job.Attempt = store.Running, 1
	e.be.setLive(job)
	e.writeLog(job.ID, 1, "x\n")

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/jobs/%d/logs?follow=true", e.url, job.ID), nil)
	req.Header.Set("Authorization", "Bearer "+alice)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	// httptest.Server.Close, at cleanup, waits for the handler: the test
	// hangs if it does not see the client go.
}
