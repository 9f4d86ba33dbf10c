package wasmhost

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// logLimiter is a token bucket shared by every instance of one transform:
// guest output reaches the log at most rate lines per second (burst 2×rate);
// the rest is counted and reported with the next line that gets through.
type logLimiter struct {
	mu         sync.Mutex
	rate       float64
	tokens     float64
	last       time.Time
	suppressed int
}

func newLogLimiter(rate int) *logLimiter {
	return &logLimiter{rate: float64(rate), tokens: float64(2 * rate)}
}

// allow reports whether a line may be logged and how many were suppressed
// since the last one that was.
func (l *logLimiter) allow() (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !l.last.IsZero() {
		l.tokens += now.Sub(l.last).Seconds() * l.rate
		if max := 2 * l.rate; l.tokens > max {
			l.tokens = max
		}
	}
	l.last = now
	if l.tokens < 1 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	n := l.suppressed
	l.suppressed = 0
	return true, n
}

// guestLog is one instance's stdout or stderr: it splits output into lines,
// logs them through the limiter, and remembers the tail of stderr and
// whether the Go runtime reported running out of memory, to name a trap.
type guestLog struct {
	log       *slog.Logger
	lim       *logLimiter
	transform string
	stream    string
	partial   []byte
	tail      []byte // last line(s) written since reset, capped
	panicLine string // the first panic or fatal error line since reset
	oom       bool
}

const maxTail = 512

// Write implements io.Writer. It never fails: a guest cannot block on or
// break the host's log.
func (g *guestLog) Write(p []byte) (int, error) {
	n := len(p)
	if bytes.Contains(p, []byte("out of memory")) {
		g.oom = true
	}
	g.tail = append(g.tail, p...)
	if len(g.tail) > maxTail {
		g.tail = append(g.tail[:0], g.tail[len(g.tail)-maxTail:]...)
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(g.partial) < 4096 {
				g.partial = append(g.partial, p...)
			}
			break
		}
		line := p[:i]
		if len(g.partial) > 0 {
			line = append(g.partial, line...)
			g.partial = g.partial[:0]
		}
		if g.panicLine == "" && (bytes.HasPrefix(line, []byte("panic: ")) || bytes.HasPrefix(line, []byte("fatal error: "))) {
			// Kept apart from the tail: a long stack trace would push it out.
			g.panicLine = string(bytes.TrimSpace(line))
		}
		g.emit(line)
		p = p[i+1:]
	}
	return n, nil
}

func (g *guestLog) emit(line []byte) {
	if len(line) == 0 {
		return
	}
	ok, suppressed := g.lim.allow()
	if !ok {
		return
	}
	if suppressed > 0 {
		g.log.Info("guest output", "transform", g.transform, "stream", g.stream, "line", string(line), "suppressed", suppressed)
		return
	}
	g.log.Info("guest output", "transform", g.transform, "stream", g.stream, "line", string(line))
}

// reset forgets the tail and the OOM flag before a call.
func (g *guestLog) reset() {
	g.tail = g.tail[:0]
	g.panicLine = ""
	g.oom = false
}

// firstLine returns the first non-empty line of the tail that looks like a
// Go panic or fatal error, else the last non-empty line.
func (g *guestLog) summary() string {
	if g.panicLine != "" {
		return g.panicLine
	}
	lines := strings.Split(string(g.tail), "\n")
	last := ""
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			return l
		}
		if last == "" {
			last = l
		}
	}
	return last
}
