package dispatcher

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/pando-wms/pando/dispatcher/auth"
	"github.com/pando-wms/pando/dispatcher/broker"
	"github.com/pando-wms/pando/dispatcher/errcode"
	"github.com/pando-wms/pando/dispatcher/pki"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/edge/cache"
)

const (
	helloTimeout = 10 * time.Second
	writeTimeout = 5 * time.Second
)

func (s *Server) listenAgents() error {
	tlsConf, err := pki.ServerTLS(s.pki, wire.ALPN)
	if err != nil {
		return fmt.Errorf("dispatcher: tls: %w", err)
	}
	addr, err := net.ResolveUDPAddr("udp", s.cfg.AgentAddr)
	if err != nil {
		return fmt.Errorf("dispatcher: agent address %q: %w", s.cfg.AgentAddr, err)
	}
	udp, err := net.ListenUDP("udp", addr)
	if err != nil {
		return fmt.Errorf("dispatcher: agent listener on %s: %w", s.cfg.AgentAddr, err)
	}
	// Our own transport, so that shutdown closes every connection, even
	// those still in their handshake, and frees the port at once.
	key, err := s.resetKey()
	if err != nil {
		udp.Close()
		return err
	}
	// The stateless reset key outlives restarts, so that agents still
	// talking on a connection the last run had learn at once that it is gone.
	s.transport = &quic.Transport{Conn: udp, StatelessResetKey: key}
	ln, err := s.transport.Listen(tlsConf, &quic.Config{
		HandshakeIdleTimeout:  helloTimeout,
		MaxIdleTimeout:        s.cfg.AgentTimeout + s.cfg.Heartbeat,
		MaxIncomingStreams:    10000, // one stream per running job
		MaxIncomingUniStreams: -1,
	})
	if err != nil {
		s.closeTransport()
		return fmt.Errorf("dispatcher: agent listener on %s: %w", s.cfg.AgentAddr, err)
	}
	s.quic = ln
	return nil
}

// resetKey loads DATA/reset.key, creating it on first start.
func (s *Server) resetKey() (*quic.StatelessResetKey, error) {
	path := filepath.Join(s.cfg.DataDir, "reset.key")
	var key quic.StatelessResetKey
	b, err := os.ReadFile(path)
	if err == nil && len(b) == len(key) {
		copy(key[:], b)
		return &key, nil
	}
	if _, err := rand.Read(key[:]); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, key[:], 0o600); err != nil {
		return nil, fmt.Errorf("dispatcher: stateless reset key: %w", err)
	}
	return &key, nil
}

// closeTransport closes every agent connection and the UDP socket.
func (s *Server) closeTransport() {
	if s.transport != nil {
		_ = s.transport.Close()
		_ = s.transport.Conn.Close()
	}
}

func (s *Server) acceptAgents(ctx context.Context) {
	for {
		conn, err := s.quic.Accept(ctx)
		if err != nil {
			return // listener closed or ctx done
		}
		s.sessMu.Lock()
		if s.closing {
			s.sessMu.Unlock()
			_ = conn.CloseWithError(quic.ApplicationErrorCode(wire.CloseShutdown), "dispatcher shutting down")
			return
		}
		s.agentsWG.Add(1) // under sessMu: shutdown waits only after closing is set
		s.sessMu.Unlock()
		go func() {
			defer s.agentsWG.Done()
			s.serveAgent(ctx, conn)
		}()
	}
}

// refuse tells the agent why it is turned away, then closes.
func refuse(conn agentConn, w *wire.Writer, code int, msg string) {
	if w != nil {
		_ = w.Write(&wire.Refuse{Code: code, Message: msg})
	}
	_ = conn.CloseWithError(quic.ApplicationErrorCode(code), msg)
}

