package wire_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/pando-wms/pando/dispatcher/wire"
)

// Job-stream messages: JobOpen, JobState, Sample, Log, Report, Ack.

func sampleJobOpen() *wire.JobOpen { return &wire.JobOpen{JobID: 123456789, Attempt: 3} }
func sampleJobState() *wire.JobState {
	return &wire.JobState{Phase: wire.PhaseRunning, UnixNano: 1_764_000_000_000_000_005}
}
func sampleSample() *wire.Sample {
	return &wire.Sample{UnixNano: 1_764_000_001_000_000_000, CPUPercent: 799.5, RSSBytes: 3 << 30}
}
func sampleLog() *wire.Log {
	return &wire.Log{Stream: wire.Stderr, Data: []byte("line 1\n\x00\xff binary\n")}
}
func sampleReport() *wire.Report {
	return &wire.Report{
		ExitCode: 137, ErrorCode: 2002, Error: "killed by signal 9",
		StartUnixNano: 1_764_000_000_000_000_000, EndUnixNano: 1_764_000_360_000_000_000,
		CPUSeconds: 2879.25, MaxRSSBytes: 7 << 30,
		Outputs: []wire.OutputFile{{Name: "out.txt", Size: 3, Adler32: "024d0127"}},
	}
}
func sampleAck() *wire.Ack { return &wire.Ack{Code: 3003, Message: "stale attempt"} }
func sampleURLRequest() *wire.URLRequest {
	return &wire.URLRequest{JobID: 9, Attempt: 2, Inputs: []string{"a.root"}, Outputs: []string{"out/x.txt", "y.log"}}
}
func sampleURLs() *wire.URLs {
	return &wire.URLs{Inputs: []string{"http://s3/a?X-Amz-Signature=1"}, Outputs: []string{"http://s3/x", "http://s3/y"},
		Code: 4004, Message: "no such input"}
}

func TestURLRequest(t *testing.T) { roundTrip(t, wire.TypeURLRequest, sampleURLRequest()) }
func TestURLs(t *testing.T)       { roundTrip(t, wire.TypeURLs, sampleURLs()) }

func TestJobOpen(t *testing.T)  { roundTrip(t, wire.TypeJobOpen, sampleJobOpen()) }
func TestJobState(t *testing.T) { roundTrip(t, wire.TypeJobState, sampleJobState()) }
func TestSample(t *testing.T)   { roundTrip(t, wire.TypeSample, sampleSample()) }
func TestReport(t *testing.T)   { roundTrip(t, wire.TypeReport, sampleReport()) }
func TestAck(t *testing.T)      { roundTrip(t, wire.TypeAck, sampleAck()) }

func TestLog(t *testing.T) {
	roundTrip(t, wire.TypeLog, sampleLog())
	big := &wire.Log{Stream: wire.Stdout, Data: bytes.Repeat([]byte("0123456789abcdef"), 40<<10)} // 640 KiB
	roundTrip(t, wire.TypeLog, big)
}

// TestLogDataOutlivesNextRead checks that a decoded Log's Data does not
// alias the Reader's frame buffer, which is reused for the next frame.
func TestLogDataOutlivesNextRead(t *testing.T) {
	var stream bytes.Buffer
	w := wire.NewWriter(&stream)
	for _, s := range []string{"first chunk", "SECOND CHUNK", "third"} {
		if err := w.Write(&wire.Log{Stream: wire.Stdout, Data: []byte(s)}); err != nil {
			t.Fatal(err)
		}
	}
	r := wire.NewReader(&stream, 0)
	var got []*wire.Log
	for i := 0; i < 3; i++ {
		m, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m.(*wire.Log))
	}
	for i, want := range []string{"first chunk", "SECOND CHUNK", "third"} {
		if string(got[i].Data) != want {
			t.Errorf("Log %d Data = %q after later reads, want %q", i, got[i].Data, want)
		}
	}
}

func sampleDemandQuery() *wire.DemandQuery {
	return &wire.DemandQuery{Queue: "hpc", Cores: 2, MemoryBytes: 4 << 30, WalltimeSecs: 3600, GPUs: 1}
}
func sampleDemand() *wire.Demand {
	return &wire.Demand{Ready: 40, ReadyCores: 40, Running: 3, Code: 1004, Message: "unknown queue"}
}
func sampleWorkerReport() *wire.WorkerReport {
	return &wire.WorkerReport{Queue: "hpc", Batch: "slurm", Workers: []wire.WorkerState{{Name: "hpc-1", BatchID: "12",
		State: "failed", Reason: "NonZeroExitCode", ExitCode: 3, SubmittedUnix: 1_764_000_000, UpdatedUnix: 1_764_000_060}}}
}

func TestDemandQuery(t *testing.T)  { roundTrip(t, wire.TypeDemandQuery, sampleDemandQuery()) }
func TestDemand(t *testing.T)       { roundTrip(t, wire.TypeDemand, sampleDemand()) }
func TestWorkerReport(t *testing.T) { roundTrip(t, wire.TypeWorkerReport, sampleWorkerReport()) }

func sampleRelay() *wire.Relay { return &wire.Relay{Conn: 1 << 40, Remote: "10.0.0.7:4433"} }
func sampleRelayClose() *wire.RelayClose {
	return &wire.RelayClose{Conn: 7, Code: wire.CloseHeartbeatLost, Reason: "no heartbeat"}
}

func TestRelay(t *testing.T)      { roundTrip(t, wire.TypeRelay, sampleRelay()) }
func TestRelayClose(t *testing.T) { roundTrip(t, wire.TypeRelayClose, sampleRelayClose()) }

// ReadOne takes exactly one frame off a stream, leaving the rest for the
// reader the stream is handed to.
func TestReadOne(t *testing.T) {
	buf, _ := wire.AppendFrame(nil, sampleRelay())
	buf, _ = wire.AppendFrame(buf, sampleJobOpen())
	r := bytes.NewReader(buf)
	m, err := wire.ReadOne(r, 1024)
	if err != nil || !equalMessages(m, sampleRelay()) {
		t.Fatalf("ReadOne = %+v, %v", m, err)
	}
	m, err = wire.NewReader(r, 0).Read()
	if err != nil || !equalMessages(m, sampleJobOpen()) {
		t.Fatalf("then Read = %+v, %v", m, err)
	}
	if _, err := wire.ReadOne(bytes.NewReader([]byte{0, 0, 4, 1, 33}), 1024); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Errorf("oversized frame: %v", err)
	}
}
