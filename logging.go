// Logging what strangers cause: every value a request controls is cut to
// a few dozen bytes before it is logged, and lines about refused requests
// are rate-limited per message, so a flood of refusals cannot roll the
// operator's log history away.

package implicitgrant

import (
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Rate limits for lines about refused requests: per message, at most
// logBurst lines in each logWindow; the next line let through says how
// many were held back.
const (
	logBurst  = 20
	logWindow = 10 * time.Second
	// maxLoggedValue bounds a value from a request in a log line.
	maxLoggedValue = 64
)

// refusalLog rate-limits lines by message.
type refusalLog struct {
	mu      sync.Mutex
	windows map[string]*logWindowState
}

type logWindowState struct {
	start      time.Time
	lines      int
	suppressed int
}

// logRefusal writes a line about a refused request, unless this message has used
// its share of the current window.
func (h *Handler) logRefusal(level zapcore.Level, msg string, fields ...zap.Field) {
	c := h.logger.Check(level, msg)
	if c == nil {
		return
	}
	h.refusals.mu.Lock()
	w := h.refusals.windows[msg] // msg is one of the module's constants: the map stays small
	now := time.Now()
	if w == nil || now.Sub(w.start) >= logWindow {
		held := 0
		if w != nil {
			held = w.suppressed
		}
		w = &logWindowState{start: now}
		h.refusals.windows[msg] = w
		if held > 0 {
			fields = append(fields, zap.Int("similar_lines_suppressed", held))
		}
	}
	if w.lines >= logBurst {
		w.suppressed++
		h.refusals.mu.Unlock()
		return
	}
	w.lines++
	h.refusals.mu.Unlock()
	c.Write(fields...)
}

// loggable cuts a value a request controls to maxLoggedValue bytes.
func loggable(s string) string {
	if len(s) <= maxLoggedValue {
		return s
	}
	return s[:maxLoggedValue] + "…"
}
