// Package wire is the agent protocol between the dispatcher and its agents
// (pilots, edges, harvesters): the messages, their CBOR encoding and the
// length-prefixed framing used on QUIC streams. It is the one contract that
// both sides import.
package wire

// Version is the protocol version. A peer announcing another version is
// refused with a clear error at Hello.
//
// History:
//
//	1 (2026-11-27): Hello/Welcome/Want/Assign/Heartbeat/Kill/Drain on the
//	  control stream; JobOpen/JobState/Sample/Log/Report/Ack on job streams.
//	  Later additions that old peers may ignore (optional keys, same version):
//	  Assign.Network (key 10); Assign.Inputs/Outputs/Stream (keys 11-13),
//	  Report.Outputs (key 8), URLRequest/URLs (types 26, 27),
//	  Heartbeat.CacheFilter/CacheHashes (keys 5, 6); DemandQuery/Demand/
//	  WorkerReport (types 30-32, harvesters); Relay/RelayClose (33, 34,
//	  edges); JobResources.GPUCompute (key 8). A pilot that predates
//	  the data keys would run a data job without its inputs.
const Version = 1

// ALPN is the TLS application protocol negotiated by agents and dispatcher.
const ALPN = "pando/1"

// Agent kinds announced in Hello.
const (
	KindPilot     = "pilot"
	KindEdge      = "edge"
	KindHarvester = "harvester"
	KindBench     = "bench"
)

// QUIC application error codes used when closing a connection.
const (
	CloseNormal        = 0
	CloseBadVersion    = 1
	CloseUnauthorized  = 2
	CloseProtocol      = 3
	CloseShutdown      = 4
	CloseReplaced      = 5
	CloseHeartbeatLost = 6
	CloseBadQueue      = 7
)
