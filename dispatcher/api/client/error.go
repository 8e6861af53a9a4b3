package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/pando-wms/pando/dispatcher/api"
)

// Error is an error status answered by the dispatcher.
type Error struct {
	Status  int    // HTTP status code
	Message string // api.ErrorResponse.Error, or the body when it was not JSON
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("dispatcher: %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("dispatcher: %s (%d)", e.Message, e.Status)
}

// IsNotFound reports whether err is a 404 from the dispatcher. Tasks and
// jobs of other users are reported as not found too.
func IsNotFound(err error) bool { return hasStatus(err, http.StatusNotFound) }

// IsUnauthorized reports whether the dispatcher refused the token (401).
func IsUnauthorized(err error) bool { return hasStatus(err, http.StatusUnauthorized) }

// IsForbidden reports whether the token's role may not do this (403).
func IsForbidden(err error) bool { return hasStatus(err, http.StatusForbidden) }

func hasStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// errorFrom reads an error body. Proxies in front of a dispatcher answer
// with HTML or plain text, so a body that is not an ErrorResponse is kept
// as text, cut short.
func errorFrom(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var er api.ErrorResponse
	if json.Unmarshal(b, &er) == nil && er.Error != "" {
		return &Error{Status: resp.StatusCode, Message: er.Error}
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return &Error{Status: resp.StatusCode, Message: msg}
}
