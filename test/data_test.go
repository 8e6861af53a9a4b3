package test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pando-wms/pando/plugins/storage"
	_ "github.com/pando-wms/pando/plugins/storage/s3"
	"github.com/pando-wms/pando/plugins/storage/s3/s3test"
)

// dataJob is the part of `pando job ID -o json` about files.
type dataJob struct {
	job
	Inputs  []dataFile `json:"inputs"`
	Outputs []dataFile `json:"outputs"`
}

type dataFile struct {
	Name     string `json:"name"`
	Endpoint string `json:"endpoint"`
	Bucket   string `json:"bucket"`
	Path     string `json:"path"`
	Size     int64  `json:"size"`
	Adler32  string `json:"adler32"`
}

// lake starts a real S3 server and returns it, an endpoint on it for the
// test's own checks, and a storage file naming it "lake" for the dispatcher.
func lake(t *testing.T, buckets ...string) (*s3test.Server, storage.Endpoint, string) {
	t.Helper()
	srv := s3test.Start(t, buckets...)
	cfg := storage.Config{Name: "lake", Kind: "s3", URL: srv.URL, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
	ep, err := storage.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "storage.yaml")
	writeFile(t, file, fmt.Sprintf("endpoints:\n  - {name: lake, kind: s3, url: %q, access_key: %s, secret_key: %s}\n",
		srv.URL, srv.AccessKey, srv.SecretKey))
	return srv, ep, file
}

// putFiles uploads n files of random sizes under prefix; it returns their
// contents by path.
func putFiles(t *testing.T, ep storage.Endpoint, bucket, prefix string, n int) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	r := rand.New(rand.NewPCG(1, uint64(n)))
	for i := range n {
		data := make([]byte, 1+r.IntN(300<<10))
		for k := range data {
			data[k] = byte(r.Uint32())
		}
		path := fmt.Sprintf("%sf%02d.dat", prefix, i)
		if _, err := ep.Put(context.Background(), bucket, path, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		files[path] = data
	}
	return files
}

// A task over a 40-file dataset, 4 files per job, runs as 10 jobs on two
// pilots: each payload finds its 4 inputs read-only in $PANDO_INPUT_DIR,
// listed in $PANDO_INPUTS, with the right sizes; its outputs land in S3
// under the task's path template, whole, with the adler32 the job records.
func TestDataStaging(t *testing.T) {
	_, ep, storageFile := lake(t, "data", "results")
	files := putFiles(t, ep, "data", "run1/", 40)
	c := newCluster(t, append(fastTimers, "--storage", storageFile)...)
	c.startPilot("--cores", "4")
	c.startPilot("--cores", "4")
	id := c.submit(`name: staged
command: |
  set -e
  IFS=,
  for f in $PANDO_INPUTS; do echo "$f $(wc -c < "$PANDO_INPUT_DIR/$f")" >> out.txt; done
  test ! -w "$PANDO_INPUT_DIR" || test "$(id -u)" = 0
  mkdir -p sub && echo "$PANDO_JOB_INDEX" > sub/index.txt
inputs: {endpoint: lake, bucket: data, prefix: run1/}
files_per_job: 4
outputs: {endpoint: lake, bucket: results, path: "{task}/{job}/", patterns: ["*.txt", "sub/*.txt"]}
resources: {cores: 1, memory: 64MiB, walltime: 5m}
`)
	if code := c.waitTask(id, 3*time.Minute); code != 0 {
		t.Fatalf("task did not finish: %s", c.pando("jobs", "--task", fmt.Sprint(id)))
	}
	jobs := c.jobs(id)
	if len(jobs) != 10 {
		t.Fatalf("%d jobs, want 10", len(jobs))
	}
	seen := map[string]bool{}
	for _, j := range jobs {
		var d dataJob
		c.pandoJSON(&d, "job", fmt.Sprint(j.ID))
		if len(d.Inputs) != 4 || len(d.Outputs) != 2 {
			t.Fatalf("job %d: %d inputs, %d outputs; want 4 and 2", j.ID, len(d.Inputs), len(d.Outputs))
		}
		var want strings.Builder
		for _, in := range d.Inputs {
			data := files[in.Path]
			if in.Size != int64(len(data)) || in.Adler32 != adler(t, data) || in.Name != filepath.Base(in.Path) {
				t.Errorf("job %d input %+v: want size %d adler32 %s", j.ID, in, len(data), adler(t, data))
			}
			if seen[in.Path] {
				t.Errorf("input %s given to two jobs", in.Path)
			}
			seen[in.Path] = true
			fmt.Fprintf(&want, "%s %d\n", in.Name, len(data))
		}
		got := map[string][]byte{}
		for _, out := range d.Outputs {
			if wantPath := fmt.Sprintf("%d/%d/%s", id, j.ID, out.Name); out.Path != wantPath || out.Bucket != "results" {
				t.Errorf("job %d output stored at %s/%s, want results/%s", j.ID, out.Bucket, out.Path, wantPath)
			}
			data := readObject(t, ep, out.Bucket, out.Path)
			if int64(len(data)) != out.Size || adler(t, data) != out.Adler32 {
				t.Errorf("job %d output %s: S3 holds %d bytes adler32 %s, job records %d %s",
					j.ID, out.Name, len(data), adler(t, data), out.Size, out.Adler32)
			}
			got[out.Name] = data
		}
		if string(got["out.txt"]) != want.String() {
			t.Errorf("job %d out.txt:\n%s\nwant:\n%s", j.ID, got["out.txt"], want.String())
		}
		if string(got["sub/index.txt"]) != fmt.Sprintf("%d\n", j.Index) {
			t.Errorf("job %d sub/index.txt = %q", j.ID, got["sub/index.txt"])
		}
	}
	if len(seen) != 40 {
		t.Errorf("%d distinct inputs staged, want 40", len(seen))
	}
	// The human view shows the files too.
	out := c.pando("job", fmt.Sprint(jobs[0].ID))
	if !strings.Contains(out, "INPUT") || !strings.Contains(out, "OUTPUT") || !strings.Contains(out, "lake:results/") {
		t.Errorf("pando job lacks the file tables:\n%s", out)
	}
}

