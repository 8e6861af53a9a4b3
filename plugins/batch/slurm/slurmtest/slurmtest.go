// Package slurmtest starts a real single-node Slurm (munged, slurmctld,
// slurmd) in a temporary directory for tests, as ../shared/ENVIRONMENT.md
// describes. `make test` installs the packages (test/deps.sh); in CI a
// missing Slurm fails the test, elsewhere it skips.
package slurmtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Cluster is a running single-node Slurm.
type Cluster struct {
	Conf string   // slurm.conf: set SLURM_CONF to it (Env does)
	Env  []string // SLURM_CONF=...
	Dir  string
	cmds []*exec.Cmd
}

// Start runs a Slurm cluster until the test ends.
func Start(t testing.TB) *Cluster {
	t.Helper()
	for _, bin := range []string{"slurmctld", "slurmd", "munged", "sbatch"} {
		if _, err := exec.LookPath(bin); err != nil {
			if _, err2 := os.Stat("/usr/sbin/" + bin); err2 == nil {
				continue
			}
			if os.Getenv("CI") == "true" {
				t.Fatalf("slurm is required in CI: %s: %v", bin, err)
			}
			t.Skipf("slurm not installed (%s): make test installs it", bin)
		}
	}
	// Not t.TempDir: its parent is private to root, and munged runs as
	// munge and must reach its socket.
	dir, err := os.MkdirTemp("", "pando-slurm-")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Launch(dir)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(); os.RemoveAll(dir) })
	return c
}

// Launch starts munged, slurmctld and slurmd over dir and waits for the
// node to be idle.
func Launch(dir string) (*Cluster, error) {
	if err := os.Chmod(dir, 0o755); err != nil { // munged runs as munge and must reach its socket
		return nil, err
	}
	c := &Cluster{Dir: dir, Conf: filepath.Join(dir, "slurm.conf")}
	c.Env = []string{"SLURM_CONF=" + c.Conf}
	munge := filepath.Join(dir, "munge")
	if err := os.MkdirAll(munge, 0o755); err != nil { // munged wants its socket reachable by all
		return nil, err
	}
	u, err := user.Lookup("munge")
	if err != nil {
		return nil, fmt.Errorf("slurmtest: no munge user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chmod(munge, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chown(munge, uid, gid); err != nil {
		return nil, err
	}
	sock := filepath.Join(munge, "munge.socket.2")
	if err := c.start("runuser", "-u", "munge", "--", "/usr/sbin/munged", "-F", "--socket="+sock,
		"--pid-file="+filepath.Join(munge, "munged.pid"), "--log-file="+filepath.Join(munge, "munged.log"),
		"--seed-file="+filepath.Join(munge, "munged.seed")); err != nil {
		return nil, err
	}
	if err := waitFor(5*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }); err != nil {
		c.Stop()
		return nil, fmt.Errorf("slurmtest: munged did not start: %w", err)
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	host, _, _ = strings.Cut(host, ".")
	for _, d := range []string{"state", "spool"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	conf := fmt.Sprintf(`ClusterName=pando
SlurmctldHost=%s(127.0.0.1)
SlurmctldPort=%d
SlurmdPort=%d
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=%s
StateSaveLocation=%s
SlurmdSpoolDir=%s
SlurmctldPidFile=%s
SlurmdPidFile=%s
SlurmctldLogFile=%s
SlurmdLogFile=%s
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=600
ReturnToService=2
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 RealMemory=20000
PartitionName=debug Nodes=localhost Default=YES State=UP OverSubscribe=FORCE:16 MaxTime=UNLIMITED
SchedulerParameters=batch_sched_delay=0
`, host, freePort(), freePort(), sock, filepath.Join(dir, "state"), filepath.Join(dir, "spool"),
		filepath.Join(dir, "slurmctld.pid"), filepath.Join(dir, "slurmd.pid"),
		filepath.Join(dir, "slurmctld.log"), filepath.Join(dir, "slurmd.log"))
	if err := os.WriteFile(c.Conf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if err := c.start("slurmctld", "-D", "-i", "-f", c.Conf); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.start("slurmd", "-D", "-N", "localhost", "-f", c.Conf); err != nil {
		c.Stop()
		return nil, err
	}
	err = waitFor(30*time.Second, func() bool {
		out, err := c.Command("sinfo", "--noheader", "--format=%t").Output()
		return err == nil && strings.TrimSpace(string(out)) == "idle"
	})
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "slurmctld.log"))
		c.Stop()
		return nil, fmt.Errorf("slurmtest: the node did not become idle: %v\n%s", err, tail(log))
	}
	return c, nil
}

// Command runs a Slurm client command against the cluster.
func (c *Cluster) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), c.Env...)
	return cmd
}

func (c *Cluster) start(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Dir = c.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	out, err := os.Create(filepath.Join(c.Dir, filepath.Base(name)+".stdout"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("slurmtest: start %s: %w", name, err)
	}
	out.Close()
	c.cmds = append(c.cmds, cmd)
	return nil
}

// Stop ends the daemons (and the jobs they run), last started first.
func (c *Cluster) Stop() {
	for i := len(c.cmds) - 1; i >= 0; i-- {
		cmd := c.cmds[i]
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	c.cmds = nil
}

func waitFor(d time.Duration, ok func() bool) error {
	for deadline := time.Now().Add(d); !ok(); {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
