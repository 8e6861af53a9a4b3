package task

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pando-wms/pando/dispatcher/share"
)

// Limits on a task. They keep one submission from swamping the store and
// the broker's index, and an attempt loop from running away.
const (
	MaxJobs           = 1_000_000
	MaxAttempts       = 100
	MaxPriority       = 1_000_000
	maxNameLen        = 128
	maxQueueLen       = 64
	maxEnvNameLen     = 256
	maxImageLen       = 1024
	maxAcceleratorLen = 64
)

var (
	queueRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Validate checks s against the rules of a task file. Parse calls it; call
// it again on a Spec that did not come from Parse (API JSON, the store).
func (s *Spec) Validate() error {
	if err := checkText("name", s.Name, maxNameLen, true); err != nil {
		return err
	}
	if s.Name == "" {
		return &FieldError{"name", "must not be empty"}
	}
	if err := checkCommand(s.Command); err != nil {
		return err
	}
	if err := checkText("image", s.Image, maxImageLen, false); err != nil {
		return err
	}
	if err := checkEnv(s.Env); err != nil {
		return err
	}
	if err := checkRange("jobs", s.Jobs, 1, MaxJobs); err != nil {
		return err
	}
	if err := s.Resources.validate(); err != nil {
		return err
	}
	if err := checkRange("priority", s.Priority, -MaxPriority, MaxPriority); err != nil {
		return err
	}
	if err := checkRange("max_attempts", s.MaxAttempts, 1, MaxAttempts); err != nil {
		return err
	}
	if s.Queue != "" && (len(s.Queue) > maxQueueLen || !queueRe.MatchString(s.Queue)) {
		return &FieldError{"queue", fmt.Sprintf("invalid name %s: use up to %d letters, digits, '.', '_' or '-', starting with a letter or digit", quote(s.Queue), maxQueueLen)}
	}
	if s.Share != "" {
		if err := share.CheckPath(s.Share); err != nil {
			return &FieldError{"share", err.Error()}
		}
	}
	return s.validateData()
}

func (r *Resources) validate() error {
	if err := checkRange("resources.cores", r.Cores, 1, -1); err != nil {
		return err
	}
	if r.MemoryBytes <= 0 {
		return &FieldError{"resources.memory", fmt.Sprintf("must be greater than 0, got %d", r.MemoryBytes)}
	}
	if r.Walltime <= 0 {
		return &FieldError{"resources.walltime", fmt.Sprintf("must be greater than 0, got %v", r.Walltime)}
	}
	if err := checkRange("resources.gpus", r.GPUs, 0, -1); err != nil {
		return err
	}
	if r.GPUModel != "" {
		if _, err := regexp.Compile(r.GPUModel); err != nil {
			return &FieldError{"resources.gpu_model", fmt.Sprintf("invalid regular expression: %v", err)}
		}
	}
	if r.GPUMemory < 0 {
		return &FieldError{"resources.gpu_memory", fmt.Sprintf("must be greater than 0, got %d", r.GPUMemory)}
	}
	if r.GPUCompute != "" {
		if _, err := ParseCompute(r.GPUCompute); err != nil {
			return &FieldError{"resources.gpu_compute", err.Error()}
		}
	}
	// A GPU model or memory without GPUs is a mistake, not "any node".
	if r.GPUs == 0 && (r.GPUModel != "" || r.GPUMemory > 0 || r.GPUCompute != "") {
		return &FieldError{"resources.gpus", "must be at least 1 when gpu_model, gpu_memory or gpu_compute is set"}
	}
	if r.Arch != "" && !slices.Contains(knownArchs, r.Arch) {
		return &FieldError{"resources.arch", fmt.Sprintf("unknown architecture %s: want one of %s", quote(r.Arch), strings.Join(knownArchs, ", "))}
	}
	return checkText("resources.accelerator", r.Accelerator, maxAcceleratorLen, false)
}

// knownArchs are the CPU architectures a task may ask for: Go's names and
// the kernel's for the same machines.
var knownArchs = []string{"amd64", "x86_64", "arm64", "aarch64", "ppc64le", "s390x", "riscv64", "386"}

// ParseCompute reads a compute capability "MAJOR[.MINOR]" as MAJOR*100+MINOR.
func ParseCompute(v string) (int, error) {
	major, minor, _ := strings.Cut(v, ".")
	ma, err1 := strconv.Atoi(major)
	mi, err2 := 0, error(nil)
	if minor != "" {
		mi, err2 = strconv.Atoi(minor)
	}
	if err1 != nil || err2 != nil || ma < 0 || ma > 99 || mi < 0 || mi > 99 {
		return 0, fmt.Errorf("invalid compute capability %s: want MAJOR.MINOR, e.g. 8.0", quote(v))
	}
	return ma*100 + mi, nil
}

// checkRange checks lo <= v and, unless hi < 0, v <= hi.
func checkRange(field string, v, lo, hi int) error {
	if v < lo {
		return &FieldError{field, fmt.Sprintf("must be at least %d, got %d", lo, v)}
	}
	if hi >= 0 && v > hi {
		return &FieldError{field, fmt.Sprintf("must be at most %d, got %d", hi, v)}
	}
	return nil
}

// checkText checks a printable single-line string of at most max runes;
// spaces are allowed only if spaces is true.
func checkText(field, v string, max int, spaces bool) error {
	if !utf8.ValidString(v) {
		return &FieldError{field, "must be valid UTF-8"}
	}
	if n := utf8.RuneCountInString(v); n > max {
		return &FieldError{field, fmt.Sprintf("must be at most %d characters, got %d", max, n)}
	}
	for _, r := range v {
		if !unicode.IsPrint(r) || (!spaces && unicode.IsSpace(r)) {
			return &FieldError{field, fmt.Sprintf("must not contain %U (%s)", r, quote(v))}
		}
	}
	return nil
}

func checkCommand(cmd []string) error {
	if len(cmd) == 0 {
		return &FieldError{"command", "must not be empty"}
	}
	if cmd[0] == "" {
		return &FieldError{"command[0]", "must not be empty: it is the program to run"}
	}
	for i, a := range cmd {
		if strings.IndexByte(a, 0) >= 0 {
			return &FieldError{fmt.Sprintf("command[%d]", i), "must not contain a NUL byte"}
		}
	}
	return nil
}

func checkEnv(env map[string]string) error {
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	slices.Sort(names) // the same error every time
	for _, k := range names {
		field := "env." + k
		switch {
		case len(k) > maxEnvNameLen || !envNameRe.MatchString(k):
			return &FieldError{field, "invalid name: use letters, digits and '_', not starting with a digit"}
		case strings.HasPrefix(k, "PANDO_"):
			return &FieldError{field, "reserved: PANDO_ variables are set by the pilot"}
		case strings.IndexByte(env[k], 0) >= 0:
			return &FieldError{field, "must not contain a NUL byte"}
		}
	}
	return nil
}
