package harvester

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/pando-wms/pando/dispatcher/task"
	"github.com/pando-wms/pando/plugins/batch"
)

// Config is a harvester's configuration file (pando harvester --config).
type Config struct {
	Dispatcher string        `yaml:"dispatcher"` // agents HOST:PORT of the dispatcher
	TokenFile  string        `yaml:"token_file"` // an agent (or operator) token
	CAFile     string        `yaml:"ca_file"`
	Pin        string        `yaml:"pin"`      // instead of ca_file: sha256:HEX of the dispatcher's certificate
	Name       string        `yaml:"name"`     // default: harvester-HOSTNAME
	WorkDir    string        `yaml:"work_dir"` // workers' directories and the state file (default pando-harvester)
	Interval   time.Duration `yaml:"interval"` // between cycles (default 10s)
	// PilotCommand is the pando binary workers run (default: this one).
	PilotCommand string        `yaml:"pilot_command"`
	Queues       []QueueConfig `yaml:"queues"`
	// Edge, when set, runs an edge in the harvester for compute nodes with
	// no route to the dispatcher; its pilots connect through it.
	Edge *EdgeConfig `yaml:"edge"`
}

// EdgeConfig is the harvester's edge.
type EdgeConfig struct {
	Listen  string   `yaml:"listen"`  // UDP HOST:PORT on the internal network
	Address string   `yaml:"address"` // what pilots dial (default listen)
	Hosts   []string `yaml:"hosts"`   // extra names for its certificate
	DataDir string   `yaml:"data"`    // default WORK_DIR/edge
	// Inputs for the compute nodes, fetched from the storage hosts listed
	// in data_allow and served from the edge's cache (pilots get
	// --input-proxy http://DATA_ADDRESS).
	DataListen  string   `yaml:"data_listen"`
	DataAddress string   `yaml:"data_address"` // default data_listen
	DataAllow   []string `yaml:"data_allow"`
	CacheSize   string   `yaml:"cache_size"` // default 100GiB
	cacheBytes  int64
}

// QueueConfig is one queue the harvester keeps workers for.
type QueueConfig struct {
	Name       string `yaml:"name"`
	Batch      string `yaml:"batch"` // slurm, local, pbs, htcondor
	MaxQueued  int    `yaml:"max_queued"`
	MaxRunning int    `yaml:"max_running"`
	// RampUp bounds submissions per cycle (default max_queued).
	RampUp int          `yaml:"ramp_up"`
	Worker WorkerConfig `yaml:"worker"`
	// Partition is the batch system's queue or partition ("": its default).
	Partition string `yaml:"partition"`
	// Template replaces the batch kind's job script template.
	Template string `yaml:"template"`
	// Timeout bounds each batch command (default 30s).
	Timeout time.Duration `yaml:"timeout"`
	// IdleExit: a pilot with no job for this long exits (default 2m).
	IdleExit time.Duration `yaml:"idle_exit"`
	// MaxQueueTime: a worker still queued after this is cancelled (default 24h).
	MaxQueueTime time.Duration `yaml:"max_queue_time"`
	// PilotArgs are added to the pilots' command line (e.g. --containers none).
	PilotArgs []string `yaml:"pilot_args"`
}

// WorkerConfig is the shape of one worker.
type WorkerConfig struct {
	Cores    int    `yaml:"cores"`
	Memory   string `yaml:"memory"`
	Walltime string `yaml:"walltime"`
	GPUs     int    `yaml:"gpus"`

	memory   int64
	walltime time.Duration
}

var queueName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// LoadConfig reads and checks a configuration file. Unknown keys and bad
// values are errors naming the field.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty configuration", path)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

func (c *Config) check() error {
	switch {
	case c.Dispatcher == "":
		return errors.New("dispatcher: required (HOST:PORT of the dispatcher's agent port)")
	case c.TokenFile == "":
		return errors.New("token_file: required")
	case c.CAFile == "" && c.Pin == "":
		return errors.New("ca_file or pin: required to verify the dispatcher")
	case len(c.Queues) == 0:
		return errors.New("queues: at least one queue is required")
	}
	if c.Interval == 0 {
		c.Interval = 10 * time.Second
	}
	if c.WorkDir == "" {
		c.WorkDir = "pando-harvester"
	}
	if e := c.Edge; e != nil {
		if e.Listen == "" {
			return errors.New("edge.listen: required (HOST:PORT pilots on the compute nodes reach)")
		}
		if e.Address == "" {
			e.Address = e.Listen
		}
		if e.DataDir == "" {
			e.DataDir = filepath.Join(c.WorkDir, "edge")
		}
		if e.DataListen != "" {
			if len(e.DataAllow) == 0 {
				return errors.New("edge.data_allow: required with data_listen (the storage HOST:PORT it may fetch from)")
			}
			if e.DataAddress == "" {
				e.DataAddress = e.DataListen
			}
			if e.CacheSize == "" {
				e.CacheSize = "100GiB"
			}
			var err error
			if e.cacheBytes, err = task.ParseSize(e.CacheSize); err != nil || e.cacheBytes <= 0 {
				return fmt.Errorf("edge.cache_size: %q: want a size such as 100GiB", e.CacheSize)
			}
		}
	}
	seen := map[string]bool{}
	for i := range c.Queues {
		q := &c.Queues[i]
		field := fmt.Sprintf("queues[%d]", i)
		if !queueName.MatchString(q.Name) {
			return fmt.Errorf("%s.name: %q is not a queue name", field, q.Name)
		}
		if seen[q.Name] {
			return fmt.Errorf("%s.name: queue %q listed twice", field, q.Name)
		}
		seen[q.Name] = true
		field = "queue " + q.Name
		if q.Batch == "" {
			return fmt.Errorf("%s: batch: required (%v)", field, batch.Kinds())
		}
		if q.MaxQueued < 0 || q.MaxRunning <= 0 {
			return fmt.Errorf("%s: max_running must be at least 1 and max_queued not negative", field)
		}
		if q.RampUp <= 0 {
			q.RampUp = max(q.MaxQueued, 1)
		}
		if q.IdleExit == 0 {
			q.IdleExit = 2 * time.Minute
		}
		if q.MaxQueueTime == 0 {
			q.MaxQueueTime = 24 * time.Hour
		}
		w := &q.Worker
		if w.Cores <= 0 {
			return fmt.Errorf("%s: worker.cores: must be at least 1", field)
		}
		var err error
		if w.memory, err = task.ParseSize(w.Memory); err != nil || w.memory <= 0 {
			return fmt.Errorf("%s: worker.memory: %q: want a size such as 4GiB", field, w.Memory)
		}
		if w.walltime, err = task.ParseDuration(w.Walltime); err != nil || w.walltime < 2*time.Minute {
			return fmt.Errorf("%s: worker.walltime: %q: want a duration of at least 2m, such as 1h", field, w.Walltime)
		}
	}
	return nil
}