func (s *Server) serveAgent(ctx context.Context, conn agentConn) {
	log := s.log.With("remote", conn.RemoteAddr().String())
	hctx, cancel := context.WithTimeout(ctx, helloTimeout)
	ctrl, err := conn.AcceptStream(hctx)
	cancel()
	if err != nil {
		refuse(conn, nil, wire.CloseProtocol, "no control stream")
		return
	}
	w := wire.NewWriter(ctrl)
	r := wire.NewReaderSize(ctrl, s.cfg.MaxFrame, 256) // a Want or Heartbeat now and then
	ctrl.SetReadDeadline(time.Now().Add(helloTimeout))
	hello, owner, code, why := s.readHello(ctx, r)
	if code != 0 {
		s.peerLog.warn(log, "agent refused", "reason", why)
		refuse(conn, w, code, why)
		return
	}
	ctrl.SetReadDeadline(time.Time{})
	ss := &session{conn: conn, ctrl: ctrl, w: w, hello: hello, pool: s.streams, flushing: &s.flushWG, srv: s,
		held: true, log: log.With("agent", hello.Name, "id", hello.AgentID)}
	ss.seen()
	if why := s.register(ss, owner); why != "" {
		refuse(conn, w, wire.CloseUnauthorized, why)
		return
	}
	defer s.unregister(ss)
	// Closed before serveAgent returns, so that nothing starts a goroutine
	// for this session once the wait group may have reached zero.
	defer ss.Close(wire.CloseNormal, "")
	drop, err := s.broker.Connect(hello, ss)
	if err != nil {
		code := wire.CloseProtocol
		if errors.Is(err, broker.ErrBadQueue) {
			code = wire.CloseBadQueue // the pilot gives up: retrying cannot help
		}
		refuse(conn, w, code, err.Error())
		return
	}
	defer s.broker.Disconnect(hello.AgentID, ss)
	welcome := &wire.Welcome{Session: time.Now().UnixNano(), HeartbeatMillis: s.cfg.Heartbeat.Milliseconds(), Drop: drop}
	if err := ss.welcome(welcome); err != nil {
		ss.Close(wire.CloseProtocol, "welcome: "+err.Error())
		return
	}
	ss.log.Info("agent connected", "kind", hello.Kind, "queue", hello.Queue, "cores", hello.Resources.Cores, "reattached", len(hello.Running)-len(drop))

	var held []wire.RunningJob
	for _, rj := range hello.Running {
		if !slices.Contains(drop, rj) {
			held = append(held, rj)
		}
	}
	if hello.Kind == wire.KindHarvester {
		held = append(held, harvesterStreams) // its queries come at any time
	}
	if hello.Kind == wire.KindEdge {
		qc, ok := conn.(*quic.Conn)
		if !ok {
			ss.Close(wire.CloseProtocol, "an edge cannot connect through another edge")
			return
		}
		ss.relay = newRelayMux(s, ss, qc)
		s.agentsWG.Add(1)
		go func() { defer s.agentsWG.Done(); ss.relay.run(ctx) }()
	}
	s.expectStreams(ctx, ss, held)
	s.readControl(ss, r)
}

// readHello reads and checks the agent's Hello: version, then token. It
// returns the name the token belongs to.
func (s *Server) readHello(ctx context.Context, r *wire.Reader) (*wire.Hello, string, int, string) {
	m, err := r.Read()
	if err != nil {
		return nil, "", wire.CloseProtocol, "bad hello: " + err.Error()
	}
	h, ok := m.(*wire.Hello)
	if !ok {
		return nil, "", wire.CloseProtocol, fmt.Sprintf("expected hello, got message type %d", m.Type())
	}
	if h.Version != wire.Version {
		return nil, "", wire.CloseBadVersion, fmt.Sprintf("protocol version %d not supported: this dispatcher speaks version %d", h.Version, wire.Version)
	}
	p, err := s.auth.Authenticate(ctx, h.Token)
	switch {
	case errors.Is(err, auth.ErrBadToken) || errors.Is(err, auth.ErrNoToken):
		return nil, "", wire.CloseUnauthorized, fmt.Sprintf("unauthorized: invalid token (%v)", err)
	case err != nil: // a store failure must not turn pilots away for good
		return nil, "", wire.CloseShutdown, fmt.Sprintf("cannot check the token now (%v); retry later", err)
	}
	if !p.Can(auth.ConnectAgent) {
		return nil, "", wire.CloseUnauthorized, fmt.Sprintf("unauthorized: token of %q (role %s) may not connect agents", p.Name, p.Role)
	}
	if h.AgentID == "" || h.Name == "" {
		return nil, "", wire.CloseProtocol, "hello without agent id or name"
	}
	return h, p.Name, 0, ""
}

