package wire_test

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pando-wms/pando/dispatcher/wire"
)

var update = flag.Bool("update", false, "rewrite testdata/*.hex from the current encoding")

// TestGolden pins the framed encoding of every sample message, so a changed
// integer key, type number or field kind breaks a test. After a deliberate
// protocol change (and a Version bump), regenerate with
//
//	go test ./dispatcher/wire -run TestGolden -update
func TestGolden(t *testing.T) {
	for _, m := range samples() {
		name := strings.ToLower(reflect.TypeOf(m).Elem().Name())
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name+".hex")
			frame, err := wire.AppendFrame(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(path, []byte(hexLines(frame)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			want, err := hex.DecodeString(strings.Join(strings.Fields(string(text)), ""))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if !bytes.Equal(frame, want) {
				t.Errorf("encoding changed:\n got %s\nwant %s", hexLines(frame), hexLines(want))
			}
			// And the stored bytes still decode to the sample.
			got, err := wire.NewReader(bytes.NewReader(want), 0).Read()
			if err != nil {
				t.Fatalf("decode %s: %v", path, err)
			}
			if !equalMessages(got, m) {
				t.Errorf("decode %s:\n got %+v\nwant %+v", path, got, m)
			}
		})
	}
}

// hexLines formats b as hex, 32 bytes a line.
func hexLines(b []byte) string {
	var s strings.Builder
	for len(b) > 0 {
		n := min(len(b), 32)
		s.WriteString(hex.EncodeToString(b[:n]))
		s.WriteByte('\n')
		b = b[n:]
	}
	return s.String()
}
