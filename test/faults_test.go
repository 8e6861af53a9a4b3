package test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/pando-wms/pando/dispatcher/pki"
	"github.com/pando-wms/pando/dispatcher/wire"
)

// A dispatcher killed with SIGKILL mid-task and restarted on the same data
// loses no job and finishes none twice; pilots reconnect by themselves.
func TestDispatcherKilledRestarted(t *testing.T) {
	c := newCluster(t, fastTimers...)
	c.startPilot("--cores", "4")
	c.startPilot("--cores", "4")
	marker := filepath.Join(c.dir, "runs.txt")
	id := c.submit(fmt.Sprintf(`name: crash
command: ["/bin/sh", "-c", "sleep 0.2; echo $PANDO_JOB_ID >> %s"]
jobs: 120
resources: {walltime: 1m}
`, marker))
	c.waitFor("some jobs finished", time.Minute, func() bool {
		n := 0
		for _, j := range c.jobs(id) {
			if j.State == "finished" {
				n++
			}
		}
		return n >= 20
	})
	c.disp.kill9()
	time.Sleep(500 * time.Millisecond)
	c.startDispatcher()
	if code := c.waitTask(id, 2*time.Minute); code != 0 {
		t.Fatalf("pando wait after restart: exit %d, want 0", code)
	}
	jobs := c.jobs(id)
	if len(jobs) != 120 {
		t.Fatalf("%d jobs after restart, want 120", len(jobs))
	}
	for _, j := range jobs {
		if j.State != "finished" {
			t.Errorf("job %d ended %s", j.ID, j.State)
			continue
		}
		finished := 0
		for _, a := range c.job(j.ID).Attempts {
			if a.State == "finished" {
				finished++
			}
		}
		if finished != 1 {
			t.Errorf("job %d has %d finished attempts, want 1", j.ID, finished)
		}
	}
	data, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}
	ran := map[string]int{}
	for _, l := range strings.Fields(string(data)) {
		ran[l]++
	}
	if len(ran) != 120 {
		t.Errorf("%d distinct jobs ran to the end, want 120", len(ran))
	}
}

// dialRaw opens a QUIC connection and control stream to the dispatcher,
// as a misbehaving agent would.
func dialRaw(t *testing.T, c *cluster) (*quic.Conn, *quic.Stream) {
	t.Helper()
	tlsConf, err := pki.ClientTLS(c.caFile, "", wire.ALPN, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, c.agents, tlsConf, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return conn, st
}

// expectClosed waits for the dispatcher to close the connection with code.
func expectClosed(t *testing.T, conn *quic.Conn, st *quic.Stream, code int) string {
	t.Helper()
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(st)
	for {
		if _, err := r.ReadByte(); err != nil {
			var appErr *quic.ApplicationError
			select {
			case <-conn.Context().Done():
			case <-time.After(5 * time.Second):
				t.Fatalf("connection still open after %v", err)
			}
			if err := context.Cause(conn.Context()); !errors.As(err, &appErr) || int(appErr.ErrorCode) != code {
				t.Fatalf("connection closed with %v, want application code %d", err, code)
			}
			return appErr.ErrorMessage
		}
	}
}

// Oversized and garbled frames, and an unknown protocol version, are
// refused with a clear reason; the dispatcher keeps serving other agents.
func TestBadFramesRefused(t *testing.T) {
	c := newCluster(t, fastTimers...)
	c.startPilot()

	conn, st := dialRaw(t, c)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 0xFFFFFFF0)
	st.Write(hdr[:])
	if msg := expectClosed(t, conn, st, wire.CloseProtocol); !strings.Contains(msg, "too large") {
		t.Errorf("oversized frame: reason %q", msg)
	}

	conn, st = dialRaw(t, c)
	st.Write([]byte{0, 0, 0, 6, byte(wire.TypeHello), 0xff, 0x13, 0x37, 0x00, 0x01})
	if msg := expectClosed(t, conn, st, wire.CloseProtocol); !strings.Contains(msg, "malformed") {
		t.Errorf("garbled frame: reason %q", msg)
	}

	conn, st = dialRaw(t, c)
	frame, _ := wire.AppendFrame(nil, &wire.Hello{Version: wire.Version + 41, Kind: "pilot", Name: "future", AgentID: "x"})
	st.Write(frame)
	if msg := expectClosed(t, conn, st, wire.CloseBadVersion); !strings.Contains(msg, "version") {
		t.Errorf("bad version: reason %q", msg)
	}

	id := c.submit("name: after\ncommand: [\"/bin/true\"]\njobs: 5\n")
	if code := c.waitTask(id, time.Minute); code != 0 {
		t.Fatalf("task after bad frames: pando wait exit %d", code)
	}
}

// An agent ID stays bound to the token that first used it: another agent
// token cannot take the agent over (and with it, its jobs).
func TestAgentIDBoundToToken(t *testing.T) {
	c := newCluster(t)
	hello := func(tokenFile string) (*quic.Conn, *quic.Stream) {
		tok, err := os.ReadFile(tokenFile)
		if err != nil {
			t.Fatal(err)
		}
		conn, st := dialRaw(t, c)
		frame, _ := wire.AppendFrame(nil, &wire.Hello{Version: wire.Version, Kind: wire.KindPilot, Name: "node",
			AgentID: "agent-x", Token: strings.TrimSpace(string(tok)), Resources: wire.Resources{Cores: 1, MemoryBytes: 1 << 30}})
		st.Write(frame)
		return conn, st
	}
	conn, st := hello(c.newToken("agent", "site-a"))
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	if m, err := wire.NewReader(st, 0).Read(); err != nil {
		t.Fatalf("first hello: %v", err)
	} else if _, ok := m.(*wire.Welcome); !ok {
		t.Fatalf("first hello answered %T, want Welcome", m)
	}
	conn.CloseWithError(0, "")
	conn, st = hello(c.newToken("agent", "site-b"))
	if msg := expectClosed(t, conn, st, wire.CloseUnauthorized); !strings.Contains(msg, "belongs to another token") {
		t.Errorf("takeover refused with %q", msg)
	}
}
