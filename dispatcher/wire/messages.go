package wire

// Type identifies a message in a frame header.
type Type uint8

// Message types. Values are part of the protocol: never renumber.
const (
	TypeHello        Type = 1
	TypeWelcome      Type = 2
	TypeRefuse       Type = 3
	TypeWant         Type = 4
	TypeAssign       Type = 5
	TypeHeartbeat    Type = 6
	TypeHeartbeatAck Type = 7
	TypeKill         Type = 8
	TypeDrain        Type = 9

	TypeJobOpen  Type = 20
	TypeJobState Type = 21
	TypeSample   Type = 22
	TypeLog      Type = 23
	TypeReport   Type = 24
	TypeAck      Type = 25
	// On a stream of their own, opened by the agent: one request, one answer.
	TypeURLRequest Type = 26
	TypeURLs       Type = 27
	// Harvesters, each on a stream of its own: one request, one answer.
	TypeDemandQuery  Type = 30
	TypeDemand       Type = 31
	TypeWorkerReport Type = 32
	// Edges: Relay prefixes every stream an edge opens for one of its
	// agents; RelayClose (both ways, on the edge's control stream) ends
	// that agent's relayed connection.
	TypeRelay      Type = 33
	TypeRelayClose Type = 34
)

// Message is implemented by every protocol message.
type Message interface {
	Type() Type
}

// Resources is what an agent probed on its node.
type Resources struct {
	Hostname     string        `cbor:"1,keyasint,omitempty" json:"hostname,omitempty"`
	OS           string        `cbor:"2,keyasint,omitempty" json:"os,omitempty"`
	Arch         string        `cbor:"3,keyasint,omitempty" json:"arch,omitempty"`
	CPUModel     string        `cbor:"4,keyasint,omitempty" json:"cpu_model,omitempty"`
	Cores        int           `cbor:"5,keyasint,omitempty" json:"cores"`
	MemoryBytes  int64         `cbor:"6,keyasint,omitempty" json:"memory_bytes"`
	DiskBytes    int64         `cbor:"7,keyasint,omitempty" json:"disk_free_bytes"`
	Load1        float64       `cbor:"8,keyasint,omitempty" json:"load1"`
	GPUs         []GPU         `cbor:"9,keyasint,omitempty" json:"gpus"`
	Accelerators []Accelerator `cbor:"10,keyasint,omitempty" json:"accelerators,omitempty"`
	Driver       string        `cbor:"11,keyasint,omitempty" json:"gpu_driver,omitempty"`
	CUDA         string        `cbor:"12,keyasint,omitempty" json:"cuda_version,omitempty"`
	Runtimes     []string      `cbor:"13,keyasint,omitempty" json:"runtimes,omitempty"`
}

// GPU describes one GPU (or MIG instance) found on the node.
type GPU struct {
	Index        int    `cbor:"1,keyasint" json:"index"`
	UUID         string `cbor:"2,keyasint,omitempty" json:"uuid"`
	Model        string `cbor:"3,keyasint,omitempty" json:"model"`
	Vendor       string `cbor:"4,keyasint,omitempty" json:"vendor"`
	MemoryBytes  int64  `cbor:"5,keyasint,omitempty" json:"memory_bytes"`
	ComputeMajor int    `cbor:"6,keyasint,omitempty" json:"compute_major,omitempty"`
	ComputeMinor int    `cbor:"7,keyasint,omitempty" json:"compute_minor,omitempty"`
	MIG          bool   `cbor:"8,keyasint,omitempty" json:"mig,omitempty"`
	Utilization  int    `cbor:"9,keyasint,omitempty" json:"utilization_percent,omitempty"`
}

// Accelerator is a non-GPU accelerator (TPU, FPGA, ...), grouped by kind.
type Accelerator struct {
	Kind  string `cbor:"1,keyasint" json:"kind"`
	Model string `cbor:"2,keyasint,omitempty" json:"model,omitempty"`
	Count int    `cbor:"3,keyasint,omitempty" json:"count"`
}

// RunningJob names a job attempt an agent still runs (or holds an
// unacknowledged report for) when it reconnects.
type RunningJob struct {
	JobID   int64 `cbor:"1,keyasint" json:"job_id"`
	Attempt int   `cbor:"2,keyasint" json:"attempt"`
}

