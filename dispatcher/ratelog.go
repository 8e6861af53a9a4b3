package dispatcher

import (
	"log/slog"
	"sync"
	"time"
)

// rateLog keeps warnings that peers can trigger at will (refused
// handshakes, bad frames) from flooding the log: at most burst per second,
// and the next one logged says how many were suppressed.
type rateLog struct {
	burst int

	mu         sync.Mutex
	second     int64
	n          int
	suppressed int
}

func (r *rateLog) warn(log *slog.Logger, msg string, args ...any) {
	r.mu.Lock()
	now := time.Now().Unix()
	if now != r.second {
		r.second, r.n = now, 0
	}
	r.n++
	if r.n > r.burst {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	if r.suppressed > 0 {
		args = append(args, "suppressed", r.suppressed)
		r.suppressed = 0
	}
	r.mu.Unlock()
	log.Warn(msg, args...)
}
