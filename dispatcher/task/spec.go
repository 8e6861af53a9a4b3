// Package task parses and validates the task files users submit.
package task

import "time"

// Spec is a parsed, validated task file. Its JSON form is what the store
// keeps and what the API returns.
type Spec struct {
	Name        string            `json:"name"`
	Command     []string          `json:"command"`
	Image       string            `json:"image,omitempty"`
	Network     bool              `json:"network,omitempty"` // containers: a network (default none)
	Env         map[string]string `json:"env,omitempty"`
	Jobs        int               `json:"jobs"`
	Resources   Resources         `json:"resources"`
	Priority    int               `json:"priority"`
	MaxAttempts int               `json:"max_attempts"`
	Queue       string            `json:"queue,omitempty"`
	// Share is the fair share its jobs count against ("" : default).
	Share string `json:"share,omitempty"`
	// Data. With Inputs, the number of jobs follows from the files and
	// FilesPerJob (a dataset is listed when the task is submitted).
	Inputs      *Inputs  `json:"inputs,omitempty"`
	FilesPerJob int      `json:"files_per_job,omitempty"`
	Outputs     *Outputs `json:"outputs,omitempty"`
	// Stream: the payload reads its inputs through the node cache's HTTP
	// URLs (PANDO_INPUT_URLS) instead of staged copies.
	Stream bool `json:"stream,omitempty"`
}

// JobsFor is the number of jobs that n input files make.
func (s *Spec) JobsFor(n int) int { return (n + s.FilesPerJob - 1) / s.FilesPerJob }

// Resources is what each job of the task needs.
type Resources struct {
	Cores       int           `json:"cores"`
	MemoryBytes int64         `json:"memory_bytes"`
	Walltime    time.Duration `json:"walltime_ns"`
	GPUs        int           `json:"gpus,omitempty"`
	GPUModel    string        `json:"gpu_model,omitempty"`
	GPUMemory   int64         `json:"gpu_memory_bytes,omitempty"`
	Accelerator string        `json:"accelerator,omitempty"`
	// GPUCompute is the minimum CUDA compute capability of each GPU, "8.0"
	// (NVIDIA GPUs only: other vendors' numbers do not compare).
	GPUCompute string `json:"gpu_compute,omitempty"`
	// Arch is the CPU architecture (Go's names; x86_64 and aarch64 are
	// accepted as amd64 and arm64).
	Arch string `json:"arch,omitempty"`
}

// Defaults applied to fields a task file leaves out.
const (
	DefaultName        = "task"
	DefaultCores       = 1
	DefaultMemory      = 512 << 20
	DefaultWalltime    = time.Hour
	DefaultPriority    = 0
	DefaultMaxAttempts = 3
	DefaultJobs        = 1
)