// Hello is the first message on the control stream, sent by the agent.
type Hello struct {
	Version   int          `cbor:"1,keyasint"`
	Kind      string       `cbor:"2,keyasint"`
	Name      string       `cbor:"3,keyasint"`
	AgentID   string       `cbor:"4,keyasint"` // stable for the agent's life, across reconnects
	Queue     string       `cbor:"5,keyasint,omitempty"`
	Token     string       `cbor:"6,keyasint"`
	Resources Resources    `cbor:"7,keyasint"`
	Running   []RunningJob `cbor:"8,keyasint,omitempty"`
	// Deadline is when the agent's own walltime ends (Unix seconds, 0: none).
	Deadline int64 `cbor:"9,keyasint,omitempty"`
}

// Welcome accepts a Hello.
type Welcome struct {
	Session int64 `cbor:"1,keyasint"`
	// HeartbeatMillis is the period at which the agent must send Heartbeat.
	HeartbeatMillis int64 `cbor:"2,keyasint"`
	// Drop lists jobs of Hello.Running that the dispatcher no longer wants
	// run (killed, or reassigned): the agent stops them and discards reports.
	Drop []RunningJob `cbor:"3,keyasint,omitempty"`
}

// Refuse rejects a Hello (or any message) with a reason; the sender closes
// the connection afterwards.
type Refuse struct {
	Code    int    `cbor:"1,keyasint"`
	Message string `cbor:"2,keyasint"`
}

// Want grants the dispatcher credit: room for Slots more jobs using together
// at most Cores cores and MemoryBytes of memory. Credits add up within a
// session; a new session starts from zero.
type Want struct {
	Slots       int   `cbor:"1,keyasint"`
	Cores       int   `cbor:"2,keyasint"`
	MemoryBytes int64 `cbor:"3,keyasint"`
	GPUs        int   `cbor:"4,keyasint,omitempty"`
	// Deadline is the agent's end of life (Unix seconds, 0: none); a job is
	// only assigned when its walltime fits before it.
	Deadline int64 `cbor:"5,keyasint,omitempty"`
}

// JobResources is what one job asks for.
type JobResources struct {
	Cores        int    `cbor:"1,keyasint"`
	MemoryBytes  int64  `cbor:"2,keyasint"`
	WalltimeSecs int64  `cbor:"3,keyasint"`
	GPUs         int    `cbor:"4,keyasint,omitempty"`
	GPUModel     string `cbor:"5,keyasint,omitempty"`
	GPUMemory    int64  `cbor:"6,keyasint,omitempty"`
	Accelerator  string `cbor:"7,keyasint,omitempty"`
	// GPUCompute is each GPU's minimum compute capability, MAJOR*100+MINOR.
	GPUCompute int `cbor:"8,keyasint,omitempty"`
}

// Assign pushes one job attempt to an agent.
type Assign struct {
	JobID     int64             `cbor:"1,keyasint"`
	TaskID    int64             `cbor:"2,keyasint"`
	Index     int               `cbor:"3,keyasint"`
	Attempt   int               `cbor:"4,keyasint"`
	Command   []string          `cbor:"5,keyasint"`
	Env       map[string]string `cbor:"6,keyasint,omitempty"`
	Image     string            `cbor:"7,keyasint,omitempty"`
	Resources JobResources      `cbor:"8,keyasint"`
	// SubmitUnixNano lets benchmarks measure submit-to-assign latency.
	SubmitUnixNano int64 `cbor:"9,keyasint,omitempty"`
	// Network: the payload may use the network (containers have none otherwise).
	Network bool `cbor:"10,keyasint,omitempty"`
	// Inputs are staged (or, with Stream, served by the node cache) before
	// the payload starts; Outputs are the patterns of files to upload after
	// it succeeds.
	Inputs  []InputFile `cbor:"11,keyasint,omitempty"`
	Outputs []string    `cbor:"12,keyasint,omitempty"`
	Stream  bool        `cbor:"13,keyasint,omitempty"`
}

// InputFile is one input of a job attempt.
type InputFile struct {
	Name    string `cbor:"1,keyasint"` // file name in the payload's input directory
	Size    int64  `cbor:"2,keyasint"`
	Adler32 string `cbor:"3,keyasint,omitempty"` // empty: not recorded, size only
	URL     string `cbor:"4,keyasint,omitempty"` // presigned GET, valid for the walltime and a margin
	// Source is ENDPOINT:BUCKET/PATH: the cache key, and for messages.
	Source string `cbor:"5,keyasint"`
}

// DemandQuery asks how much ready work of a queue fits one worker of the
// given shape (a harvester sizing its batch submissions).
type DemandQuery struct {
	Queue        string `cbor:"1,keyasint"`
	Cores        int    `cbor:"2,keyasint"`
	MemoryBytes  int64  `cbor:"3,keyasint"`
	WalltimeSecs int64  `cbor:"4,keyasint"`
	GPUs         int    `cbor:"5,keyasint,omitempty"`
}