// A byte flipped in an object on the S3 side is caught at stage-in: the
// attempt is retried, and when the corruption persists the job fails with
// the stage-in checksum code; the payload never runs.
func TestDataCorruptInput(t *testing.T) {
	srv, ep, storageFile := lake(t, "data")
	putFiles(t, ep, "data", "bad/", 1)
	onDisk := filepath.Join(srv.Dir, "data", "bad", "f00.dat")
	b, err := os.ReadFile(onDisk)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(onDisk, b, 0o644); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, append(fastTimers, "--storage", storageFile)...)
	c.startPilot()
	id := c.submit(`command: "echo PAYLOAD RAN"
inputs: {endpoint: lake, bucket: data, prefix: bad/}
max_attempts: 2
`)
	c.waitTask(id, 2*time.Minute)
	j := c.jobs(id)[0]
	full := c.job(j.ID)
	if j.State != "failed" || j.ErrorCode != 4002 || len(full.Attempts) != 2 {
		t.Fatalf("job %+v; want failed with 4002 (stagein_checksum) after 2 attempts", full)
	}
	for _, a := range full.Attempts {
		if a.ErrorCode != 4002 {
			t.Errorf("attempt %d ended with %d, want 4002", a.Attempt, a.ErrorCode)
		}
	}
	if !strings.Contains(j.Error, "adler32") {
		t.Errorf("error %q does not name the checksum", j.Error)
	}
	if out := c.pando("logs", fmt.Sprint(j.ID)); strings.Contains(out, "PAYLOAD RAN") {
		t.Errorf("the payload ran on corrupt input: %q", out)
	}
}

// Bad data references and an unreachable S3 server are refused at submit
// with messages that say what is wrong; nothing is stored.
func TestDataSubmitErrors(t *testing.T) {
	srv, ep, storageFile := lake(t, "data")
	putFiles(t, ep, "data", "ok/", 1)
	c := newCluster(t, "--storage", storageFile)
	for _, tc := range []struct{ name, spec, want string }{
		{"unknown endpoint", "inputs: {endpoint: lakee, bucket: data, prefix: ok/}", `no storage endpoint "lakee" (known: lake)`},
		{"empty dataset", "inputs: {endpoint: lake, bucket: data, prefix: nothing/}", "holds no files"},
		{"missing file", `inputs: ["lake:data/ok/nope.dat"]`, "not found"},
		{"unknown output endpoint", "outputs: {endpoint: sea, bucket: x, patterns: ['*']}", `outputs.endpoint: no storage endpoint "sea"`},
	} {
		_, errOut, code := c.pandoRaw("submit", c.taskFile("command: [/bin/true]\n"+tc.spec+"\n"))
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want failure saying %q", tc.name, code, errOut, tc.want)
		}
	}
	srv.Stop()
	_, errOut, code := c.pandoRaw("submit", c.taskFile("command: [/bin/true]\ninputs: {endpoint: lake, bucket: data, prefix: ok/}\n"))
	if code == 0 || !strings.Contains(errOut, "storage unreachable") {
		t.Errorf("S3 down: exit %d, stderr %q; want a failure saying the storage is unreachable", code, errOut)
	}
	var tasks []struct{ ID int64 }
	c.pandoJSON(&tasks, "tasks")
	if len(tasks) != 0 {
		t.Errorf("refused submissions stored %d tasks", len(tasks))
	}
}

