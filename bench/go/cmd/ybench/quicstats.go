package main

// A qlog trace that only counts: with -quicstats, a sink's connections record quic-go's
// events here (by name; dropped packets by their trigger) and the summary carries the
// totals. It shows what quic-go did with what the zipper sent: e.g. packets dropped
// because the connection's queue of unprocessed packets was full ("dos_prevention").
// Tracing costs the Go side CPU per packet (quic-go builds every event), so rates
// measured with it are not comparable with rates measured without.

import (
	"context"
	"sync"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/qlog"
	"github.com/quic-go/quic-go/qlogwriter"
	"github.com/yomorun/yomo/core"
)

type quicCounts struct {
	mu      sync.Mutex
	events  map[string]int64
	dropped map[string]int64
	lost    map[string]int64
}

func newQuicCounts() *quicCounts {
	return &quicCounts{events: map[string]int64{}, dropped: map[string]int64{}, lost: map[string]int64{}}
}

func (q *quicCounts) snapshot() map[string]any {
	q.mu.Lock()
	defer q.mu.Unlock()
	cp := func(m map[string]int64) map[string]int64 {
		out := make(map[string]int64, len(m))
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	return map[string]any{"events": cp(q.events), "dropped": cp(q.dropped), "lost": cp(q.lost)}
}

// quic-go's tracing interfaces: a Trace hands out Recorders.
func (q *quicCounts) AddProducer() qlogwriter.Recorder { return q }
func (q *quicCounts) SupportsSchemas(string) bool      { return true }
func (q *quicCounts) Close() error                     { return nil }

func (q *quicCounts) RecordEvent(ev qlogwriter.Event) {
	q.mu.Lock()
	q.events[ev.Name()]++
	switch e := ev.(type) {
	case qlog.PacketDropped:
		q.dropped[string(e.Trigger)]++
	case *qlog.PacketDropped:
		q.dropped[string(e.Trigger)]++
	case qlog.PacketLost:
		q.lost[string(e.Trigger)]++
	case *qlog.PacketLost:
		q.lost[string(e.Trigger)]++
	}
	q.mu.Unlock()
}

// quicStatsOption: the client's default QUIC configuration (Go YoMo's) with the
// counting trace.
func quicStatsOption(q *quicCounts) core.ClientOption {
	qc := core.DefaultClientQuicConfig.Clone()
	qc.Tracer = func(context.Context, bool, quic.ConnectionID) qlogwriter.Trace { return q }
	return core.WithClientQuicConfig(qc)
}
