package task

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const example = `name: hello
command: ["/bin/sh", "-c", "echo hello from job $PANDO_JOB_INDEX"]
jobs: 20
resources: {cores: 1, memory: 256MiB, walltime: 10m}
priority: 100
max_attempts: 3
queue: grid          # optional
image: busybox:test  # optional, accepted and stored
env: {FOO: bar}      # optional
`

func TestParseExample(t *testing.T) {
	got, err := Parse([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	want := &Spec{
		Name:        "hello",
		Command:     []string{"/bin/sh", "-c", "echo hello from job $PANDO_JOB_INDEX"},
		Image:       "busybox:test",
		Env:         map[string]string{"FOO": "bar"},
		Jobs:        20,
		Resources:   Resources{Cores: 1, MemoryBytes: 256 << 20, Walltime: 10 * time.Minute},
		Priority:    100,
		MaxAttempts: 3,
		Queue:       "grid",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseDefaults(t *testing.T) {
	got, err := Parse([]byte("command: [/bin/true]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Spec{
		Name:        DefaultName,
		Command:     []string{"/bin/true"},
		Jobs:        DefaultJobs,
		Resources:   Resources{Cores: DefaultCores, MemoryBytes: DefaultMemory, Walltime: DefaultWalltime},
		Priority:    DefaultPriority,
		MaxAttempts: DefaultMaxAttempts,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name, in string
		check    func(*Spec) bool
	}{
		{"command string runs in a shell", `command: "echo $HOME | wc"`,
			func(s *Spec) bool { return reflect.DeepEqual(s.Command, []string{"/bin/sh", "-c", "echo $HOME | wc"}) }},
		{"command elements of any scalar", `command: [sleep, 10]`,
			func(s *Spec) bool { return reflect.DeepEqual(s.Command, []string{"sleep", "10"}) }},
		{"json", `{"command": ["a"], "jobs": 3, "resources": {"memory": 1073741824}}`,
			func(s *Spec) bool { return s.Jobs == 3 && s.Resources.MemoryBytes == 1<<30 }},
		{"null means default", "command: [a]\njobs:\nname: ~\nresources:\n",
			func(s *Spec) bool {
				return s.Jobs == DefaultJobs && s.Name == DefaultName && s.Resources.Cores == DefaultCores
			}},
		{"empty name means default", "command: [a]\nname: \"\"",
			func(s *Spec) bool { return s.Name == DefaultName }},
		{"gpus", "command: [a]\nresources: {gpus: 2, gpu_model: 'A100|H100', gpu_memory: 40GiB, accelerator: nvidia}",
			func(s *Spec) bool {
				r := s.Resources
				return r.GPUs == 2 && r.GPUModel == "A100|H100" && r.GPUMemory == 40<<30 && r.Accelerator == "nvidia"
			}},
		{"zero gpus", "command: [a]\nresources: {gpus: 0}", func(s *Spec) bool { return s.Resources.GPUs == 0 }},
		{"slurm walltime", "command: [a]\nresources: {walltime: 1-02:00:00}",
			func(s *Spec) bool { return s.Resources.Walltime == 26*time.Hour }},
		{"walltime seconds", "command: [a]\nresources: {walltime: 90}",
			func(s *Spec) bool { return s.Resources.Walltime == 90*time.Second }},
		{"memory bytes", "command: [a]\nresources: {memory: 1000}",
			func(s *Spec) bool { return s.Resources.MemoryBytes == 1000 }},
		{"aliases", "command: &c [a, b]\nresources: {memory: &m 1G, gpu_memory: *m, gpus: 1}",
			func(s *Spec) bool { return len(s.Command) == 2 && s.Resources.GPUMemory == 1<<30 }},
		{"negative priority", "command: [a]\npriority: -5", func(s *Spec) bool { return s.Priority == -5 }},
		{"limits", "command: [a]\njobs: 1000000\nmax_attempts: 100\nname: " + strings.Repeat("n", 128),
			func(s *Spec) bool { return s.Jobs == MaxJobs && s.MaxAttempts == MaxAttempts }},
		{"unicode name", "command: [a]\nname: Zählung λ", func(s *Spec) bool { return s.Name == "Zählung λ" }},
		{"env values of any scalar", "command: [a]\nenv: {N: 3, E: ''}",
			func(s *Spec) bool { return s.Env["N"] == "3" && s.Env["E"] == "" }},
		{"queue charset", "command: [a]\nqueue: cern-ch_T0.gpu", func(s *Spec) bool { return s.Queue == "cern-ch_T0.gpu" }},
		{"first merge wins", "command: [a]\nresources: {<<: [{cores: 2}, {cores: 4, memory: 2G}]}",
			func(s *Spec) bool { return s.Resources.Cores == 2 && s.Resources.MemoryBytes == 2<<30 }},
		{"merged top level", "<<: {command: [a], jobs: 2}\njobs: 5\n", func(s *Spec) bool { return s.Jobs == 5 && len(s.Command) == 1 }},
		{"merged fields", "command: [a]\nresources:\n  <<: &r {cores: 2, memory: 1G}\n  cores: 3\n",
			func(s *Spec) bool { return s.Resources.Cores == 3 && s.Resources.MemoryBytes == 1<<30 }},
		{"JSON", `{"name": "j", "command": ["a", "b"], "jobs": 2, "resources": {"cores": 2}}`,
			func(s *Spec) bool {
				return s.Name == "j" && len(s.Command) == 2 && s.Jobs == 2 && s.Resources.Cores == 2
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(s) {
				t.Errorf("unexpected spec %+v", s)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name, in string
		field    string // "-": not a *FieldError
		want     string
	}{
		{"empty", "", "-", "task file is empty"},
		{"only comments", "# nothing\n", "-", "task file is empty"},
		{"null document", "---\n~\n", "-", "task file is empty"},
		{"not a mapping", "- a\n", "-", "must be a mapping of fields"},
		{"scalar document", "hello", "-", "got \"hello\""},
		{"two documents", "command: a\n---\ncommand: b\n", "-", "more than one YAML document"},
		{"syntax", "command: [a\n", "-", "task file: yaml:"},
		{"unknown field", "name: x\ncomand: [a]\n", "", `unknown field "comand" (line 2); did you mean "command"?`},
		{"unknown resource", "command: [a]\nresources:\n  cpus: 4\n", "resources", `unknown field "cpus" (line 3); did you mean "cores"?`},
		{"merge of a scalar", "command: [a]\n<<: 3\n", "", "<< must merge a mapping"},
		{"duplicate resource", "command: [a]\nresources: {cores: 1, cores: 2}", "-", `duplicate field "cores"`},
		{"key not a string", "command: [a]\n[x]: 1\n", "", "field names must be strings, got a list (line 2)"},
		{"null key", "command: [a]\n~: 1\n", "", "field names must be strings, got null (line 2)"},
		{"unknown merged field", "<<: {comand: [b]}\ncommand: [a]\n", "", `unknown field "comand" (line 1)`},
		{"unknown merged resource", "command: [a]\nresources:\n  <<: [{cores: 1}, {cpus: 2}]\n", "resources", `unknown field "cpus" (line 3)`},
		{"duplicate field", "command: [a]\njobs: 1\njobs: 2\n", "-", `duplicate field "jobs" (line 3, first set at line 2)`},
		{"resources not a mapping", "command: [a]\nresources: 4\n", "resources", "must be a mapping"},
		{"command missing", "name: x\n", "command", "required"},
		{"command empty list", "command: []", "command", "must not be empty"},
		{"command empty string", "command: '  '", "command", "must not be empty"},
		{"command empty program", "command: ['', x]", "command[0]", "must not be empty"},
		{"command nested", "command: [a, [b]]", "command[1]", "must be a string, got a list"},
		{"command null element", "command: [a, ~]", "command[1]", "got null"},
		{"command mapping", "command: {a: b}", "command", "got a mapping"},
		{"command NUL", `command: ["a", "b\0c"]`, "command[1]", "NUL"},
		{"jobs zero", "command: [a]\njobs: 0", "jobs", "must be at least 1, got 0"},
		{"jobs too many", "command: [a]\njobs: 1000001", "jobs", "must be at most 1000000"},
		{"jobs float", "command: [a]\njobs: 1.5", "jobs", `must be an integer, got "1.5"`},
		{"jobs string", "command: [a]\njobs: many", "jobs", `must be an integer, got "many"`},
		{"jobs quoted", "command: [a]\njobs: '3'", "jobs", "must be an integer"},
		{"jobs overflow", "command: [a]\njobs: 99999999999999999999", "jobs", "must be an integer"},
		{"jobs list", "command: [a]\njobs: [1]", "jobs", "must be a single value, got a list"},
		{"cores zero", "command: [a]\nresources: {cores: 0}", "resources.cores", "must be at least 1, got 0"},
		{"memory unit", "command: [a]\nresources: {memory: 12XB}", "resources.memory", `invalid size "12XB" (use e.g. 256MiB, 2GiB, 512M)`},
		{"memory zero", "command: [a]\nresources: {memory: 0}", "resources.memory", "must be greater than 0"},
		{"memory negative", "command: [a]\nresources: {memory: -1G}", "resources.memory", "invalid size"},
		{"memory huge", "command: [a]\nresources: {memory: 99999999TiB}", "resources.memory", "too large"},
		{"walltime bad", "command: [a]\nresources: {walltime: soon}", "resources.walltime", `invalid duration "soon"`},
		{"walltime zero", "command: [a]\nresources: {walltime: 0s}", "resources.walltime", "must be greater than 0"},
		{"walltime negative", "command: [a]\nresources: {walltime: -1h}", "resources.walltime", "must be greater than 0"},
		{"walltime bad seconds", "command: [a]\nresources: {walltime: '1:75'}", "resources.walltime", "invalid duration"},
		{"gpus negative", "command: [a]\nresources: {gpus: -1}", "resources.gpus", "must be at least 0"},
		{"gpu_model regexp", "command: [a]\nresources: {gpus: 1, gpu_model: 'A100('}", "resources.gpu_model", "invalid regular expression"},
		{"gpu_model without gpus", "command: [a]\nresources: {gpu_model: A100}", "resources.gpus", "must be at least 1 when gpu_model"},
		{"gpu_memory zero", "command: [a]\nresources: {gpus: 1, gpu_memory: 0}", "resources.gpu_memory", "must be greater than 0"},
		{"gpu_memory bad", "command: [a]\nresources: {gpus: 1, gpu_memory: lots}", "resources.gpu_memory", "invalid size"},
		{"accelerator space", "command: [a]\nresources: {accelerator: 'a b'}", "resources.accelerator", "must not contain"},
		{"max_attempts zero", "command: [a]\nmax_attempts: 0", "max_attempts", "must be at least 1, got 0"},
		{"max_attempts large", "command: [a]\nmax_attempts: 101", "max_attempts", "must be at most 100"},
		{"priority range", "command: [a]\npriority: 1000001", "priority", "must be at most"},
		{"name too long", "command: [a]\nname: " + strings.Repeat("n", 129), "name", "at most 128 characters"},
		{"name control", "command: [a]\nname: \"a\\tb\"", "name", "must not contain U+0009"},
		{"name list", "command: [a]\nname: [a]", "name", "must be a single value"},
		{"queue charset", "command: [a]\nqueue: 'a/b'", "queue", "invalid name"},
		{"queue leading dot", "command: [a]\nqueue: .a", "queue", "invalid name"},
		{"queue too long", "command: [a]\nqueue: " + strings.Repeat("q", 65), "queue", "invalid name"},
		{"image space", "command: [a]\nimage: 'busy box'", "image", "must not contain"},
		{"env not mapping", "command: [a]\nenv: [A=b]", "env", "must be a mapping"},
		{"env bad name", "command: [a]\nenv: {1A: b}", "env.1A", "invalid name"},
		{"env dash", "command: [a]\nenv: {A-B: b}", "env.A-B", "invalid name"},
		{"env reserved", "command: [a]\nenv: {PANDO_JOB_INDEX: '1'}", "env.PANDO_JOB_INDEX", "reserved"},
		{"env null value", "command: [a]\nenv: {A: }", "env.A", `use "" for empty`},
		{"env list value", "command: [a]\nenv: {A: [b]}", "env.A", "must be a string"},
		{"env duplicate", "command: [a]\nenv: {A: b, A: c}", "env.A", "set twice"},
		{"env mapping key", "command: [a]\nenv: {[A]: b}", "env", "names must be strings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("accepted: %+v", s)
			}
			if s != nil {
				t.Errorf("returned a spec with error %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			var fe *FieldError
			switch isField := errors.As(err, &fe); {
			case tt.field == "-" && isField:
				t.Errorf("got *FieldError %+v, want another error", fe)
			case tt.field != "-" && !isField:
				t.Errorf("error %q is not a *FieldError", err)
			case tt.field != "-" && fe.Field != tt.field:
				t.Errorf("field %q, want %q", fe.Field, tt.field)
			}
		})
	}
}

// TestValidate covers rules that Parse cannot break, for specs from JSON.
func TestValidate(t *testing.T) {
	ok := func() Spec {
		s, err := Parse([]byte(example))
		if err != nil {
			t.Fatal(err)
		}
		return *s
	}
	tests := []struct {
		name   string
		mutate func(*Spec)
		field  string
	}{
		{"valid", func(*Spec) {}, ""},
		{"empty name", func(s *Spec) { s.Name = "" }, "name"},
		{"invalid utf-8", func(s *Spec) { s.Name = "\xff" }, "name"},
		{"no command", func(s *Spec) { s.Command = nil }, "command"},
		{"zero memory", func(s *Spec) { s.Resources.MemoryBytes = 0 }, "resources.memory"},
		{"zero walltime", func(s *Spec) { s.Resources.Walltime = 0 }, "resources.walltime"},
		{"negative gpu memory", func(s *Spec) { s.Resources.GPUMemory = -1 }, "resources.gpu_memory"},
		{"jobs", func(s *Spec) { s.Jobs = 0 }, "jobs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok()
			tt.mutate(&s)
			err := s.Validate()
			var fe *FieldError
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
				t.Errorf("error %v, want one for field %s", err, tt.field)
			}
		})
	}
}

// Every field name listed has a slot of its own.
func TestFieldSlots(t *testing.T) {
	var r rawSpec
	for _, c := range []struct {
		names []string
		dst   slots
	}{{specFields, &r}, {resourcesFields, &r.res}} {
		seen := map[**yaml.Node]bool{}
		for _, name := range c.names {
			s := c.dst.slot(name)
			if s == nil || seen[s] {
				t.Errorf("field %q: slot %v (taken before: %v)", name, s, seen[s])
			}
			seen[s] = true
		}
		if c.dst.slot("nope") != nil {
			t.Error("unknown name has a slot")
		}
	}
}

// BenchmarkParse parses a small task file, as bench latency submits.
func BenchmarkParse(b *testing.B) {
	data := []byte("name: latency\ncommand: [\"/bin/true\"]\nresources: {cores: 1, memory: 64MiB, walltime: 1m}\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
