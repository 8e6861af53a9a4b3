package bench

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/pando-wms/pando/dispatcher/wire"
)

// AbuseConfig configures `pando bench abuse`.
type AbuseConfig struct {
	Agents   int
	Rate     float64       // offered jobs per second, as in bench latency
	Duration time.Duration // per measurement (idle, then under abuse)
	Garbage  float64       // random UDP datagrams per second at the agent port
	HalfOpen int           // QUIC handshakes kept stalled half-way at once
	SlowHTTP int           // API connections sending their headers a byte a second
	Oversize float64       // connections per second sending an oversized frame
	DispatchConfig
}

// AbuseResult compares submit-to-assign latency of well-behaved agents
// without and with abusive peers; JSON keys are a contract.
type AbuseResult struct {
	IdleP50ms  float64 `json:"idle_p50_ms"`
	IdleP99ms  float64 `json:"idle_p99_ms"`
	AbuseP50ms float64 `json:"abuse_p50_ms"`
	AbuseP99ms float64 `json:"abuse_p99_ms"`
	Ratio      float64 `json:"ratio"` // abuse p99 / idle p99
	Garbage    int64   `json:"garbage_datagrams"`
	HalfOpen   int64   `json:"half_open_handshakes"`
	SlowHTTP   int64   `json:"slow_http_connections"`
	Oversize   int64   `json:"oversized_frames"`
}

// Abuse measures latency for well-behaved agents idle, then again while
// garbage, stalled handshakes, slow HTTP clients and oversized frames hit
// the same dispatcher.
func Abuse(ctx context.Context, cfg AbuseConfig) (*AbuseResult, error) {
	if cfg.Agents <= 0 || cfg.Rate <= 0 {
		return nil, fmt.Errorf("bench: --agents and --rate must be positive")
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	env, err := newOpenEnv(ctx, &cfg.DispatchConfig, cfg.Agents)
	if err != nil {
		return nil, err
	}
	defer env.close()
	if _, err := offer(ctx, env.api, env.r, latencyTask["yaml"], cfg.Rate, 3*time.Second); err != nil { // warm-up
		return nil, err
	}
	idle, err := offer(ctx, env.api, env.r, latencyTask["yaml"], cfg.Rate, cfg.Duration)
	if err != nil {
		return nil, err
	}
	res := &AbuseResult{IdleP50ms: idle.P50ms, IdleP99ms: idle.P99ms}
	actx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	a := &abuser{cfg: &cfg, res: res}
	a.start(actx, &wg)
	time.Sleep(2 * time.Second) // let the abuse build up
	busy, err := offer(ctx, env.api, env.r, latencyTask["yaml"], cfg.Rate, cfg.Duration)
	stop()
	wg.Wait()
	if err != nil {
		return nil, err
	}
	res.AbuseP50ms, res.AbuseP99ms = busy.P50ms, busy.P99ms
	if idle.P99ms > 0 {
		res.Ratio = busy.P99ms / idle.P99ms
	}
	return res, nil
}

type abuser struct {
	cfg                                  *AbuseConfig
	res                                  *AbuseResult
	garbage, halfOpen, slowConns, frames atomic.Int64
}

func (a *abuser) start(ctx context.Context, wg *sync.WaitGroup) {
	run := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	if a.cfg.Garbage > 0 {
		run(a.sendGarbage)
	}
	for range a.cfg.HalfOpen {
		run(a.stallHandshake)
	}
	for range a.cfg.SlowHTTP {
		run(a.slowHTTP)
	}
	if a.cfg.Oversize > 0 {
		run(a.sendOversize)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		a.res.Garbage, a.res.HalfOpen = a.garbage.Load(), a.halfOpen.Load()
		a.res.SlowHTTP, a.res.Oversize = a.slowConns.Load(), a.frames.Load()
	}()
}

// every runs f at rate per second until ctx ends.
func every(ctx context.Context, rate float64, f func()) {
	t := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

func (a *abuser) sendGarbage(ctx context.Context) {
	conn, err := net.Dial("udp", a.cfg.Dispatcher)
	if err != nil {
		return
	}
	defer conn.Close()
	buf := make([]byte, 1200)
	every(ctx, a.cfg.Garbage, func() {
		rand.Read(buf)
		if _, err := conn.Write(buf); err == nil {
			a.garbage.Add(1)
		}
	})
}

// stallHandshake dials and never finishes its side of the handshake: the
// client stalls in certificate verification until ctx ends, leaving the
// server holding a half-open connection until its handshake timeout.
func (a *abuser) stallHandshake(ctx context.Context) {
	for ctx.Err() == nil {
		conf := a.cfg.TLS.Clone()
		conf.VerifyConnection = func(tls.ConnectionState) error {
			<-ctx.Done()
			return ctx.Err()
		}
		a.halfOpen.Add(1)
		conn, err := quic.DialAddr(ctx, a.cfg.Dispatcher, conf, &quic.Config{HandshakeIdleTimeout: time.Minute})
		if err == nil {
			conn.CloseWithError(0, "")
		}
	}
}

func (a *abuser) slowHTTP(ctx context.Context) {
	u, err := url.Parse(a.cfg.Server)
	if err != nil {
		return
	}
	for ctx.Err() == nil {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return
		}
		a.slowConns.Add(1)
		req := "GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\nX-Slow: "
		for i := 0; ctx.Err() == nil; i++ {
			if _, err := conn.Write([]byte{req[i%len(req)]}); err != nil {
				break // the server gave up on us: come back
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		conn.Close()
	}
}

func (a *abuser) sendOversize(ctx context.Context) {
	every(ctx, a.cfg.Oversize, func() {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		conn, err := quic.DialAddr(dctx, a.cfg.Dispatcher, a.cfg.TLS, &quic.Config{})
		if err != nil {
			return
		}
		defer conn.CloseWithError(0, "")
		st, err := conn.OpenStreamSync(dctx)
		if err != nil {
			return
		}
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], 0xFFFFFF00)
		st.Write(hdr[:])
		// The dispatcher must close the connection with a protocol error.
		select {
		case <-conn.Context().Done():
			var appErr *quic.ApplicationError
			if errors.As(context.Cause(conn.Context()), &appErr) && int(appErr.ErrorCode) == wire.CloseProtocol {
				a.frames.Add(1)
			}
		case <-dctx.Done():
		}
	})
}
