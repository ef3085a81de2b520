// Package peer holds what the interop peer commands share: JSON-line output,
// flag parsing helpers, the deterministic payload generator and the transforms.
//
// Everything a Python test needs to know about a peer is printed on stdout as
// one JSON object per line; YoMo's own logs go to stderr.
package peer

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var outMu sync.Mutex

// Emit prints one JSON object as a single line on stdout.
func Emit(v map[string]any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"event":"emit_error","error":%q}`, err.Error()))
	}
	b = append(b, '\n')
	outMu.Lock()
	defer outMu.Unlock()
	_, _ = os.Stdout.Write(b)
}

// Fatal prints an event line and exits with the given code.
func Fatal(code int, event string, err error) {
	Emit(map[string]any{"event": event, "error": err.Error()})
	os.Exit(code)
}

// Logger returns a JSON slog logger on stderr, so YoMo's logs never mix with
// the JSON events on stdout.
func Logger() *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToLower(os.Getenv("YOMO_LOG_LEVEL")) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// ParseTags parses a comma list of tags; each may be decimal or 0x-hex.
func ParseTags(s string) ([]uint32, error) {
	var tags []uint32
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		v, err := strconv.ParseUint(part, 0, 32)
		if err != nil {
			return nil, fmt.Errorf("bad tag %q: %w", part, err)
		}
		tags = append(tags, uint32(v))
	}
	return tags, nil
}

// ParseSizes parses a comma list of non-negative payload sizes.
func ParseSizes(s string) ([]int, error) {
	var sizes []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		v, err := strconv.Atoi(part)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("bad size %q", part)
		}
		sizes = append(sizes, v)
	}
	if len(sizes) == 0 {
		return nil, fmt.Errorf("no sizes given")
	}
	return sizes, nil
}

// Payload builds the deterministic payload number seq of the given size:
// the 8-byte big-endian seq (cut to size when shorter), then lowercase ASCII
// filler 'a'+(seq+i)%26 at offset i.
func Payload(seq uint64, size int) []byte {
	p := make([]byte, size)
	var head [8]byte
	binary.BigEndian.PutUint64(head[:], seq)
	copy(p, head[:])
	for i := 8; i < size; i++ {
		p[i] = 'a' + byte((seq+uint64(i))%26)
	}
	return p
}

// Transform returns the byte transform named by spec:
// "identity", "upper" (ASCII a-z only, byte for byte) or "prefix:<s>".
func Transform(spec string) (func([]byte) []byte, error) {
	switch {
	case spec == "" || spec == "identity":
		return func(b []byte) []byte {
			out := make([]byte, len(b))
			copy(out, b)
			return out
		}, nil
	case spec == "upper":
		return func(b []byte) []byte {
			out := make([]byte, len(b))
			for i, c := range b {
				if c >= 'a' && c <= 'z' {
					c -= 'a' - 'A'
				}
				out[i] = c
			}
			return out
		}, nil
	case strings.HasPrefix(spec, "prefix:"):
		pre := []byte(strings.TrimPrefix(spec, "prefix:"))
		return func(b []byte) []byte {
			out := make([]byte, 0, len(pre)+len(b))
			out = append(out, pre...)
			return append(out, b...)
		}, nil
	}
	return nil, fmt.Errorf("unknown transform %q", spec)
}

// Digest returns the hex sha256 of b.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Seq reads the first 8 bytes of b as a big-endian uint64; nil when shorter.
func Seq(b []byte) any {
	if len(b) < 8 {
		return nil
	}
	return binary.BigEndian.Uint64(b[:8])
}

// Head returns the hex of at most the first 16 bytes of b.
func Head(b []byte) string {
	if len(b) > 16 {
		b = b[:16]
	}
	return hex.EncodeToString(b)
}

// OrNil returns nil for "" so absent metadata shows as JSON null.
func OrNil(s string, ok bool) any {
	if !ok {
		return nil
	}
	return s
}

// SignalContext is cancelled on SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Millis returns d in milliseconds as a float.
func Millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000.0
}

// Queue is an unbounded FIFO, so a YoMo read loop that hands frames to it
// never blocks on the consumer.
type Queue[T any] struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []T
	closed bool
}

// NewQueue makes an empty queue.
func NewQueue[T any]() *Queue[T] {
	q := &Queue[T]{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Push appends v.
func (q *Queue[T]) Push(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	q.cond.Signal()
}

// Close wakes the consumer; Pop returns false once the queue is drained.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// Pop blocks for the next item; false when closed and empty.
func (q *Queue[T]) Pop() (T, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	var zero T
	if len(q.items) == 0 {
		return zero, false
	}
	v := q.items[0]
	q.items[0] = zero
	q.items = q.items[1:]
	return v, true
}
