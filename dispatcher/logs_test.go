package dispatcher

import (
	"log/slog"
	"os"
	"strings"
	"testing"
)

func TestLogTruncated(t *testing.T) {
	d := &logDir{dir: t.TempDir(), max: 10}
	l := d.open(7, 1)
	for _, chunk := range []string{"12345", "67890abc", "more", "and more"} {
		if err := l.write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	l.close()
	got, err := os.ReadFile(d.path(7, 1))
	if err != nil {
		t.Fatal(err)
	}
	want := "1234567890\n[pando: output truncated at 10 bytes]\n"
	if string(got) != want {
		t.Fatalf("log = %q, want %q", got, want)
	}
	if strings.Count(string(got), "truncated") != 1 {
		t.Fatal("truncation noted more than once")
	}
}

func TestRateLogSuppresses(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, nil))
	r := rateLog{burst: 3}
	for range 10 {
		r.warn(log, "refused")
	}
	if n := strings.Count(buf.String(), "refused"); n != 3 {
		t.Fatalf("%d lines logged in one second, want 3", n)
	}
	r.second-- // as if a second passed
	r.warn(log, "refused")
	if !strings.Contains(buf.String(), "suppressed=7") {
		t.Fatalf("next line does not count the suppressed ones:\n%s", buf.String())
	}
}
