package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/pando-wms/pando/dispatcher/api"
	"github.com/pando-wms/pando/dispatcher/queue"
	"github.com/pando-wms/pando/dispatcher/share"
)

// Submit sends a task file (YAML, or JSON, which is YAML too).
func (c *Client) Submit(ctx context.Context, taskFile []byte) (api.SubmitResponse, error) {
	var r api.SubmitResponse
	err := c.call(ctx, http.MethodPost, "/tasks", nil, "application/yaml", bytes.NewReader(taskFile), &r)
	return r, err
}

// Tasks lists tasks by ascending ID, those after ID after; limit 0 and
// after 0 leave the dispatcher's defaults.
func (c *Client) Tasks(ctx context.Context, limit int, after int64) ([]api.Task, error) {
	var r []api.Task
	err := c.get(ctx, "/tasks", page(nil, limit, after), &r)
	return r, err
}

// Task returns one task, with its spec.
func (c *Client) Task(ctx context.Context, id int64) (api.Task, error) {
	var r api.Task
	err := c.get(ctx, "/tasks/"+itoa(id), nil, &r)
	return r, err
}

// Jobs lists jobs, of one task when task is not 0, in one state when state
// is not empty.
func (c *Client) Jobs(ctx context.Context, task int64, state string, limit int, after int64) ([]api.Job, error) {
	q := url.Values{}
	if task != 0 {
		q.Set("task", itoa(task))
	}
	if state != "" {
		q.Set("state", state)
	}
	var r []api.Job
	err := c.get(ctx, "/jobs", page(q, limit, after), &r)
	return r, err
}

// Job returns one job, with its attempts.
func (c *Client) Job(ctx context.Context, id int64) (api.Job, error) {
	var r api.Job
	err := c.get(ctx, "/jobs/"+itoa(id), nil, &r)
	return r, err
}

// Logs copies a job's log to w as it arrives, from byte offset on, of the
// given attempt (0: the current one). With follow, it returns when the
// dispatcher ends the stream, which it does when the attempt ends.
func (c *Client) Logs(ctx context.Context, id int64, follow bool, offset int64, attempt int, w io.Writer) error {
	q := url.Values{}
	if follow {
		q.Set("follow", "true")
	}
	if offset > 0 {
		q.Set("offset", itoa(offset))
	}
	if attempt > 0 {
		q.Set("attempt", strconv.Itoa(attempt))
	}
	resp, err := c.do(ctx, http.MethodGet, "/jobs/"+itoa(id)+"/logs", q, "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body := &readTracker{r: resp.Body}
	_, err = io.Copy(w, body)
	if err != nil && err == body.err {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("log stream from dispatcher at %s broke: %w", c.server, err)
	}
	return err // nil, or from w
}

// readTracker remembers a read error, so that Logs can tell a broken
// stream (the dispatcher's side) from a failed write (the caller's).
type readTracker struct {
	r   io.Reader
	err error
}

func (t *readTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}

// Kill cancels a task's live jobs, or one job.
func (c *Client) Kill(ctx context.Context, id int64) (api.ActionResponse, error) {
	return c.action(ctx, "/kill/", id)
}

// Retry requeues a task's failed or cancelled jobs, or one job.
func (c *Client) Retry(ctx context.Context, id int64) (api.ActionResponse, error) {
	return c.action(ctx, "/retry/", id)
}

func (c *Client) action(ctx context.Context, path string, id int64) (api.ActionResponse, error) {
	var r api.ActionResponse
	err := c.call(ctx, http.MethodPost, path+itoa(id), nil, "", nil, &r)
	return r, err
}

// CreateToken makes a new token (admin only); its secret is in the answer
// and nowhere else.
func (c *Client) CreateToken(ctx context.Context, role, name string) (api.TokenResponse, error) {
	body, err := json.Marshal(api.TokenRequest{Role: role, Name: name})
	if err != nil {
		return api.TokenResponse{}, err
	}
	var r api.TokenResponse
	err = c.call(ctx, http.MethodPost, "/tokens", nil, "application/json", bytes.NewReader(body), &r)
	return r, err
}

// Whoami describes the token's owner.
func (c *Client) Whoami(ctx context.Context) (api.Whoami, error) {
	var r api.Whoami
	err := c.get(ctx, "/whoami", nil, &r)
	return r, err
}

// Agents lists connected and recently lost agents (operator and admin).
func (c *Client) Agents(ctx context.Context) ([]api.Agent, error) {
	var r []api.Agent
	err := c.get(ctx, "/agents", nil, &r)
	return r, err
}

// Workers lists the batch workers harvesters reported, of one queue or all.
func (c *Client) Workers(ctx context.Context, queue string) ([]api.Worker, error) {
	var r []api.Worker
	q := url.Values{}
	if queue != "" {
		q.Set("queue", queue)
	}
	err := c.get(ctx, "/workers", q, &r)
	return r, err
}

func page(q url.Values, limit int, after int64) url.Values {
	if q == nil {
		q = url.Values{}
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if after > 0 {
		q.Set("after", itoa(after))
	}
	return q
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Queues lists the queues.
func (c *Client) Queues(ctx context.Context) ([]api.Queue, error) {
	var r []api.Queue
	err := c.get(ctx, "/queues", nil, &r)
	return r, err
}

// Queue returns one queue.
func (c *Client) Queue(ctx context.Context, name string) (api.Queue, error) {
	var r api.Queue
	err := c.get(ctx, "/queues/"+url.PathEscape(name), nil, &r)
	return r, err
}

// CreateQueue creates a queue; it fails if one of that name exists.
func (c *Client) CreateQueue(ctx context.Context, q queue.Queue) (api.Queue, error) {
	return c.sendQueue(ctx, http.MethodPost, "/queues", q)
}

// PutQueue replaces an existing queue's definition.
func (c *Client) PutQueue(ctx context.Context, q queue.Queue) (api.Queue, error) {
	return c.sendQueue(ctx, http.MethodPut, "/queues/"+url.PathEscape(q.Name), q)
}

func (c *Client) sendQueue(ctx context.Context, method, path string, q queue.Queue) (api.Queue, error) {
	body, err := json.Marshal(q)
	if err != nil {
		return api.Queue{}, err
	}
	var r api.Queue
	err = c.call(ctx, method, path, nil, "application/json", bytes.NewReader(body), &r)
	return r, err
}

// Shares lists every share with its target and achieved fraction.
func (c *Client) Shares(ctx context.Context) ([]share.Status, error) {
	var r []share.Status
	err := c.get(ctx, "/shares", nil, &r)
	return r, err
}

// SetShare sets a share's target in percent of its parent.
func (c *Client) SetShare(ctx context.Context, path string, target float64) ([]share.Status, error) {
	body, err := json.Marshal(api.ShareRequest{Target: target})
	if err != nil {
		return nil, err
	}
	var r []share.Status
	err = c.call(ctx, http.MethodPut, "/shares/"+path, nil, "application/json", bytes.NewReader(body), &r)
	return r, err
}

// UnsetShare removes a share's target.
func (c *Client) UnsetShare(ctx context.Context, path string) ([]share.Status, error) {
	var r []share.Status
	err := c.call(ctx, http.MethodDelete, "/shares/"+path, nil, "", nil, &r)
	return r, err
}

// Why explains why a job does not run.
func (c *Client) Why(ctx context.Context, id int64) (api.Why, error) {
	var r api.Why
	err := c.get(ctx, "/jobs/"+itoa(id)+"/why", nil, &r)
	return r, err
}
