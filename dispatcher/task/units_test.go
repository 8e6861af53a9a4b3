package task

import (
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{"0", 0, ""},
		{"1000", 1000, ""},
		{"512B", 512, ""},
		{"1K", 1 << 10, ""},
		{"1k", 1 << 10, ""},
		{"256MiB", 256 << 20, ""},
		{"256mib", 256 << 20, ""},
		{"512M", 512 << 20, ""},
		{"2Gi", 2 << 30, ""},
		{"2GiB", 2 << 30, ""},
		{"1T", 1 << 40, ""},
		{"1TiB", 1 << 40, ""},
		{"1KB", 1000, ""},
		{"5MB", 5e6, ""},
		{"2GB", 2e9, ""},
		{"1TB", 1e12, ""},
		{"1.5GiB", 3 << 29, ""},
		{".5K", 512, ""},
		{" 64 MiB ", 64 << 20, ""},
		{"8388607TiB", 8388607 << 40, ""},
		{"8388608TiB", 0, "too large"},
		{"9223372036854775808", 0, "too large"},
		{"9999999.9TiB", 0, "too large"},
		{"", 0, "invalid size"},
		{"MiB", 0, "invalid size"},
		{"12XB", 0, `invalid size "12XB" (use e.g. 256MiB, 2GiB, 512M)`},
		{"-1", 0, "invalid size"},
		{"1.2.3M", 0, "invalid size"},
		{"1e9", 0, "invalid size"},
		{"1 G B", 0, "invalid size"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseSize(%q) = %d, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0B"},
		{100, "100B"},
		{1023, "1023B"},
		{1024, "1KiB"},
		{256 << 20, "256MiB"},
		{3 << 29, "1.5GiB"},
		{2e9, "1.9GiB"},
		{1 << 40, "1TiB"},
		{1 << 62, "4EiB"},
	}
	for _, tt := range tests {
		if got := FormatSize(tt.in); got != tt.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tt.in, got, tt.want)
		}
		if tt.in > 0 {
			if _, err := ParseSize(FormatSize(tt.in)); err != nil {
				t.Errorf("FormatSize(%d) does not parse: %v", tt.in, err)
			}
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"10m", 10 * time.Minute, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"1.5h", 90 * time.Minute, ""},
		{"600", 10 * time.Minute, ""},
		{"0", 0, ""},
		{"05:30", 5*time.Minute + 30*time.Second, ""},
		{"90:00", 90 * time.Minute, ""},
		{"01:30:00", 90 * time.Minute, ""},
		{"48:00:00", 48 * time.Hour, ""},
		{"2-00:00:00", 48 * time.Hour, ""},
		{"1-12", 36 * time.Hour, ""},
		{"1-12:30", 36*time.Hour + 30*time.Minute, ""},
		{"-1h", -time.Hour, ""},
		{"", 0, "invalid duration"},
		{"soon", 0, `invalid duration "soon" (use e.g. 10m, 1h30m, 2-00:00:00, or seconds)`},
		{"10", 10 * time.Second, ""},
		{"1:60", 0, "invalid duration"},
		{"1:2:3:4", 0, "invalid duration"},
		{"1-24:00:00", 0, "invalid duration"},
		{"1-", 0, "invalid duration"},
		{"a-01:00:00", 0, "invalid duration"},
		{"1:-5", 0, "invalid duration"},
		{"1:+5", 0, "invalid duration"},
		{"9999999999999", 0, "invalid duration"},
		{"999999999-00:00:00", 0, "too long"},
		{"100000000h", 0, "invalid duration"},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseDuration(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
