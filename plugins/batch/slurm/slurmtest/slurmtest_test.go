package slurmtest

import (
	"strings"
	"testing"
)

func TestStart(t *testing.T) {
	c := Start(t)
	out, err := c.Command("sbatch", "--parsable", "--wrap", "echo hi").CombinedOutput()
	if err != nil {
		t.Fatalf("sbatch: %v %s", err, out)
	}
	t.Logf("job %s", strings.TrimSpace(string(out)))
}