// register records a new session. An agent ID stays bound to the token
// name that first used it, so that one token holder cannot take over
// another's agent and its jobs.
func (s *Server) register(ss *session, owner string) string {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	id := ss.hello.AgentID
	if o, ok := s.agentOwners[id]; ok && o != owner {
		return fmt.Sprintf("unauthorized: agent id %s belongs to another token", id)
	}
	if s.closing {
		return "dispatcher shutting down"
	}
	s.agentOwners[id] = owner
	s.agentSessions[id]++
	s.sessions[ss] = struct{}{}
	return ""
}

// pruneOwners forgets the token binding of agents the broker no longer
// tracks: pilots are short-lived, and each brings a new ID.
func (s *Server) pruneOwners() {
	s.sessMu.Lock()
	ids := make([]string, 0, len(s.agentOwners))
	for id := range s.agentOwners {
		ids = append(ids, id)
	}
	s.sessMu.Unlock()
	for _, id := range ids {
		if s.broker.Known(id) {
			continue
		}
		s.sessMu.Lock()
		if s.agentSessions[id] == 0 {
			delete(s.agentOwners, id)
		}
		s.sessMu.Unlock()
	}
}

func (s *Server) unregister(ss *session) {
	s.sessMu.Lock()
	delete(s.sessions, ss)
	if id := ss.hello.AgentID; s.agentSessions[id] <= 1 {
		delete(s.agentSessions, id)
	} else {
		s.agentSessions[id]--
	}
	s.sessMu.Unlock()
}

// readControl serves the control stream until it fails.
func (s *Server) readControl(ss *session, r *wire.Reader) {
	id := ss.hello.AgentID
	for {
		m, err := r.Read()
		if err != nil {
			s.endSession(ss, err)
			return
		}
		ss.seen()
		switch m := m.(type) {
		case *wire.Want:
			s.broker.Want(id, ss, m)
		case *wire.RelayClose:
			if ss.relay == nil {
				s.endSession(ss, fmt.Errorf("%w: RelayClose from an agent that is not an edge", wire.ErrMalformed))
				return
			}
			ss.relay.closed(m.Conn)
		case *wire.Heartbeat:
			_ = ss.Send([]wire.Message{&wire.HeartbeatAck{Seq: m.Seq, UnixNano: m.UnixNano}})
			if m.CacheHashes != 0 {
				sum, err := cache.ParseSummary(m.CacheFilter, m.CacheHashes)
				if err != nil {
					s.endSession(ss, fmt.Errorf("%w: heartbeat: %v", wire.ErrMalformed, err))
					return
				}
				s.broker.SetCache(id, sum)
			}
		default:
			s.endSession(ss, fmt.Errorf("%w: unexpected message type %d on control stream", wire.ErrMalformed, m.Type()))
			return
		}
	}
}

func (s *Server) endSession(ss *session, err error) {
	var appErr *quic.ApplicationError
	switch {
	case wire.IsProtocolError(err):
		s.peerLog.warn(ss.log, "agent sent a bad frame; closing its connection", "err", err)
		refuse(ss.conn, ss.w, wire.CloseProtocol, err.Error())
	case errors.As(err, &appErr):
		ss.log.Info("agent disconnected", "code", uint64(appErr.ErrorCode), "reason", appErr.ErrorMessage)
	default:
		ss.log.Info("agent connection lost", "err", err)
		ss.Close(wire.CloseNormal, "")
	}
}

// expectStreams notes job attempts whose streams the agent will open, and
// starts the session's stream acceptor if none runs. The acceptor runs only
// while a stream is expected, so that an idle agent costs one goroutine of
// ours (its control reader) beside quic-go's own: at 100,000 agents a
// parked goroutine per agent is several hundred MiB of stacks. A stream
// that arrives while no acceptor runs waits in quic-go's accept queue.
func (s *Server) expectStreams(ctx context.Context, ss *session, jobs []wire.RunningJob) {
	if len(jobs) == 0 {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return
	}
	if ss.expect == nil {
		ss.expect = make(map[wire.RunningJob]struct{}, len(jobs))
	}
	for _, j := range jobs {
		ss.expect[j] = struct{}{}
	}
	if ss.stopAccept != nil {
		return
	}
	actx, cancel := context.WithCancel(ctx)
	ss.stopAccept = cancel
	s.agentsWG.Add(1)
	go func() {
		defer s.agentsWG.Done()
		s.acceptJobStreams(actx, ss)
	}()
}

