package errcode_test

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"

	"github.com/pando-wms/pando/dispatcher/errcode"
)

// classByDigit is the class each thousands digit stands for.
var classByDigit = map[int]string{
	1: errcode.ClassPilot,
	2: errcode.ClassPayload,
	3: errcode.ClassDispatcher,
	4: errcode.ClassStaging,
}

func TestTable(t *testing.T) {
	entries := errcode.Table()
	if len(entries) == 0 {
		t.Fatal("empty table")
	}
	names := map[string]errcode.Code{}
	for i, e := range entries {
		c := e.Code
		if i > 0 && entries[i-1].Code >= c {
			t.Errorf("Table not in numeric order at %d: %d after %d", i, c, entries[i-1].Code)
		}
		if !c.Known() {
			t.Errorf("%d listed but not Known", c)
		}
		if e.Name == "" || e.Name != c.Name() || strings.HasPrefix(e.Name, "code_") {
			t.Errorf("%d: bad name %q (Name() %q)", c, e.Name, c.Name())
		}
		if e.Name != strings.ToLower(e.Name) || strings.ContainsAny(e.Name, " -") {
			t.Errorf("%d: name %q is not lower_snake_case", c, e.Name)
		}
		if prev, dup := names[e.Name]; dup {
			t.Errorf("name %q used by %d and %d", e.Name, prev, c)
		}
		names[e.Name] = c
		if e.Text == "" || e.Text != c.Text() {
			t.Errorf("%d: bad text %q (Text() %q)", c, e.Text, c.Text())
		}
		if e.Class != c.Class() || e.Retryable != c.Retryable() {
			t.Errorf("%d: entry %+v disagrees with methods", c, e)
		}
		if want := fmt.Sprintf("%d (%s)", int(c), e.Name); c.String() != want {
			t.Errorf("String() = %q, want %q", c.String(), want)
		}
		if c == errcode.OK {
			if e.Class != "" || e.Retryable {
				t.Errorf("OK: class %q retryable %v", e.Class, e.Retryable)
			}
			continue
		}
		want, ok := classByDigit[int(c)/1000]
		if !ok || c < 1000 || c > 9999 {
			t.Errorf("%d: thousands digit names no class (add it to classByDigit)", c)
			continue
		}
		if e.Class != want {
			t.Errorf("%d (%s): class %q, want %q from its thousands digit", c, e.Name, e.Class, want)
		}
	}
}

// TestEveryConstInTable parses errcode.go so that a Code constant added
// without a table row fails here.
func TestEveryConstInTable(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "errcode.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
				continue
			}
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.INT {
					t.Errorf("%s: value is not an integer literal", name.Name)
					continue
				}
				v, err := strconv.Atoi(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				if !errcode.Code(v).Known() {
					t.Errorf("constant %s = %d has no table entry", name.Name, v)
				}
				n++
			}
		}
	}
	if n != len(errcode.Table()) {
		t.Errorf("%d Code constants, %d table entries", n, len(errcode.Table()))
	}
}

func TestUnknownCode(t *testing.T) {
	for _, c := range []errcode.Code{-1, 999, 1999, 4999, 9999, 123456} {
		if c.Known() {
			t.Fatalf("%d is in the table; pick another unknown code", c)
		}
		if !c.Retryable() {
			t.Errorf("%d: unknown codes must be retryable", c)
		}
		if want := fmt.Sprintf("code_%d", int(c)); c.Name() != want {
			t.Errorf("Name() = %q, want %q", c.Name(), want)
		}
		if c.Class() != "" || c.Text() != "unknown error code" {
			t.Errorf("%d: class %q text %q", c, c.Class(), c.Text())
		}
	}
}

// Final decisions must stay final; transient failures must be retried.
func TestRetryable(t *testing.T) {
	for c, want := range map[errcode.Code]bool{
		errcode.DispatcherKilled:    false,
		errcode.DispatcherStale:     false,
		errcode.PayloadWalltime:     false,
		errcode.PayloadNotFound:     false,
		errcode.PilotShutdown:       true,
		errcode.DispatcherAgentLost: true,
		errcode.DispatcherAgentGone: true,
	} {
		if c.Retryable() != want {
			t.Errorf("%s: Retryable() = %v, want %v", c, c.Retryable(), want)
		}
	}
}

func TestOf(t *testing.T) {
	base := errcode.Errorf(errcode.PayloadExit, "exit status %d", 3)
	for _, tc := range []struct {
		name string
		err  error
		want errcode.Code
	}{
		{"nil", nil, errcode.PilotLostReport},
		{"plain", errors.New("boom"), errcode.PilotLostReport},
		{"direct", base, errcode.PayloadExit},
		{"wrapped once", fmt.Errorf("job 7: %w", base), errcode.PayloadExit},
		{"wrapped twice", fmt.Errorf("attempt 2: %w", fmt.Errorf("job 7: %w", base)), errcode.PayloadExit},
		{"joined", errors.Join(errors.New("other"), base), errcode.PayloadExit},
		{"outer code wins", &errcode.Error{Code: errcode.DispatcherKilled, Err: fmt.Errorf("x: %w", base)}, errcode.DispatcherKilled},
		{"%v drops the code", fmt.Errorf("job 7: %v", base), errcode.PilotLostReport},
		{"unknown code kept", fmt.Errorf("w: %w", &errcode.Error{Code: 7777}), 7777},
	} {
		if got := errcode.Of(tc.err, errcode.PilotLostReport); got != tc.want {
			t.Errorf("%s: Of = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestError(t *testing.T) {
	err := errcode.Errorf(errcode.PilotWorkdir, "mkdir %s: %w", "/scratch/job7", errors.ErrUnsupported)
	if err.Error() != "mkdir /scratch/job7: unsupported operation" {
		t.Errorf("Error() = %q", err.Error())
	}
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Error("Errorf's %w target does not unwrap")
	}
	bare := &errcode.Error{Code: errcode.DispatcherKilled}
	if bare.Error() != errcode.DispatcherKilled.Text() {
		t.Errorf("Error() without Err = %q, want the code's text", bare.Error())
	}
	if bare.Unwrap() != nil {
		t.Error("Unwrap() without Err is not nil")
	}
}