// Demand answers a DemandQuery. Code is non-zero (an errcode) with Message
// when the query is refused.
type Demand struct {
	Ready      int    `cbor:"1,keyasint"` // ready jobs that fit the shape
	ReadyCores int    `cbor:"2,keyasint"` // their cores
	Running    int    `cbor:"3,keyasint"` // jobs running on the queue's agents
	Code       int    `cbor:"4,keyasint,omitempty"`
	Message    string `cbor:"5,keyasint,omitempty"`
}

// WorkerState is one batch worker as its harvester last saw it.
type WorkerState struct {
	Name          string `cbor:"1,keyasint"` // also its pilot's name
	BatchID       string `cbor:"2,keyasint"`
	State         string `cbor:"3,keyasint"` // queued, running, finished, failed, cancelled, missing
	Reason        string `cbor:"4,keyasint,omitempty"`
	ExitCode      int    `cbor:"5,keyasint,omitempty"`
	SubmittedUnix int64  `cbor:"6,keyasint"`
	UpdatedUnix   int64  `cbor:"7,keyasint"`
}

// WorkerReport replaces what the dispatcher knows of a harvester's workers
// in one queue; answered with Ack.
type WorkerReport struct {
	Queue   string        `cbor:"1,keyasint"`
	Batch   string        `cbor:"2,keyasint"` // the batch system's kind
	Workers []WorkerState `cbor:"3,keyasint"`
}

// Relay is the first frame of a stream an edge opens on behalf of one of
// the agents connected to it: the rest of the stream is that agent's.
// The first stream of a Conn is the agent's control stream.
type Relay struct {
	Conn   uint64 `cbor:"1,keyasint"` // the edge's number for the agent's connection
	Remote string `cbor:"2,keyasint,omitempty"`
}

// RelayClose ends a relayed agent connection: from the edge when the agent
// went away, from the dispatcher when it closes the agent's session.
type RelayClose struct {
	Conn   uint64 `cbor:"1,keyasint"`
	Code   int    `cbor:"2,keyasint,omitempty"`
	Reason string `cbor:"3,keyasint,omitempty"`
}

// OutputFile is one uploaded output, as the agent measured it.
type OutputFile struct {
	Name    string `cbor:"1,keyasint"` // path relative to the work directory
	Size    int64  `cbor:"2,keyasint"`
	Adler32 string `cbor:"3,keyasint"`
}

// URLRequest asks for presigned URLs for a running attempt: fresh GET URLs
// for inputs whose URL expired, by name, and PUT URLs for outputs, by name.
type URLRequest struct {
	JobID   int64    `cbor:"1,keyasint"`
	Attempt int      `cbor:"2,keyasint"`
	Inputs  []string `cbor:"3,keyasint,omitempty"`
	Outputs []string `cbor:"4,keyasint,omitempty"`
}

// URLs answers a URLRequest, in its order. Code is non-zero (an errcode)
// when the request was refused, with Message saying why.
type URLs struct {
	Inputs  []string `cbor:"1,keyasint,omitempty"`
	Outputs []string `cbor:"2,keyasint,omitempty"`
	Code    int      `cbor:"3,keyasint,omitempty"`
	Message string   `cbor:"4,keyasint,omitempty"`
}

// Heartbeat is sent by the agent every Welcome.HeartbeatMillis.
type Heartbeat struct {
	Seq      uint64  `cbor:"1,keyasint"`
	UnixNano int64   `cbor:"2,keyasint"`
	Running  int     `cbor:"3,keyasint,omitempty"`
	Load1    float64 `cbor:"4,keyasint,omitempty"`
	// CacheFilter summarises the node cache (a Bloom filter of its object
	// IDs, edge/cache.Summarize) with CacheHashes hash functions; sent when
	// the cache changed and on a new session, absent otherwise.
	CacheFilter []byte `cbor:"5,keyasint,omitempty"`
	CacheHashes int    `cbor:"6,keyasint,omitempty"`
}

// HeartbeatAck echoes a Heartbeat so the agent can measure round trips.
type HeartbeatAck struct {
	Seq      uint64 `cbor:"1,keyasint"`
	UnixNano int64  `cbor:"2,keyasint"`
}

// Kill asks the agent to stop a job attempt.
type Kill struct {
	JobID   int64  `cbor:"1,keyasint"`
	Attempt int    `cbor:"2,keyasint"`
	Reason  string `cbor:"3,keyasint,omitempty"`
}

// Drain asks the agent to take no new work and exit once its jobs end.
type Drain struct {
	Reason string `cbor:"1,keyasint,omitempty"`
}

