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
}

// Resources is what each job of the task needs.
type Resources struct {
	Cores       int           `json:"cores"`
	MemoryBytes int64         `json:"memory_bytes"`
	Walltime    time.Duration `json:"walltime_ns"`
	GPUs        int           `json:"gpus,omitempty"`
	GPUModel    string        `json:"gpu_model,omitempty"`
	GPUMemory   int64         `json:"gpu_memory_bytes,omitempty"`
	Accelerator string        `json:"accelerator,omitempty"`
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
