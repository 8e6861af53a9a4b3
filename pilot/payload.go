package pilot

import (
	"strconv"
	"strings"

	"github.com/pando-wms/pando/containers"
	"github.com/pando-wms/pando/dispatcher/wire"
)

// PayloadSpec is how a pilot runs job attempt a in work directory dir with
// the GPUs gpus: its command, image, environment, limits and isolation.
// `pando payload run` uses it too, so that a payload developer's local run
// is the pilot's run. Stdout and Stderr are the caller's to set.
func PayloadSpec(name string, a *wire.Assign, dir string, gpus []string) containers.Spec {
	return containers.Spec{
		Name:    name,
		Image:   a.Image,
		Command: a.Command,
		Env:     payloadEnv(a, dir, gpus),
		WorkDir: dir,
		Network: a.Network,
		GPUs:    gpus,
		Limits:  containers.Limits{Cores: a.Resources.Cores, MemoryBytes: a.Resources.MemoryBytes, PIDs: DefaultPIDs},
	}
}

// DefaultPIDs bounds the processes of one payload, so that a fork bomb
// takes down its job and not the node (enforced by container runtimes).
const DefaultPIDs = 16384

// payloadEnv is the task's environment plus the PANDO_* variables.
func payloadEnv(a *wire.Assign, dir string, gpus []string) map[string]string {
	env := make(map[string]string, len(a.Env)+7)
	for k, v := range a.Env {
		env[k] = v
	}
	env["PANDO_TASK_ID"] = strconv.FormatInt(a.TaskID, 10)
	env["PANDO_JOB_ID"] = strconv.FormatInt(a.JobID, 10)
	env["PANDO_JOB_INDEX"] = strconv.Itoa(a.Index)
	env["PANDO_ATTEMPT"] = strconv.Itoa(a.Attempt)
	env["PANDO_WORKDIR"] = dir
	env["PANDO_CORES"] = strconv.Itoa(a.Resources.Cores)
	env["PANDO_GPUS"] = strings.Join(gpus, ",")
	return env
}
