package pilot_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pando-wms/pando/dispatcher"
	"github.com/pando-wms/pando/pilot"
	"github.com/pando-wms/pando/plugins/storage"
	_ "github.com/pando-wms/pando/plugins/storage/s3"
	"github.com/pando-wms/pando/plugins/storage/s3/s3test"
)

// Six jobs read the same object: the node cache fetches it once, and every
// payload sees it whole; a stream job reads it through the cache's URL.
func TestInputsFetchedOncePerNode(t *testing.T) {
	srv := s3test.Start(t, "data")
	ctx := context.Background()
	ep, err := storage.New(ctx, storage.Config{Name: "lake", Kind: "s3", URL: srv.URL, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640,000 bytes: several ranges
	if _, err := ep.Put(ctx, "data", "shared/calib.db", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, dispatcher.Config{DataDir: t.TempDir(), Storage: storage.Set{"lake": ep}})
	p := e.pilot(pilot.Config{})
	in := strings.Repeat(`"lake:data/shared/calib.db", `, 6)
	id := e.submit(fmt.Sprintf(`command: 'test "$(wc -c < "$PANDO_INPUT_DIR/$PANDO_INPUTS")" = %d'
inputs: [%s]
resources: {cores: 1, memory: 16MiB}
`, len(data), strings.TrimSuffix(in, ", ")))
	if st := e.waitTask(id); st != "finished" {
		t.Fatalf("task %s", st)
	}
	if st := p.CacheStats(); st.Fills != 1 || st.Objects != 1 || st.Bytes != int64(len(data)) {
		t.Fatalf("cache %+v; want one fill of one %d-byte object", st, len(data))
	}
	id = e.submit(fmt.Sprintf(`command: 'test "$(busybox wget -q -O - "$PANDO_INPUT_URLS" | wc -c)" = %d'
inputs: ["lake:data/shared/calib.db"]
stream: true
resources: {cores: 1, memory: 16MiB}
`, len(data)))
	if st := e.waitTask(id); st != "finished" {
		t.Fatalf("stream task %s", st)
	}
	if st := p.CacheStats(); st.Fills != 1 {
		t.Fatalf("cache %+v after the stream job; want no new fill", st)
	}
}
