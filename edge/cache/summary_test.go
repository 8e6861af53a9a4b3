package cache

import (
	"fmt"
	"testing"
)

func TestSummary(t *testing.T) {
	var ids []string
	for i := range 1000 {
		ids = append(ids, InputKey(fmt.Sprintf("lake:data/f%d", i), "", int64(i)).ID())
	}
	bits, k := Summarize(ids)
	s, err := ParseSummary(bits, k)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if !s.Holds(id) {
			t.Fatalf("summary misses %s", id)
		}
	}
	fp := 0
	for i := range 10000 {
		if s.Holds(InputKey(fmt.Sprintf("lake:other/f%d", i), "", 1).ID()) {
			fp++
		}
	}
	if fp > 300 { // 1% expected; 3% would mean the sizing is wrong
		t.Errorf("%d false positives in 10,000", fp)
	}
	if len(bits) > 2000 {
		t.Errorf("summary of 1,000 objects takes %d bytes", len(bits))
	}
	empty, k := Summarize(nil)
	if s, err := ParseSummary(empty, k); err != nil || s.Holds(ids[0]) {
		t.Errorf("empty summary: %v, holds %v", err, err == nil && s.Holds(ids[0]))
	}
	for _, bad := range []struct {
		bits []byte
		k    int
	}{{nil, 7}, {make([]byte, 7), 7}, {make([]byte, 8), 0}, {make([]byte, 8), 99}, {make([]byte, maxSummaryBytes+8), 7}} {
		if _, err := ParseSummary(bad.bits, bad.k); err == nil {
			t.Errorf("ParseSummary(%d bytes, %d) accepted", len(bad.bits), bad.k)
		}
	}
}
