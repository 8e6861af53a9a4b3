// Package client is a typed client for the dispatcher's HTTP API, /api/v1.
// It is what the pando CLI uses, and what Go programs should use rather
// than building requests by hand.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/pando-wms/pando/dispatcher/api"
)

// Client talks to one dispatcher. It is safe for concurrent use.
type Client struct {
	server string // as given, without a trailing slash: used in messages
	base   string // server + api.Prefix
	token  string
	hc     *http.Client
}

// idleConns is how many idle connections a default client keeps to its
// dispatcher. net/http keeps 2, so a program with more calls than that in
// flight (a notebook submitting in parallel, bench latency's open loop)
// closed a TCP connection after nearly every call and dialled a new one: a
// handshake, a TIME_WAIT socket and a fresh server goroutine per request.
const idleConns = 64

// New returns a client for the dispatcher at server ("http://HOST:PORT" or
// https). A nil hc means a client of its own: no overall timeout, which a
// followed log stream needs (bound calls with their contexts), and up to
// idleConns connections kept open for reuse.
func New(server, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("invalid dispatcher address %q: want http://HOST:PORT or https://HOST:PORT", server)
	}
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = idleConns
		hc = &http.Client{Transport: tr}
	}
	s := strings.TrimRight(server, "/")
	return &Client{server: s, base: s + api.Prefix, token: token, hc: hc}, nil
}

// Server returns the dispatcher's address as given to New.
func (c *Client) Server() string { return c.server }

// do sends a request and returns the response if its status is 2xx; any
// other status is turned into an *Error and the body closed.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, ctype string, body io.Reader) (*http.Response, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, errorFrom(resp)
	}
	return resp, nil
}

// call sends a request and decodes a JSON answer into out.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, ctype string, body io.Reader, out any) error {
	resp, err := c.do(ctx, method, path, q, ctype, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: bad answer from dispatcher: %w", method, path, err)
	}
	return nil
}

func (c *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	return c.call(ctx, http.MethodGet, path, q, "", nil, out)
}

// transportError says which dispatcher could not be reached and why, in
// words a user can act on, instead of net/http's "Get URL: dial tcp ...".
// A cancelled or expired context is returned as it is.
func (c *Client) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &reachError{server: c.server, err: err}
}

type reachError struct {
	server string
	err    error
}

func (e *reachError) Error() string {
	return "cannot reach dispatcher at " + e.server + ": " + reason(e.err)
}

func (e *reachError) Unwrap() error { return e.err }

// reason finds the most telling part of a transport error.
func reason(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return "timed out"
		}
		return ue.Err.Error()
	}
	return err.Error()
}
