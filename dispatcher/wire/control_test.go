package wire_test

import (
	"testing"

	"github.com/pando-wms/pando/dispatcher/wire"
)

// Control-stream messages: Hello, Welcome, Refuse, Want, Assign, Heartbeat,
// HeartbeatAck, Kill, Drain.

func sampleHello() *wire.Hello {
	return &wire.Hello{
		Version: wire.Version,
		Kind:    wire.KindPilot,
		Name:    "pilot-wn042-7",
		AgentID: "0f8fad5b-d9cb-469f-a165-70867728950e",
		Queue:   "CERN-PROD_GPU",
		Token:   "tok-secret",
		Resources: wire.Resources{
			Hostname:    "wn042.cern.ch",
			OS:          "linux",
			Arch:        "amd64",
			CPUModel:    "AMD EPYC 7742",
			Cores:       128,
			MemoryBytes: 512 << 30,
			DiskBytes:   2 << 40,
			Load1:       3.25,
			GPUs: []wire.GPU{{
				Index: 1, UUID: "GPU-1234", Model: "NVIDIA H100", Vendor: "nvidia",
				MemoryBytes: 80 << 30, ComputeMajor: 9, ComputeMinor: 1, MIG: true, Utilization: 42,
			}},
			Accelerators: []wire.Accelerator{{Kind: "fpga", Model: "Alveo U250", Count: 2}},
			Driver:       "550.54.15",
			CUDA:         "12.4",
			Runtimes:     []string{"process", "podman"},
		},
		Running:  []wire.RunningJob{{JobID: 1 << 40, Attempt: 2}, {JobID: 7, Attempt: 1}},
		Deadline: 1_900_000_000,
	}
}

func sampleWelcome() *wire.Welcome {
	return &wire.Welcome{Session: 99, HeartbeatMillis: 5000, Drop: []wire.RunningJob{{JobID: 7, Attempt: 1}}}
}

func sampleRefuse() *wire.Refuse {
	return &wire.Refuse{Code: wire.CloseBadVersion, Message: "protocol version 2 not supported"}
}

func sampleWant() *wire.Want {
	return &wire.Want{Slots: 4, Cores: 16, MemoryBytes: 64 << 30, GPUs: 2, Deadline: 1_900_000_000}
}

func sampleAssign() *wire.Assign {
	return &wire.Assign{
		JobID:   123456789,
		TaskID:  4242,
		Index:   17,
		Attempt: 3,
		Command: []string{"/bin/sh", "-c", "echo héllo; exit 0"},
		Env:     map[string]string{"PANDO_JOB": "123456789"}, // one entry: map order is not deterministic
		Image:   "docker.io/library/alpine:3.20",
		Resources: wire.JobResources{
			Cores: 8, MemoryBytes: 16 << 30, WalltimeSecs: 86400,
			GPUs: 1, GPUModel: "H100", GPUMemory: 40 << 30, Accelerator: "fpga", GPUCompute: 900,
		},
		SubmitUnixNano: 1_764_000_000_123_456_789,
		Network:        true,
		Inputs:         []wire.InputFile{{Name: "f1", Size: 12, Adler32: "0a0b0c0d", URL: "http://x/f1?sig", Source: "lake:data/run1/f1"}},
		Outputs:        []string{"*.txt"},
		Stream:         true,
	}
}

func sampleHeartbeat() *wire.Heartbeat {
	return &wire.Heartbeat{Seq: 1<<64 - 1, UnixNano: 1_764_000_000_000_000_001, Running: 3, Load1: 0.5,
		CacheFilter: []byte{1, 2, 3, 4, 5, 6, 7, 8}, CacheHashes: 7}
}

func sampleHeartbeatAck() *wire.HeartbeatAck {
	return &wire.HeartbeatAck{Seq: 77, UnixNano: -1}
}

func sampleKill() *wire.Kill {
	return &wire.Kill{JobID: 5, Attempt: 1, Reason: "killed by operator"}
}

func sampleDrain() *wire.Drain {
	return &wire.Drain{Reason: "node maintenance"}
}

func TestHello(t *testing.T)   { roundTrip(t, wire.TypeHello, sampleHello()) }
func TestWelcome(t *testing.T) { roundTrip(t, wire.TypeWelcome, sampleWelcome()) }
func TestRefuse(t *testing.T)  { roundTrip(t, wire.TypeRefuse, sampleRefuse()) }
func TestWant(t *testing.T)    { roundTrip(t, wire.TypeWant, sampleWant()) }

func TestAssign(t *testing.T) {
	roundTrip(t, wire.TypeAssign, sampleAssign())

	a := sampleAssign()
	a.Env = map[string]string{"A": "1", "B": "", "PATH": "/usr/bin:/bin", "ünï": "cödé"}
	roundTrip(t, wire.TypeAssign, a)
}

func TestHeartbeat(t *testing.T)    { roundTrip(t, wire.TypeHeartbeat, sampleHeartbeat()) }
func TestHeartbeatAck(t *testing.T) { roundTrip(t, wire.TypeHeartbeatAck, sampleHeartbeatAck()) }
func TestKill(t *testing.T)         { roundTrip(t, wire.TypeKill, sampleKill()) }
func TestDrain(t *testing.T)        { roundTrip(t, wire.TypeDrain, sampleDrain()) }
