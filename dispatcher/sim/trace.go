package sim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pando-wms/pando/dispatcher/queue"
	"github.com/pando-wms/pando/dispatcher/share"
	"github.com/pando-wms/pando/dispatcher/task"
)

// ErrTrace marks a trace that cannot be read; the message names the file,
// line and column.
var ErrTrace = errors.New("invalid trace")

// Row is one trace row: a task of Jobs identical jobs.
type Row struct {
	Submit   time.Duration // from the trace's start
	Runtime  time.Duration // of each job
	Walltime time.Duration
	Memory   int64
	Share    string
	Queue    string
	GPUModel string
	Jobs     int32
	Cores    int32
	GPUs     int32
	Priority int32
	Line     int32 // where the row starts in its file
}

// Columns are the trace's column names, in the order WriteCSV writes them.
var Columns = []string{"submit_s", "jobs", "cores", "memory", "gpus", "gpu_model", "walltime", "runtime_s", "share", "priority", "queue"}

// required columns have no default.
var required = []string{"submit_s", "runtime_s"}

// maxSeconds bounds times in a trace (about 292 years fit a Duration).
const maxSeconds = 1e9

// rowParser fills rows from cells, interning repeated strings.
type rowParser struct {
	strs  map[string]string
	res   map[string]bool // gpu_model expressions known to compile
	valid map[string]bool // share paths and queue names already checked
}

func newRowParser() *rowParser {
	return &rowParser{strs: map[string]string{}, res: map[string]bool{}, valid: map[string]bool{}}
}

func (p *rowParser) intern(s string) string {
	if v, ok := p.strs[s]; ok {
		return v
	}
	p.strs[s] = s
	return s
}

// newRow is a row with every default but the walltime's, which depends
// on the runtime.
func newRow(line int) Row {
	return Row{Jobs: 1, Cores: 1, Memory: task.DefaultMemory, Share: share.Default, Line: int32(line)}
}

// set parses one cell (already trimmed, not empty) into r.
func (p *rowParser) set(r *Row, col, v string) error {
	var err error
	switch col {
	case "submit_s":
		r.Submit, err = seconds(v)
	case "runtime_s":
		r.Runtime, err = seconds(v)
	case "jobs":
		r.Jobs, err = whole(v, 1, task.MaxJobs)
	case "cores":
		r.Cores, err = whole(v, 1, 1<<20)
	case "gpus":
		r.GPUs, err = whole(v, 0, 1<<10)
	case "priority":
		r.Priority, err = whole(v, -task.MaxPriority, task.MaxPriority)
	case "memory":
		r.Memory, err = task.ParseSize(v)
	case "walltime":
		if r.Walltime, err = task.ParseDuration(v); err == nil && r.Walltime <= 0 {
			err = fmt.Errorf("walltime %q must be positive", v)
		}
	case "gpu_model":
		r.GPUModel, err = p.regexp(v)
	case "share":
		r.Share, err = p.checked(v, share.CheckPath)
	case "queue":
		r.Queue, err = p.checked(v, queue.CheckName)
	default:
		err = fmt.Errorf("unknown column %q (known: %s)", col, strings.Join(Columns, ", "))
	}
	return err
}

func (p *rowParser) regexp(v string) (string, error) {
	if !p.res[v] {
		if _, err := regexp.Compile(v); err != nil {
			return "", fmt.Errorf("gpu_model %q is not a regular expression: %w", v, err)
		}
		p.res[v] = true
	}
	return p.intern(v), nil
}

func (p *rowParser) checked(v string, check func(string) error) (string, error) {
	if !p.valid[v] {
		if err := check(v); err != nil {
			return "", err
		}
		p.valid[v] = true
	}
	return p.intern(v), nil
}

// finish applies the defaults that depend on other cells, and those a
// Row built in code may lack.
func finish(r *Row) {
	if r.Share == "" {
		r.Share = share.Default
	}
	if r.Walltime == 0 {
		r.Walltime = max(task.DefaultWalltime, r.Runtime)
	}
}

// seconds reads a non-negative decimal number of seconds.
func seconds(v string) (time.Duration, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxSeconds {
		return 0, fmt.Errorf("%q is not a number of seconds from 0 to %g", v, float64(maxSeconds))
	}
	return time.Duration(math.Round(f * 1e9)), nil
}

func whole(v string, lo, hi int) (int32, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%q is not a whole number from %d to %d", v, lo, hi)
	}
	return int32(n), nil
}

// ReadFile reads a trace file ("-": standard input): JSON when its name
// ends in .json, .jsonl or .ndjson or its first character is '[' or '{',
// else CSV.
func ReadFile(path string) ([]Row, error) {
	var r io.Reader = os.Stdin
	name := "stdin"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r, name = f, path
	}
	return Read(bufio.NewReaderSize(r, 1<<16), name)
}

// Read reads a CSV or JSON trace from r; name is used in errors and, by
// its extension, to tell the formats apart.
func Read(r io.Reader, name string) ([]Row, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json", ".jsonl", ".ndjson":
		return ReadJSON(r, name)
	case ".csv":
		return ReadCSV(r, name)
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	if b, _ := br.Peek(len(bom)); string(b) == bom {
		_, _ = br.Discard(len(bom))
	}
	// The first character that is not white space tells; the white space
	// stays for the reader, whose line numbers count it.
	for n := 1; n <= br.Size(); n++ {
		b, err := br.Peek(n)
		if err != nil {
			break
		}
		switch b[n-1] {
		case ' ', '\t', '\r', '\n':
			continue
		case '[', '{':
			return ReadJSON(br, name)
		}
		break
	}
	return ReadCSV(br, name)
}

// bom is the UTF-8 byte order mark some tools write first.
const bom = "\ufeff"

// posError names where in the trace a problem is.
func posError(name string, line, col int, field string, err error) error {
	where := fmt.Sprintf("%s:%d", name, line)
	if col > 0 {
		where += fmt.Sprintf(":%d", col)
	}
	if field != "" {
		where += " (" + field + ")"
	}
	return fmt.Errorf("%w: %s: %v", ErrTrace, where, err)
}
