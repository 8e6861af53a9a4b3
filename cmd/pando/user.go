package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pando-wms/pando/dispatcher/api/client"
)

// defaultServer is where a dispatcher started with no flags listens.
const defaultServer = "http://127.0.0.1:7480"

// userCLI holds what the user commands share. Its fields are set once, by
// addUserCommands or a test, so the commands need no globals.
type userCLI struct {
	server, token, tokenFile string // the persistent flags

	getenv   func(string) string
	poll     time.Duration          // how often wait asks the dispatcher
	terminal func(w io.Writer) bool // whether wait may draw a progress bar
	retryFor time.Duration          // how long wait and logs -f ride out a lost dispatcher
}

// addUserCommands adds the user CLI (submit, tasks, jobs, ...) and its
// persistent flags --server, --token and --token-file to root.
func addUserCommands(root *cobra.Command) {
	u := &userCLI{getenv: os.Getenv, poll: 500 * time.Millisecond, terminal: isTerminal, retryFor: time.Minute}
	u.add(root)
}

func (u *userCLI) add(root *cobra.Command) {
	server := u.getenv("PANDO_SERVER")
	if server == "" {
		server = defaultServer
	}
	f := root.PersistentFlags()
	f.StringVar(&u.server, "server", server, "dispatcher address (env PANDO_SERVER)")
	// The token flags have no env default: help would print the secret.
	// The environment is read when a command runs, in resolveToken.
	f.StringVar(&u.token, "token", "", "API token (default $PANDO_TOKEN)")
	f.StringVar(&u.tokenFile, "token-file", "", "file holding the API token (default $PANDO_TOKEN_FILE)")
	cmds := []*cobra.Command{
		u.submitCmd(), u.tasksCmd(), u.jobsCmd(), u.jobCmd(), u.logsCmd(),
		u.actionCmd("kill", "killed", "Cancel a task's live jobs, or one job"),
		u.actionCmd("retry", "retried", "Retry a task's failed and cancelled jobs, or one job"),
		u.waitCmd(), u.tokenCmd(), u.whoamiCmd(), u.agentsCmd(), u.workersCmd(),
		u.queueCmd(), u.shareCmd(), u.sharesCmd(),
	}
	for _, c := range cmds {
		silenceErrors(c)
		root.AddCommand(c)
	}
}

// silenceErrors leaves printing errors to main, which also maps them to
// exit statuses.
func silenceErrors(c *cobra.Command) {
	c.SilenceErrors = true
	for _, sub := range c.Commands() {
		silenceErrors(sub)
	}
}

// run wraps a command's body. Usage is shown for a bad command line, which
// cobra finds before the body runs, but not for a failure of the body.
func run(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cmd.SilenceUsage = true
		return f(cmd, args)
	}
}

// client connects to --server with the resolved token.
func (u *userCLI) client() (*client.Client, error) {
	tok, err := u.resolveToken()
	if err != nil {
		return nil, err
	}
	return client.New(u.server, tok, nil)
}

// idClient parses a command's ID argument and opens the API client: the
// start of every command that acts on one job or task.
func (u *userCLI) idClient(arg string) (int64, *client.Client, error) {
	id, err := parseID(arg)
	if err != nil {
		return 0, nil, err
	}
	c, err := u.client()
	return id, c, err
}

// resolveToken applies the precedence --token, --token-file, PANDO_TOKEN,
// PANDO_TOKEN_FILE.
func (u *userCLI) resolveToken() (string, error) {
	switch {
	case u.token != "":
		return u.token, nil
	case u.tokenFile != "":
		return readToken(u.tokenFile)
	case u.getenv("PANDO_TOKEN") != "":
		return strings.TrimSpace(u.getenv("PANDO_TOKEN")), nil
	case u.getenv("PANDO_TOKEN_FILE") != "":
		return readToken(u.getenv("PANDO_TOKEN_FILE"))
	}
	return "", fmt.Errorf("no token: set PANDO_TOKEN or PANDO_TOKEN_FILE, or pass --token-file")
}

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return tok, nil
}

// exitError asks main to exit with code after printing msg (if any).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// ExitCode is the process exit status main should use.
func (e *exitError) ExitCode() int { return e.code }

// parseID reads a task or job ID argument.
func parseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("invalid ID %q: want a positive number", s)
	}
	return id, nil
}
