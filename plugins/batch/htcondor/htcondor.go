// Package htcondor is the batch kind for HTCondor, driven through
// condor_submit, condor_q, condor_history and condor_rm (JSON output). No
// HTCondor runs here: it is tested on recorded command outputs.
package htcondor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"github.com/pando-wms/pando/plugins/batch"
)

func init() {
	batch.Register("htcondor", func(c batch.Config) (batch.System, error) {
		t, err := c.JobTemplate(DefaultTemplate)
		if err != nil {
			return nil, err
		}
		return &System{cfg: c, tmpl: t}, nil
	})
}

// DefaultTemplate is the submit description unless a queue gives its own.
// .Script is the worker's shell script; .WalltimeSecs bounds the run.
const DefaultTemplate = `universe = vanilla
executable = {{.Script}}
initialdir = {{.Dir}}
output = {{.Dir}}/{{.Name}}.out
error = {{.Dir}}/{{.Name}}.out
log = {{.Dir}}/{{.Name}}.log
request_cpus = {{.Cores}}
request_memory = {{.MemoryMB}}
+JobBatchName = "{{.Name}}"
periodic_remove = (JobStatus == 2) && (time() - EnteredCurrentStatus > {{.WalltimeSecs}})
{{- if .Queue}}
+PandoQueue = "{{.Queue}}"
{{- end}}
queue
`

// System is an HTCondor schedd reached through its CLI.
type System struct {
	cfg  batch.Config
	tmpl *template.Template
}

func (s *System) Kind() string { return "htcondor" }

var terseID = regexp.MustCompile(`^(\d+\.\d+)`)

func (s *System) Submit(ctx context.Context, w batch.Worker) (string, error) {
	env := make([]string, 0, len(w.Env))
	for k, v := range w.Env {
		env = append(env, "export "+k+"="+batch.ShellQuote(v))
	}
	slices.Sort(env)
	script := filepath.Join(w.Dir, w.Name+".sh")
	body := "#!/bin/sh\n" + strings.Join(append(env, "exec "+batch.ShellCommand(w.Command)), "\n") + "\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		return "", fmt.Errorf("htcondor: write worker script: %w", err)
	}
	var b strings.Builder
	err := s.tmpl.Execute(&b, map[string]any{
		"Name": w.Name, "Script": script, "Dir": w.Dir, "Cores": max(w.Cores, 1), "MemoryMB": max(w.Memory>>20, 1),
		"WalltimeSecs": max(int64(w.Walltime.Seconds()), 60), "Queue": w.Queue,
	})
	if err != nil {
		return "", fmt.Errorf("%w: htcondor submit file: %v", batch.ErrConfig, err)
	}
	sub := filepath.Join(w.Dir, w.Name+".sub")
	if err := os.WriteFile(sub, []byte(b.String()), 0o600); err != nil {
		return "", fmt.Errorf("htcondor: write submit file: %w", err)
	}
	out, err := s.cfg.Exec(ctx, "condor_submit", "-terse", sub)
	if err != nil {
		return "", classify(err)
	}
	m := terseID.FindStringSubmatch(strings.TrimSpace(out)) // "123.0 - 123.0"
	if m == nil {
		return "", fmt.Errorf("%w: condor_submit printed %q, not a job ID", batch.ErrUnavailable, out)
	}
	return m[1], nil
}

func classify(err error) error {
	return batch.Classify(err, "Failed to connect", "Can't find address", "Unable to contact", "SECMAN")
}

const attrs = "ClusterId,ProcId,JobStatus,ExitCode,ExitBySignal,ExitSignal,HoldReason,RemoveReason"

func (s *System) Status(ctx context.Context, ids []string) (map[string]batch.Status, error) {
	live, err := s.cfg.Exec(ctx, "condor_q", append([]string{"-json", "-attributes", attrs}, ids...)...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", batch.ErrUnavailable, err)
	}
	known, err := ParseAds(live)
	if err != nil {
		return nil, fmt.Errorf("%w: condor_q: %v", batch.ErrUnavailable, err)
	}
	var gone []string
	for _, id := range ids {
		if _, ok := known[id]; !ok {
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 { // ended jobs leave the queue for the history
		hist, err := s.cfg.Exec(ctx, "condor_history", append([]string{"-json", "-attributes", attrs}, gone...)...)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", batch.ErrUnavailable, err)
		}
		ended, err := ParseAds(hist)
		if err != nil {
			return nil, fmt.Errorf("%w: condor_history: %v", batch.ErrUnavailable, err)
		}
		for id, st := range ended {
			known[id] = st
		}
	}
	return batch.Pick(known, ids, "in neither condor_q nor condor_history"), nil
}

// ParseAds reads job ClassAds printed by condor_q or condor_history -json.
func ParseAds(out string) (map[string]batch.Status, error) {
	res := map[string]batch.Status{}
	if strings.TrimSpace(out) == "" {
		return res, nil
	}
	var ads []struct {
		ClusterID    int    `json:"ClusterId"`
		ProcID       int    `json:"ProcId"`
		JobStatus    int    `json:"JobStatus"`
		ExitCode     *int   `json:"ExitCode"`
		ExitBySignal bool   `json:"ExitBySignal"`
		ExitSignal   int    `json:"ExitSignal"`
		HoldReason   string `json:"HoldReason"`
		RemoveReason string `json:"RemoveReason"`
	}
	if err := json.Unmarshal([]byte(out), &ads); err != nil {
		return nil, err
	}
	for _, a := range ads {
		id := fmt.Sprintf("%d.%d", a.ClusterID, a.ProcID)
		st := batch.Status{ID: id}
		switch a.JobStatus {
		case 1: // idle
			st.State = batch.Queued
		case 5: // held: waits for someone to release it
			st.State, st.Reason = batch.Queued, "held: "+a.HoldReason
		case 2, 6, 7: // running, transferring output, suspended
			st.State = batch.Running
		case 3:
			st.State, st.Reason = batch.Cancelled, a.RemoveReason
		case 4:
			switch {
			case a.ExitBySignal:
				st.State, st.ExitCode = batch.Failed, 128+a.ExitSignal
			case a.ExitCode != nil && *a.ExitCode != 0:
				st.State, st.ExitCode = batch.Failed, *a.ExitCode
			default:
				st.State = batch.Finished
			}
		default:
			st.State, st.Reason = batch.Failed, fmt.Sprintf("unknown JobStatus %d", a.JobStatus)
		}
		res[id] = st
	}
	return res, nil
}

func (s *System) Cancel(ctx context.Context, id string) error {
	if _, err := s.cfg.Exec(ctx, "condor_rm", id); err != nil && !batch.Says(err, "not found", "already") {
		return classify(err)
	}
	return nil
}
