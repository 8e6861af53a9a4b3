package batch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// Exec runs a batch system command with the configuration's timeout and
// returns its standard output. A command that hangs past the timeout or
// cannot start is ErrUnavailable; one that fails carries its standard error.
func (c Config) Exec(ctx context.Context, name string, args ...string) (string, error) {
	if c.Bin != "" {
		name = filepath.Join(c.Bin, name)
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	// A hung command is killed with whatever it started (its process
	// group), and its pipes are not waited on for long.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return "", fmt.Errorf("%w: %s did not answer within %s", ErrUnavailable, filepath.Base(name), c.Timeout)
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), &CommandError{Command: filepath.Base(name), Code: ee.ExitCode(), Stderr: strings.TrimSpace(errb.String())}
	case err != nil:
		return "", fmt.Errorf("%w: %s: %v", ErrUnavailable, filepath.Base(name), err)
	}
	return out.String(), nil
}

// CommandError is a batch command that exited non-zero.
type CommandError struct {
	Command string
	Code    int
	Stderr  string
}

func (e *CommandError) Error() string {
	msg := e.Stderr
	if len(msg) > 500 {
		msg = msg[:500] + "..."
	}
	return fmt.Sprintf("%s exited %d: %s", e.Command, e.Code, msg)
}

// ShellQuote quotes s for a POSIX shell.
func ShellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ShellCommand quotes a command line for a job script.
func ShellCommand(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = ShellQuote(a)
	}
	return strings.Join(q, " ")
}

// JobTemplate parses the configuration's job script template, or def when
// it has none.
func (c Config) JobTemplate(def string) (*template.Template, error) {
	text := c.Template
	if text == "" {
		text = def
	}
	t, err := template.New(c.Kind).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %s job template: %v", ErrConfig, c.Kind, err)
	}
	return t, nil
}

// Classify tells a refused request from a batch system that cannot be
// reached: a failed command whose error output holds one of down is
// ErrUnavailable, any other ErrRejected.
func Classify(err error, down ...string) error {
	var ce *CommandError
	switch {
	case !errors.As(err, &ce):
		return err
	case Says(err, down...):
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return fmt.Errorf("%w: %v", ErrRejected, err)
}

// Says reports whether err is a failed command whose error output holds
// one of texts.
func Says(err error, texts ...string) bool {
	var ce *CommandError
	if !errors.As(err, &ce) {
		return false
	}
	for _, t := range texts {
		if strings.Contains(ce.Stderr, t) {
			return true
		}
	}
	return false
}

// Pick returns the statuses of ids from those a listing found; the others
// are Missing, for reason.
func Pick(known map[string]Status, ids []string, reason string) map[string]Status {
	res := make(map[string]Status, len(ids))
	for _, id := range ids {
		st, ok := known[id]
		if !ok {
			st = Status{ID: id, State: Missing, Reason: reason}
		}
		res[id] = st
	}
	return res
}