func readObject(t *testing.T, ep storage.Endpoint, bucket, path string) []byte {
	t.Helper()
	r, err := ep.Open(context.Background(), bucket, path, 0, -1)
	if err != nil {
		t.Fatalf("read %s/%s: %v", bucket, path, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func adler(t *testing.T, data []byte) string {
	t.Helper()
	sum, _, err := storage.Adler32(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// In a container, the staged inputs are mounted read-only at
// $PANDO_INPUT_DIR, and the outputs still go back to S3; the node cache and
// other jobs' directories stay out of sight.
func TestDataInContainer(t *testing.T) {
	needPodman(t)
	_, ep, storageFile := lake(t, "data", "results")
	files := putFiles(t, ep, "data", "c/", 2)
	c := newCluster(t, append(fastTimers, "--storage", storageFile)...)
	c.startPilot("--containers", "podman")
	id := c.submit(`image: localhost/busybox:test
command:
  - /bin/sh
  - -c
  - |
    IFS=,
    for f in $PANDO_INPUTS; do wc -c < "$PANDO_INPUT_DIR/$f" >> sizes.txt; done
    if touch "$PANDO_INPUT_DIR/new" 2>/dev/null; then echo writable; else echo read-only; fi > ro.txt
    ls "$(dirname "$PWD")" > seen.txt
inputs: {endpoint: lake, bucket: data, prefix: c/}
files_per_job: 2
outputs: {endpoint: lake, bucket: results, patterns: ["*.txt"]}
`)
	if code := c.waitTask(id, 3*time.Minute); code != 0 {
		t.Fatalf("task did not finish: %+v", c.jobs(id))
	}
	j := c.jobs(id)[0]
	read := func(name string) string {
		return string(readObject(t, ep, "results", fmt.Sprintf("%d/%d/%s", id, j.ID, name)))
	}
	want := fmt.Sprintf("%d\n%d\n", len(files["c/f00.dat"]), len(files["c/f01.dat"]))
	if got := read("sizes.txt"); got != want {
		t.Errorf("sizes seen in the container %q, want %q", got, want)
	}
	if got := read("ro.txt"); got != "read-only\n" {
		t.Errorf("input directory in the container: %q", got)
	}
	// The work directory's parent holds only this job's directory and inputs.
	for _, name := range strings.Fields(read("seen.txt")) {
		if !strings.HasPrefix(name, fmt.Sprintf("job-%d.", j.ID)) {
			t.Errorf("the container sees %q beside its work directory", name)
		}
	}
}

// Inputs on tape go through the data carousel: jobs wait in pending while
// their files are staged through the endpoint's window (4 files here), and
// become ready as they arrive; files are released when their jobs end. The
// emulated buffer holds exactly the window: one file beyond it, or a file
// never released, would fail staging (and the job with 4005).
func TestDataTapeCarousel(t *testing.T) {
	dir := t.TempDir()
	const size = 100 << 10
	var inputs []string
	for _, cart := range []string{"c1", "c2"} {
		if err := os.MkdirAll(filepath.Join(dir, "tape", cart), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 6 {
		for _, cart := range []string{"c1", "c2"} { // each job needs both cartridges
			data := bytes.Repeat([]byte{byte('a' + i)}, size)
			writeFile(t, filepath.Join(dir, "tape", cart, fmt.Sprintf("%s-%d.raw", cart, i)), string(data))
			inputs = append(inputs, fmt.Sprintf("archive:%s/%s-%d.raw", cart, cart, i))
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	start(t, "tape", "tape", "serve", "--dir", dir, "--addr", addr, "--drives", "1", "--mount", "300ms",
		"--seek", "10ms", "--buffer", fmt.Sprint(4*size), "--secret", "tapesecret")
	storageFile := filepath.Join(t.TempDir(), "storage.yaml")
	writeFile(t, storageFile, fmt.Sprintf(`endpoints:
  - {name: archive, kind: tape, url: "http://%s", secret_key: tapesecret, window_files: 4, window_bytes: %d}
`, addr, 4*size))
	c := newCluster(t, append(fastTimers, "--storage", storageFile)...)
	c.startPilot("--cores", "4")
	id := c.submit(fmt.Sprintf(`command: 'test "$(cat "$PANDO_INPUT_DIR"/* | wc -c)" = %d'
inputs: ["%s"]
files_per_job: 2
`, 2*size, strings.Join(inputs, `", "`)))
	pending := 0
	for _, j := range c.jobs(id) {
		if j.State == "pending" {
			pending++
		}
	}
	if pending == 0 {
		t.Errorf("no job waited in pending for its tape inputs")
	}
	if code := c.waitTask(id, 3*time.Minute); code != 0 {
		t.Fatalf("task did not finish: %+v", c.jobs(id))
	}
	// More than the window fits: a window larger than 4 files would also
	// be refused for 5 files per job.
	_, errOut, code := c.pandoRaw("submit", c.taskFile(fmt.Sprintf("command: [/bin/true]\ninputs: [\"%s\"]\nfiles_per_job: 5\n", strings.Join(inputs, `", "`))))
	if code == 0 || !strings.Contains(errOut, "4-file window") {
		t.Errorf("5 files per job through a 4-file window: exit %d, %q", code, errOut)
	}
}
