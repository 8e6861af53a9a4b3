// Package bench load-tests a dispatcher with simulated agents over real
// QUIC: they speak the full agent protocol, but their payloads finish at
// once, so what is measured is the dispatcher (and the protocol) alone.
package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/sync/errgroup"

	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/dispatcher/workers"
)

// simAgent is one simulated agent connection.
type simAgent struct {
	name string
	conn *quic.Conn
	ctrl *wire.Writer
	run  *run
}

// run is the shared state of one benchmark run.
type run struct {
	token   string
	slots   int
	queue   string // the queue agents join ("": default)
	done    atomic.Int64
	target  int64
	latMu   sync.Mutex
	lat     *latencies
	allDone chan struct{}
	once    sync.Once
	errs    atomic.Int64
	refused atomic.Int64 // dials that had to be retried
	pool    *workers.Pool
	readers wire.ReaderPool // for the report streams
	rtt     latencies       // heartbeat round trips
	lost    atomic.Int64    // connections closed by the dispatcher
	ending  atomic.Bool     // the benchmark is closing its connections
	whyMu   sync.Mutex
	why     map[string]int // lost connections by reason
	period  atomic.Int64   // heartbeat period from Welcome, in ms (0: the caller's)
	liveMu  sync.Mutex
	live    []*simAgent // connected so far, in order: heartbeat walks it
}

func (r *run) connected(a *simAgent) {
	r.liveMu.Lock()
	r.live = append(r.live, a)
	r.liveMu.Unlock()
}

func (r *run) agent(i int) *simAgent {
	r.liveMu.Lock()
	defer r.liveMu.Unlock()
	if i < len(r.live) {
		return r.live[i]
	}
	return nil
}

// lose counts an agent's connection ended by anything but the benchmark.
func (r *run) lose(err error) {
	r.lost.Add(1)
	why := err.Error()
	if len(why) > 120 {
		why = why[:120]
	}
	r.whyMu.Lock()
	defer r.whyMu.Unlock()
	if r.why == nil {
		r.why = make(map[string]int)
	}
	if len(r.why) < 10 || r.why[why] > 0 {
		r.why[why]++
	}
}

// lostReasons is a copy of the reasons counted by lose.
func (r *run) lostReasons() map[string]int {
	r.whyMu.Lock()
	defer r.whyMu.Unlock()
	return maps.Clone(r.why)
}

// dialAgents connects n agents through one UDP socket, at most 256
// handshakes in flight (more only makes the kernel drop packets).
func dialAgents(ctx context.Context, addr string, tlsConf *tls.Config, n int, r *run) ([]*simAgent, *quic.Transport, error) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, nil, err
	}
	tr := &quic.Transport{Conn: udp}
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		tr.Close()
		return nil, nil, err
	}
	agents := make([]*simAgent, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(256)
	for i := range agents {
		g.Go(func() error {
			// A loaded server refuses handshakes its accept queue has no
			// room for; real pilots back off and retry, and so do these.
			var err error
			for try := range 6 {
				if try > 0 {
					time.Sleep(time.Duration(50<<try) * time.Millisecond)
				}
				if agents[i], err = dialAgent(gctx, tr, raddr, tlsConf, fmt.Sprintf("bench-%05d", i), r); err == nil {
					r.connected(agents[i])
					return nil
				}
				r.refused.Add(1)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		for _, a := range agents {
			if a != nil {
				a.conn.CloseWithError(0, "")
			}
		}
		tr.Close()
		return nil, nil, err
	}
	return agents, tr, nil
}

func dialAgent(ctx context.Context, tr *quic.Transport, addr net.Addr, tlsConf *tls.Config, name string, r *run) (*simAgent, error) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := tr.Dial(dctx, addr, tlsConf, &quic.Config{MaxIdleTimeout: 2 * time.Minute, KeepAlivePeriod: 20 * time.Second,
		MaxIncomingStreams: -1, MaxIncomingUniStreams: -1})
	if err != nil {
		return nil, fmt.Errorf("%s: dial: %w", name, err)
	}
	a, err := handshake(dctx, conn, name, r)
	if err != nil {
		conn.CloseWithError(0, "")
		return nil, err
	}
	return a, nil
}

func handshake(ctx context.Context, conn *quic.Conn, name string, r *run) (*simAgent, error) {
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: control stream: %w", name, err)
	}
	a := &simAgent{name: name, conn: conn, ctrl: wire.NewWriter(st), run: r}
	rd := wire.NewReader(st, 0)
	hello := &wire.Hello{Version: wire.Version, Kind: wire.KindBench, Name: name, AgentID: name, Token: r.token,
		Queue: r.queue, Resources: wire.Resources{Cores: r.slots, MemoryBytes: int64(r.slots) << 30, Arch: runtime.GOARCH}}
	if err := a.ctrl.Write(hello); err != nil {
		return nil, fmt.Errorf("%s: hello: %w", name, err)
	}
	m, err := rd.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: welcome: %w", name, err)
	}
	if ref, ok := m.(*wire.Refuse); ok {
		return nil, fmt.Errorf("%s: refused: %s", name, ref.Message)
	}
	if w, ok := m.(*wire.Welcome); ok && w.HeartbeatMillis > 0 {
		r.period.Store(w.HeartbeatMillis) // heartbeat as often as the dispatcher asks, like a pilot
	}
	go a.serve(rd)
	return a, nil
}

