// Package pbs is the batch kind for PBS Pro and OpenPBS, driven through
// qsub, qstat (-x -f -F json) and qdel. No PBS server runs here: it is
// tested on recorded command outputs.
package pbs

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/pando-wms/pando/plugins/batch"
)

func init() {
	batch.Register("pbs", func(c batch.Config) (batch.System, error) {
		t, err := c.JobTemplate(DefaultTemplate)
		if err != nil {
			return nil, err
		}
		return &System{cfg: c, tmpl: t}, nil
	})
}

// DefaultTemplate is the job script unless a queue gives its own (fields
// as for slurm, plus .Walltime as HH:MM:SS).
const DefaultTemplate = `#!/bin/sh
#PBS -N {{.Name}}
#PBS -l select=1:ncpus={{.Cores}}:mem={{.MemoryMB}}mb
#PBS -l walltime={{.Walltime}}
#PBS -j oe
#PBS -o {{.Dir}}/{{.Name}}.out
{{- if .Queue}}
#PBS -q {{.Queue}}
{{- end}}
cd {{.Dir}} || exit 1
{{range .Env}}export {{.}}
{{end}}exec {{.Command}}
`

// System is a PBS server reached through its CLI.
type System struct {
	cfg  batch.Config
	tmpl *template.Template
}

func (s *System) Kind() string { return "pbs" }

func (s *System) Submit(ctx context.Context, w batch.Worker) (string, error) {
	env := make([]string, 0, len(w.Env))
	for k, v := range w.Env {
		env = append(env, k+"="+batch.ShellQuote(v))
	}
	slices.Sort(env)
	wall := max(w.Walltime, time.Minute)
	var b strings.Builder
	err := s.tmpl.Execute(&b, map[string]any{
		"Name": w.Name, "Cores": max(w.Cores, 1), "MemoryMB": max(w.Memory>>20, 1), "Dir": w.Dir, "Queue": w.Queue,
		"Walltime": fmt.Sprintf("%02d:%02d:%02d", int(wall.Hours()), int(wall.Minutes())%60, int(wall.Seconds())%60),
		"Env":      env, "Command": batch.ShellCommand(w.Command),
	})
	if err != nil {
		return "", fmt.Errorf("%w: pbs job script: %v", batch.ErrConfig, err)
	}
	path := filepath.Join(w.Dir, w.Name+".pbs")
	if err := os.WriteFile(path, []byte(b.String()), 0o700); err != nil {
		return "", fmt.Errorf("pbs: write job script: %w", err)
	}
	out, err := s.cfg.Exec(ctx, "qsub", path)
	if err != nil {
		return "", classify(err)
	}
	id := strings.TrimSpace(out)
	if id == "" || strings.ContainsAny(id, " \n") {
		return "", fmt.Errorf("%w: qsub printed %q, not a job ID", batch.ErrUnavailable, out)
	}
	return id, nil
}

func classify(err error) error {
	return batch.Classify(err, "cannot connect to server", "Connection refused", "Communication failure", "pbs_connect")
}

func (s *System) Status(ctx context.Context, ids []string) (map[string]batch.Status, error) {
	out, err := s.cfg.Exec(ctx, "qstat", append([]string{"-x", "-f", "-F", "json"}, ids...)...)
	if err != nil && !batch.Says(err, "Unknown Job Id") {
		return nil, fmt.Errorf("%w: %v", batch.ErrUnavailable, err) // unknown IDs still print the others
	}
	known, perr := ParseQstat(out)
	if perr != nil {
		return nil, fmt.Errorf("%w: qstat: %v", batch.ErrUnavailable, perr)
	}
	return batch.Pick(known, ids, "unknown to qstat -x (history expired, or never existed)"), nil
}

// ParseQstat reads `qstat -x -f -F json`.
func ParseQstat(out string) (map[string]batch.Status, error) {
	res := map[string]batch.Status{}
	if strings.TrimSpace(out) == "" {
		return res, nil
	}
	var doc struct {
		Jobs map[string]struct {
			State   string `json:"job_state"`
			Exit    *int   `json:"Exit_status"`
			Comment string `json:"comment"`
		} `json:"Jobs"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return nil, err
	}
	for id, j := range doc.Jobs {
		st := batch.Status{ID: id, Reason: j.Comment}
		switch j.State {
		case "Q", "H", "W", "T", "M":
			st.State = batch.Queued
		case "R", "E", "B", "S", "U":
			st.State = batch.Running
		default: // F, X: ended
			exit := 0
			if j.Exit != nil {
				exit = *j.Exit
			}
			switch {
			case exit == 0:
				st.State = batch.Finished
			case exit == 271: // 256 + SIGTERM: deleted with qdel
				st.State, st.ExitCode = batch.Cancelled, 128+15
			case exit > 256:
				st.State, st.ExitCode = batch.Failed, 128+exit-256 // killed by signal exit-256
			case exit < 0:
				st.State, st.ExitCode = batch.Failed, exit // the job never ran (PBS's own codes)
			default:
				st.State, st.ExitCode = batch.Failed, exit
			}
		}
		res[id] = st
	}
	return res, nil
}

func (s *System) Cancel(ctx context.Context, id string) error {
	if _, err := s.cfg.Exec(ctx, "qdel", id); err != nil && !batch.Says(err, "Unknown Job Id", "Job has finished") {
		return classify(err)
	}
	return nil
}