// settled notes that an attempt's stream has ended for good: its report
// was acknowledged, or the attempt was refused as stale. The acceptor stops
// when no stream is expected any more.
func (s *Server) settled(ss *session, key wire.RunningJob) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.expect, key)
	if len(ss.expect) == 0 && ss.stopAccept != nil {
		ss.stopAccept()
		ss.stopAccept, ss.expect = nil, nil
	}
}

func (s *Server) acceptJobStreams(ctx context.Context, ss *session) {
	for {
		st, err := ss.conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		s.agentsWG.Add(1)
		s.streams.Go(func() {
			defer s.agentsWG.Done()
			if key, ok := s.serveJobStream(s.ctx, ss, st); ok {
				s.settled(ss, key)
			}
		})
	}
}

// serveJobStream handles one job attempt's stream: phases, samples, logs
// and the final report, acknowledged once durable.
func (s *Server) serveJobStream(ctx context.Context, ss *session, st *quic.Stream) (key wire.RunningJob, settled bool) {
	defer st.Close()
	// Stop reading on every way out, or the stream keeps counting against
	// the connection's stream limit and the agent's writes pile up.
	defer st.CancelRead(quic.StreamErrorCode(wire.CloseNormal))
	id := ss.hello.AgentID
	r := s.readers.Get(st, s.cfg.MaxFrame)
	defer s.readers.Put(r)
	w := wire.NewWriter(st)
	m, err := r.Read()
	if err != nil {
		st.CancelRead(quic.StreamErrorCode(wire.CloseProtocol))
		return key, false
	}
	switch req := m.(type) {
	case *wire.URLRequest:
		_ = w.Write(s.urls(id, req))
		return key, false
	case *wire.DemandQuery, *wire.WorkerReport:
		_ = w.Write(s.harvest(ss, req))
		return key, false
	}
	open, ok := m.(*wire.JobOpen)
	if !ok {
		_ = w.Write(&wire.Ack{Code: int(errcode.DispatcherStale), Message: "job stream must start with JobOpen"})
		return key, false
	}
	key = wire.RunningJob{JobID: open.JobID, Attempt: open.Attempt}
	if err := s.broker.Check(id, open.JobID, open.Attempt); err != nil {
		_ = w.Write(&wire.Ack{Code: int(errcode.DispatcherStale), Message: err.Error()})
		return key, true // the agent drops the attempt: no stream follows
	}
	logs := s.logs.open(open.JobID, open.Attempt)
	defer logs.close()
	for {
		m, err := r.Read()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				ss.log.Debug("job stream ended", "job", open.JobID, "err", err)
			}
			return key, false
		}
		ss.seen()
		switch m := m.(type) {
		case *wire.JobState:
			if err := s.broker.Phase(id, open.JobID, open.Attempt, m.Phase); err != nil {
				_ = w.Write(&wire.Ack{Code: int(errcode.DispatcherStale), Message: err.Error()})
				return key, false // the agent sends its report on a new stream, refused there
			}
		case *wire.Sample:
			// Samples feed the pilot's own limits; the final report carries the totals.
		case *wire.Log:
			if err := logs.write(m.Data); err != nil {
				ss.log.Error("write job log", "job", open.JobID, "err", err)
			}
		case *wire.Report:
			logs.close()
			if err := s.checkOutputs(ctx, id, open, m); err != nil {
				ss.log.Warn("cannot check the outputs of a report; the pilot will resend it", "job", open.JobID, "err", err)
				_ = w.Write(&wire.Ack{Code: -1, Message: "outputs not checked: " + err.Error()})
				return key, false
			}
			ack := s.report(ctx, id, open, m)
			err := w.Write(ack)
			return key, err == nil && ack.Code >= 0 // else the agent resends
		default:
			return key, false
		}
	}
}

func (s *Server) report(ctx context.Context, agentID string, open *wire.JobOpen, rep *wire.Report) *wire.Ack {
	done := make(chan error, 1)
	err := s.broker.Report(agentID, open.JobID, open.Attempt, rep, func(err error) { done <- err })
	if err != nil { // stale attempt or a job no longer live: the agent drops it
		return &wire.Ack{Code: int(errcode.DispatcherStale), Message: err.Error()}
	}
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		// Not durable: the agent keeps the report and sends it again.
		return &wire.Ack{Code: -1, Message: "report not stored: " + err.Error()}
	}
	return &wire.Ack{}
}
