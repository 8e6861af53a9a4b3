package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needPodman builds the busybox test image; without podman the test fails
// in CI and is skipped elsewhere.
func needPodman(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("podman is required in CI: %v", err)
		}
		t.Skipf("podman not installed: %v", err)
	}
	if os.Getenv("CONTAINERS_CONF") == "" {
		t.Setenv("CONTAINERS_CONF", mustAbs(t, "containers.conf"))
	}
	if out, err := exec.Command("sh", "images/busybox.sh").CombinedOutput(); err != nil {
		t.Fatalf("build the test image: %v\n%s", err, out)
	}
}

// A task with an image runs in podman through dispatcher and pilot: its
// output proves it ran inside the container, with no network and none of
// the host's files; OOM, walltime and kill each end with their own code;
// logs arrive while the payload runs.
func TestPodmanPayloads(t *testing.T) {
	needPodman(t)
	c := newCluster(t, fastTimers...)
	c.startPilot("--containers", "podman", "--cores", "8")
	secret := c.tokenFile // the pilot's own token: it must stay out of reach

	inside := c.submit(fmt.Sprintf(`name: inside
image: localhost/busybox:test
command: ["/bin/sh", "-c", "cat /etc/os-release; echo net=$(ls /sys/class/net)=; cat %s 2>/dev/null || echo no-token; echo work=$(pwd)"]
`, secret))
	oom := c.submit(`name: oom
image: localhost/busybox:test
command: ["/bin/sh", "-c", "x=$(head -c 300000000 /dev/zero | tr '\\0' a)"]
resources: {memory: 32MiB}
`)
	wall := c.submit(`name: wall
image: localhost/busybox:test
command: ["sleep", "60"]
resources: {walltime: 2s}
`)
	live := c.submit(`name: live
image: localhost/busybox:test
command: ["/bin/sh", "-c", "echo first-line; sleep 60"]
`)
	missing := c.submit(`name: missing
image: localhost/pando-no-such-image:1
command: ["true"]
max_attempts: 1
`)

	// Live logs, then a kill.
	lj := c.jobs(live)[0]
	c.waitFor("the first line of a running payload", 60*time.Second, func() bool {
		out, _, _ := c.pandoRaw("logs", fmt.Sprint(lj.ID))
		return strings.Contains(out, "first-line") && c.job(lj.ID).State == "running"
	})
	c.pando("kill", fmt.Sprint(lj.ID))

	for _, tc := range []struct {
		task  int64
		state string
		code  int
	}{{inside, "finished", 0}, {oom, "failed", 2005}, {wall, "failed", 2003}, {live, "cancelled", 3001}, {missing, "failed", 2006}} {
		c.waitTask(tc.task, 2*time.Minute)
		j := c.jobs(tc.task)[0]
		if j.State != tc.state || j.ErrorCode != tc.code {
			t.Errorf("task %d: job %s with error %d (%s), want %s with %d", tc.task, j.State, j.ErrorCode, j.Error, tc.state, tc.code)
		}
	}
	out := c.pando("logs", fmt.Sprint(c.jobs(inside)[0].ID))
	for _, want := range []string{"Pando test busybox", "net=lo=", "no-token", "work=/"} {
		if !strings.Contains(out, want) {
			t.Errorf("log of the container job lacks %q:\n%s", want, out)
		}
	}
}

// A job that names an image never goes to a pilot without a container
// runtime: it waits until one with podman connects.
func TestImageJobsOnlyWherePodman(t *testing.T) {
	needPodman(t)
	c := newCluster(t, fastTimers...)
	c.startPilot("--containers", "none")
	id := c.submit("image: localhost/busybox:test\ncommand: [\"true\"]\n")
	time.Sleep(2 * time.Second)
	if j := c.jobs(id)[0]; j.State != "ready" {
		t.Fatalf("job %s on a pilot without podman, want ready", j.State)
	}
	c.startPilot("--containers", "podman")
	if code := c.waitTask(id, time.Minute); code != 0 {
		t.Fatalf("pando wait: exit %d", code)
	}
	if j := c.jobs(id)[0]; j.Agent != "pilot-2" {
		t.Fatalf("ran on %s, want pilot-2 (the one with podman)", j.Agent)
	}
}

func mustAbs(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(rel)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// `pando payload run` runs a job as a pilot would (same environment, the
// container, the limits) and exits with the payload's status; `pando
// payload check` reports what a payload finds in an image.
func TestPayloadCommands(t *testing.T) {
	needPodman(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "task.yaml")
	if err := os.WriteFile(file, []byte(`image: localhost/busybox:test
command: ["/bin/sh", "-c", "echo index=$PANDO_JOB_INDEX cores=$PANDO_CORES pwd=$(pwd); head -c 1 /sys/class/net/eth0/address 2>/dev/null || echo no-eth0; exit 5"]
jobs: 3
resources: {memory: 64MiB}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	wd := filepath.Join(dir, "wd")
	p := start(t, "payload-run", "payload", "run", file, "--job", "2", "--workdir", wd)
	if !p.exited(time.Minute) {
		t.Fatal("payload run did not end")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 5 {
		t.Errorf("exit status %d, want the payload's 5", code)
	}
	if out := p.out.String(); !strings.Contains(out, "index=2 cores=1 pwd="+wd) || !strings.Contains(out, "no-eth0") {
		t.Errorf("output %q: want job 2's environment, its work directory and no network", out)
	}

	oom := filepath.Join(dir, "oom.yaml")
	if err := os.WriteFile(oom, []byte("image: localhost/busybox:test\ncommand: [\"/bin/sh\", \"-c\", \"x=$(head -c 300000000 /dev/zero | tr '\\\\0' a)\"]\nresources: {memory: 32MiB}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p = start(t, "payload-oom", "payload", "run", oom)
	if !p.exited(time.Minute) {
		t.Fatal("payload run did not end")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 137 || !strings.Contains(p.out.String(), "out of memory") {
		t.Errorf("exit %d, output %q: want 137 and the OOM named", code, p.out.String())
	}

	p = start(t, "payload-check", "payload", "check", "localhost/busybox:test")
	if !p.exited(time.Minute) {
		t.Fatal("payload check did not end")
	}
	for _, want := range []string{"os:     Pando test busybox", "user:   root (uid 0)", "shells: /bin/sh", "gpus:   0"} {
		if !strings.Contains(p.out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, p.out.String())
		}
	}
}