// JobOpen is the first message on a job stream, opened by the agent.
type JobOpen struct {
	JobID   int64 `cbor:"1,keyasint"`
	Attempt int   `cbor:"2,keyasint"`
}

// Job phases reported in JobState.
const (
	PhaseStarting = "starting"
	PhaseStageIn  = "stagein"
	PhaseRunning  = "running"
	PhaseStageOut = "stageout"
)

// JobState reports a phase change of the attempt.
type JobState struct {
	Phase    string `cbor:"1,keyasint"`
	UnixNano int64  `cbor:"2,keyasint"`
}

// Sample is a resource-usage sample of the payload.
type Sample struct {
	UnixNano   int64   `cbor:"1,keyasint"`
	CPUPercent float64 `cbor:"2,keyasint"`
	RSSBytes   int64   `cbor:"3,keyasint"`
}

// Log streams.
const (
	Stdout = 1
	Stderr = 2
)

// Log is a chunk of the payload's output.
type Log struct {
	Stream int    `cbor:"1,keyasint"`
	Data   []byte `cbor:"2,keyasint"`
}

// Report is the final report of an attempt.
type Report struct {
	ExitCode      int     `cbor:"1,keyasint"`
	ErrorCode     int     `cbor:"2,keyasint,omitempty"`
	Error         string  `cbor:"3,keyasint,omitempty"`
	StartUnixNano int64   `cbor:"4,keyasint,omitempty"`
	EndUnixNano   int64   `cbor:"5,keyasint,omitempty"`
	CPUSeconds    float64 `cbor:"6,keyasint,omitempty"`
	MaxRSSBytes   int64   `cbor:"7,keyasint,omitempty"`
	// Outputs uploaded by the attempt (only when it succeeded).
	Outputs []OutputFile `cbor:"8,keyasint,omitempty"`
}

// Ack answers a Report (and a JobOpen): Code 0 means accepted and durable;
// otherwise the attempt is refused (stale attempt, unknown job) with Message.
type Ack struct {
	Code    int    `cbor:"1,keyasint,omitempty"`
	Message string `cbor:"2,keyasint,omitempty"`
}

func (*Hello) Type() Type        { return TypeHello }
func (*Welcome) Type() Type      { return TypeWelcome }
func (*Refuse) Type() Type       { return TypeRefuse }
func (*Want) Type() Type         { return TypeWant }
func (*Assign) Type() Type       { return TypeAssign }
func (*Heartbeat) Type() Type    { return TypeHeartbeat }
func (*HeartbeatAck) Type() Type { return TypeHeartbeatAck }
func (*Kill) Type() Type         { return TypeKill }
func (*Drain) Type() Type        { return TypeDrain }
func (*JobOpen) Type() Type      { return TypeJobOpen }
func (*JobState) Type() Type     { return TypeJobState }
func (*Sample) Type() Type       { return TypeSample }
func (*Log) Type() Type          { return TypeLog }
func (*Report) Type() Type       { return TypeReport }
func (*Ack) Type() Type          { return TypeAck }
func (*URLRequest) Type() Type   { return TypeURLRequest }
func (*URLs) Type() Type         { return TypeURLs }
func (*DemandQuery) Type() Type  { return TypeDemandQuery }
func (*Demand) Type() Type       { return TypeDemand }
func (*WorkerReport) Type() Type { return TypeWorkerReport }
func (*Relay) Type() Type        { return TypeRelay }
func (*RelayClose) Type() Type   { return TypeRelayClose }

// New returns an empty message of type t, or nil for an unknown type.
func New(t Type) Message {
	switch t {
	case TypeHello:
		return new(Hello)
	case TypeWelcome:
		return new(Welcome)
	case TypeRefuse:
		return new(Refuse)
	case TypeWant:
		return new(Want)
	case TypeAssign:
		return new(Assign)
	case TypeHeartbeat:
		return new(Heartbeat)
	case TypeHeartbeatAck:
		return new(HeartbeatAck)
	case TypeKill:
		return new(Kill)
	case TypeDrain:
		return new(Drain)
	case TypeJobOpen:
		return new(JobOpen)
	case TypeJobState:
		return new(JobState)
	case TypeSample:
		return new(Sample)
	case TypeLog:
		return new(Log)
	case TypeReport:
		return new(Report)
	case TypeAck:
		return new(Ack)
	case TypeURLRequest:
		return new(URLRequest)
	case TypeURLs:
		return new(URLs)
	case TypeDemandQuery:
		return new(DemandQuery)
	case TypeDemand:
		return new(Demand)
	case TypeWorkerReport:
		return new(WorkerReport)
	case TypeRelay:
		return new(Relay)
	case TypeRelayClose:
		return new(RelayClose)
	}
	return nil
}
