package task

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// sizeUnits maps lower-cased suffixes to bytes. Bare K/M/G/T are binary, as
// in Slurm's --mem; KB/MB/GB/TB are decimal; Ki/Mi/... are Kubernetes'.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "ki": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mi": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gi": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	"t": 1 << 40, "ti": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	"p": 1 << 50, "pi": 1 << 50, "pib": 1 << 50, "pb": 1e15,
	"e": 1 << 60, "ei": 1 << 60, "eib": 1 << 60, "eb": 1e18,
}

// ParseSize reads a byte size: a plain integer is bytes, otherwise a number
// (fractions allowed) and a unit such as 256MiB, 2G or 1.5GB.
func ParseSize(s string) (int64, error) {
	bad := fmt.Errorf("invalid size %s (use e.g. 256MiB, 2GiB, 512M)", quote(s))
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, bad
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64/mult {
			return 0, fmt.Errorf("size %s is too large", quote(s))
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, bad
	}
	v := math.Round(f * float64(mult))
	if v >= math.MaxInt64 { // float64(MaxInt64) is 2^63, one past the range
		return 0, fmt.Errorf("size %s is too large", quote(s))
	}
	return int64(v), nil
}

// FormatSize renders n bytes for display in the largest binary unit it
// reaches: "256MiB", "1.5GiB", "100B". Fractions are rounded to one digit.
func FormatSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	if n < 1024 {
		return strconv.FormatInt(n, 10) + "B"
	}
	u := 0
	for u+1 < len(units) && n>>(10*(u+1)) > 0 {
		u++
	}
	whole := n >> (10 * u)
	if n&(1<<(10*u)-1) == 0 {
		return strconv.FormatInt(whole, 10) + units[u]
	}
	s := strconv.FormatFloat(float64(n)/float64(int64(1)<<(10*u)), 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + units[u]
}

// maxSeconds is the longest duration, in seconds, a time.Duration holds.
const maxSeconds = math.MaxInt64 / int64(time.Second)

// ParseDuration reads a walltime: Go syntax (10m, 1h30m), Slurm's
// [D-]HH:MM:SS, D-HH[:MM] or MM:SS, or a plain integer of seconds.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if d, ok, err := slurmDuration(t); ok {
		if err != nil {
			return 0, fmt.Errorf("%w %s (use e.g. 10m, 1h30m, 2-00:00:00, or seconds)", err, quote(s))
		}
		return d, nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %s (use e.g. 10m, 1h30m, 2-00:00:00, or seconds)", quote(s))
	}
	return d, nil
}

// slurmDuration parses the integer and colon forms; ok is false when t
// looks like Go syntax instead.
func slurmDuration(t string) (d time.Duration, ok bool, err error) {
	days, rest, hasDays := strings.Cut(t, "-")
	if !hasDays {
		days, rest = "0", t
	}
	if !digits(days) || (!hasDays && !digits(rest) && !strings.Contains(rest, ":")) {
		return 0, false, nil
	}
	bad := fmt.Errorf("invalid duration")
	parts := strings.Split(rest, ":")
	var units []int64 // seconds per part; the first part may exceed its range
	switch {
	case !hasDays && len(parts) == 1:
		units = []int64{1}
	case !hasDays && len(parts) == 2:
		units = []int64{60, 1}
	case len(parts) == 3:
		units = []int64{3600, 60, 1}
	case hasDays && len(parts) == 1:
		units = []int64{3600}
	case hasDays && len(parts) == 2:
		units = []int64{3600, 60}
	default:
		return 0, true, bad
	}
	total, err := strconv.ParseInt(days, 10, 64)
	if err != nil || total > maxSeconds/86400 {
		return 0, true, fmt.Errorf("too long a duration")
	}
	total *= 86400
	for i, p := range parts {
		v, err := strconv.ParseInt(p, 10, 64)
		if !digits(p) || err != nil || v > maxSeconds {
			return 0, true, bad
		}
		if (i > 0 && v >= 60) || (i == 0 && hasDays && v >= 24) {
			return 0, true, bad
		}
		if total += v * units[i]; total > maxSeconds {
			return 0, true, fmt.Errorf("too long a duration")
		}
	}
	return time.Duration(total) * time.Second, true, nil
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// quote quotes s for an error message, shortened if long.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:61] + "..."
	}
	return strconv.Quote(s)
}
