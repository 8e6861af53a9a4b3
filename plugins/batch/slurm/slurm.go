// Package slurm is the batch kind for Slurm, driven through sbatch, squeue
// and scancel (sacct needs accounting, which many sites and the test
// cluster lack: squeue --states=all reports ended jobs for MinJobAge).
package slurm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/pando-wms/pando/plugins/batch"
)

func init() {
	batch.Register("slurm", func(c batch.Config) (batch.System, error) {
		t, err := c.JobTemplate(DefaultTemplate)
		if err != nil {
			return nil, err
		}
		return &System{cfg: c, tmpl: t}, nil
	})
}

// DefaultTemplate is the job script unless a queue gives its own. Fields:
// .Name .Cores .MemoryMB .Minutes .Dir .Queue .Env (quoted NAME=value)
// .Command (quoted).
const DefaultTemplate = `#!/bin/sh
#SBATCH --job-name={{.Name}}
#SBATCH --cpus-per-task={{.Cores}}
#SBATCH --mem={{.MemoryMB}}M
#SBATCH --time={{.Minutes}}
#SBATCH --chdir={{.Dir}}
#SBATCH --output={{.Dir}}/slurm-%j.out
{{- if .Queue}}
#SBATCH --partition={{.Queue}}
{{- end}}
{{range .Env}}export {{.}}
{{end}}exec {{.Command}}
`

// System is a Slurm cluster reached through its CLI.
type System struct {
	cfg  batch.Config
	tmpl *template.Template
}

func (s *System) Kind() string { return "slurm" }

// Script renders the job script of w.
func Script(t *template.Template, w batch.Worker) (string, error) {
	env := make([]string, 0, len(w.Env))
	for k, v := range w.Env {
		env = append(env, k+"="+batch.ShellQuote(v))
	}
	slices.Sort(env)
	var b strings.Builder
	err := t.Execute(&b, map[string]any{
		"Name": w.Name, "Cores": max(w.Cores, 1), "MemoryMB": max(w.Memory>>20, 1),
		"Minutes": max(int((w.Walltime+time.Minute-1)/time.Minute), 1), "Dir": w.Dir,
		"Queue": w.Queue, "Env": env, "Command": batch.ShellCommand(w.Command),
	})
	return b.String(), err
}

func (s *System) Submit(ctx context.Context, w batch.Worker) (string, error) {
	script, err := Script(s.tmpl, w)
	if err != nil {
		return "", fmt.Errorf("%w: slurm job script: %v", batch.ErrConfig, err)
	}
	path := filepath.Join(w.Dir, w.Name+".sbatch")
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		return "", fmt.Errorf("slurm: write job script: %w", err)
	}
	out, err := s.cfg.Exec(ctx, "sbatch", "--parsable", path)
	if err != nil {
		return "", classify(err)
	}
	id, _, _ := strings.Cut(strings.TrimSpace(out), ";") // "ID" or "ID;CLUSTER"
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return "", fmt.Errorf("%w: sbatch printed %q, not a job ID", batch.ErrUnavailable, out)
	}
	return id, nil
}

// classify tells a refused submission from a batch system that is down.
func classify(err error) error {
	return batch.Classify(err, "Unable to contact", "Socket timed out", "Connection refused", "Zero Bytes were transmitted", "slurm_load_jobs error: Unable")
}

// Status lists the user's jobs, ended ones included, once, and picks ids.
func (s *System) Status(ctx context.Context, ids []string) (map[string]batch.Status, error) {
	out, err := s.cfg.Exec(ctx, "squeue", "--noheader", "--me", "--states=all", "-O", "JobID:|,State:|,Reason:|,exit_code:|")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", batch.ErrUnavailable, err)
	}
	known := ParseSqueue(out)
	var gone []string
	for _, id := range ids {
		if _, ok := known[id]; !ok {
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 { // ended longer ago than MinJobAge: ask accounting, where there is one
		if out, err := s.cfg.Exec(ctx, "sacct", "--noheader", "--parsable2", "--allocations", "--format=JobID,State,ExitCode", "--jobs="+strings.Join(gone, ",")); err == nil {
			for id, st := range ParseSacct(out) {
				known[id] = st
			}
		}
	}
	return batch.Pick(known, ids, "known neither to squeue nor to sacct (no accounting here, or never existed)"), nil
}

// ParseSacct reads `sacct --parsable2 --allocations --format=JobID,State,ExitCode`.
func ParseSacct(out string) map[string]batch.Status {
	res := map[string]batch.Status{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) < 3 || f[0] == "" {
			continue
		}
		name, _, _ := strings.Cut(f[1], " ") // "CANCELLED by 0"
		st := batch.Status{ID: f[0], State: state(name)}
		code, sig, _ := strings.Cut(f[2], ":") // "EXIT:SIGNAL"
		if n, err := strconv.Atoi(code); err == nil {
			st.ExitCode = n
		}
		if n, err := strconv.Atoi(sig); err == nil && n != 0 {
			st.ExitCode = 128 + n
		}
		res[f[0]] = st
	}
	return res
}

// ParseSqueue reads `squeue -O JobID:|,State:|,Reason:|,exit_code:|`.
func ParseSqueue(out string) map[string]batch.Status {
	res := map[string]batch.Status{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) < 4 || f[0] == "" {
			continue
		}
		id := strings.TrimSpace(f[0])
		st := batch.Status{ID: id, State: state(strings.TrimSpace(f[1])), Reason: strings.TrimSpace(f[2])}
		if st.Reason == "None" {
			st.Reason = ""
		}
		if ws, err := strconv.Atoi(strings.TrimSpace(f[3])); err == nil && st.State.Final() {
			st.ExitCode = ws >> 8 // a wait status
			if sig := ws & 0x7f; sig != 0 {
				st.ExitCode = 128 + sig
			}
		}
		res[id] = st
	}
	return res
}

func state(s string) batch.State {
	switch s {
	case "PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SPECIAL_EXIT":
		return batch.Queued
	case "RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING":
		return batch.Running
	case "COMPLETED":
		return batch.Finished
	case "CANCELLED", "REVOKED":
		return batch.Cancelled
	}
	return batch.Failed // FAILED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, BOOT_FAIL, DEADLINE, PREEMPTED
}

func (s *System) Cancel(ctx context.Context, id string) error {
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return fmt.Errorf("%w: bad slurm job ID %q", batch.ErrConfig, id)
	}
	if _, err := s.cfg.Exec(ctx, "scancel", id); err != nil && !batch.Says(err, "already completing or completed", "Invalid job id") {
		return classify(err)
	}
	return nil
}