// latencies is the current step's collector (the latency bench swaps it).
func (r *run) latencies() *latencies {
	r.latMu.Lock()
	defer r.latMu.Unlock()
	return r.lat
}

// start grants the agent its slots.
func (a *simAgent) start() error {
	s := a.run.slots
	return a.ctrl.Write(&wire.Want{Slots: s, Cores: s, MemoryBytes: int64(s) << 30})
}

// serve reads pushed messages until the connection closes; a close the
// benchmark did not ask for counts as a lost agent.
func (a *simAgent) serve(rd *wire.Reader) {
	for {
		m, err := rd.Read()
		if err != nil {
			if !a.run.ending.Load() {
				a.run.lose(err)
			}
			return
		}
		switch m := m.(type) {
		case *wire.Assign:
			a.run.latencies().add(time.Since(time.Unix(0, m.SubmitUnixNano)))
			a.run.pool.Go(func() { a.complete(m.JobID, m.Attempt) })
		case *wire.HeartbeatAck:
			a.run.rtt.add(time.Since(time.Unix(0, m.UnixNano)))
		}
	}
}

// complete walks one job through running to a successful report, then
// gives the slot back.
func (a *simAgent) complete(job int64, attempt int) {
	// As the pilot does: the slot is granted back when the payload ends,
	// before its report is delivered.
	_ = a.ctrl.Write(&wire.Want{Slots: 1, Cores: 1, MemoryBytes: 1 << 30})
	if err := a.report(job, attempt); err != nil {
		a.run.errs.Add(1) // counted as done, so that the run still ends
	}
	if a.run.done.Add(1) == a.run.target {
		a.run.once.Do(func() { close(a.run.allDone) })
	}
}

func (a *simAgent) report(job int64, attempt int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := a.conn.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	defer st.CancelRead(0)
	now := time.Now().UnixNano()
	buf, _ := wire.AppendFrame(nil, &wire.JobOpen{JobID: job, Attempt: attempt})
	buf, _ = wire.AppendFrame(buf, &wire.JobState{Phase: wire.PhaseRunning, UnixNano: now})
	buf, _ = wire.AppendFrame(buf, &wire.Report{StartUnixNano: now, EndUnixNano: time.Now().UnixNano()})
	if _, err := st.Write(buf); err != nil {
		return err
	}
	st.Close()
	rd := a.run.readers.Get(st, 0)
	defer a.run.readers.Put(rd)
	m, err := rd.Read()
	if err != nil {
		return err
	}
	if ack, ok := m.(*wire.Ack); !ok || ack.Code != 0 {
		return fmt.Errorf("job %d: report refused: %+v", job, m)
	}
	return nil
}

// heartbeat keeps every agent alive, as pilots do, from one goroutine
// (simulated agents must not cost a goroutine each beyond their reader),
// spreading the agents evenly over the period as independent pilots are.
// heartbeat sends each connected agent a Heartbeat every period, spread evenly
// over it, from the moment it connected (as a pilot does), not once all are up:
// at 100,000 agents connecting takes longer than the dispatcher's timeout.
func heartbeat(ctx context.Context, r *run, every time.Duration) {
	const step = 10 * time.Millisecond
	t := time.NewTicker(step)
	defer t.Stop()
	var seq uint64
	next := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.liveMu.Lock()
			live := len(r.live)
			r.liveMu.Unlock()
			if ms := r.period.Load(); ms > 0 {
				every = time.Duration(ms) * time.Millisecond
			}
			// Each connected agent once per period, however many are up yet.
			perStep := max(1, int(int64(live)*int64(step)/int64(every)))
			for range perStep {
				a := r.agent(next)
				if a == nil {
					next = 0
					if a = r.agent(0); a == nil {
						break
					}
				}
				if next == 0 {
					seq++
				}
				_ = a.ctrl.Write(&wire.Heartbeat{Seq: seq, UnixNano: time.Now().UnixNano()})
				next++
			}
		}
	}
}

func closeAgents(r *run, agents []*simAgent) {
	r.ending.Store(true)
	for _, a := range agents {
		a.conn.CloseWithError(0, "bench done")
	}
}
