// Command ybench is the Go side of the YoMo benchmark harness (bench/run.py).
//
// It drives a zipper (ours or Go's, the same binary against both) with Go YoMo
// v1.22.3 clients and prints its results as JSON lines on stdout:
//
//	ybench source -zipper A -tag 0x10 -size 1024 -duration 3s [-rate 0] [-conns 1]
//	    writes payloads as fast as the zipper takes them (or at -rate/s),
//	    from -conns source connections at once;
//	    prints {"event":"summary","written":N,...}, then stays connected
//	    until SIGTERM (or -linger) so no frame is lost to Close.
//	ybench sink -zipper A -observe 0x10 -size 1024 [-conns 8]
//	    stream functions that count and check every frame (length, order);
//	    prints {"event":"progress","frames":N} every 200 ms and, on SIGTERM,
//	    {"event":"summary",...} with frames/s measured first to last frame;
//	    -quicstats adds quic-go's event counts ("quic": dropped packets by trigger).
//	ybench fwd -zipper A -observe 0x10 -out 0x11
//	    function A of the latency chain: forwards every payload unchanged.
//	ybench lat -zipper A -tag 0x10 -observe 0x11 -rate 1000 -duration 5s
//	    source and sink in one process (one clock): sends at a fixed rate and
//	    prints latency percentiles of the round trip through the zipper.
//	ybench idle -zipper A -n 1000 -parallel 16
//	    opens n idle stream functions, prints handshakes/s, holds until SIGTERM.
//
// Payload layout: bytes 0-8 sequence number, 8-16 send time (Unix ns), both
// big-endian; the rest is filler.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/yomorun/yomo"
	"github.com/yomorun/yomo/core"
	"github.com/yomorun/yomo/core/frame"
)

var outMu sync.Mutex

func emit(v map[string]any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"event":"emit_error","error":%q}`, err.Error()))
	}
	b = append(b, '\n')
	outMu.Lock()
	defer outMu.Unlock()
	_, _ = os.Stdout.Write(b)
}

func fatal(event string, err error) {
	emit(map[string]any{"event": event, "error": err.Error()})
	os.Exit(2)
}

func logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func parseTag(s string) uint32 {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 0, 32)
	if err != nil {
		fatal("usage_error", fmt.Errorf("bad tag %q", s))
	}
	return uint32(v)
}

func payload(seq uint64, size int) []byte {
	if size < 16 {
		size = 16
	}
	p := make([]byte, size)
	for i := 16; i < size; i++ {
		p[i] = 'a' + byte(i%26)
	}
	binary.BigEndian.PutUint64(p[0:8], seq)
	binary.BigEndian.PutUint64(p[8:16], uint64(time.Now().UnixNano()))
	return p
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// ------------------------------------------------------------------ source

func runSource(args []string) {
	fs := flag.NewFlagSet("source", flag.ExitOnError)
	zipper := fs.String("zipper", "127.0.0.1:9000", "zipper host:port")
	tag := fs.String("tag", "0x10", "tag to write")
	size := fs.Int("size", 1024, "payload size")
	duration := fs.Duration("duration", 3*time.Second, "how long to write")
	count := fs.Int("count", 0, "stop after this many writes (0: no limit)")
	rate := fs.Float64("rate", 0, "writes per second (0: as fast as possible)")
	linger := fs.Duration("linger", 120*time.Second, "stay connected this long after the last write")
	conns := fs.Int("conns", 1, "source connections writing at once (each its own sequence)")
	_ = fs.Parse(args)

	sources := make([]yomo.Source, *conns)
	for c := range sources {
		src := yomo.NewSource(fmt.Sprintf("bench-source-%d", c), *zipper, yomo.WithLogger(logger()))
		if err := src.Connect(); err != nil {
			fatal("connect_error", err)
		}
		defer func() { _ = src.Close() }()
		sources[c] = src
	}
	emit(map[string]any{"event": "connected", "conns": *conns})
	t := parseTag(*tag)
	ctx, stop := signalContext()
	defer stop()

	start := time.Now()
	deadline := start.Add(*duration)
	var interval time.Duration
	if *rate > 0 {
		interval = time.Duration(float64(time.Second) / *rate)
	}
	var written, failed atomic.Int64
	var wg sync.WaitGroup
	for c, src := range sources {
		wg.Add(1)
		go func(c int, src yomo.Source) {
			defer wg.Done()
			for i := 0; ; i++ {
				if *count > 0 && i >= *count {
					return
				}
				now := time.Now()
				if now.After(deadline) || ctx.Err() != nil {
					return
				}
				if interval > 0 {
					next := start.Add(time.Duration(i) * interval)
					if d := next.Sub(now); d > 0 {
						time.Sleep(d)
					}
				}
				// Sequence numbers carry the connection in their top 16 bits.
				if err := src.Write(t, payload(uint64(c)<<48|uint64(i), *size)); err != nil {
					failed.Add(1)
					return
				}
				written.Add(1)
			}
		}(c, src)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	emit(map[string]any{
		"event": "summary", "written": written.Load(), "failed": failed.Load(), "size": *size,
		"conns": *conns, "elapsed_s": elapsed, "fps": float64(written.Load()) / elapsed,
	})
	// Stay connected until told to stop (bench/run.py waits for the functions
	// to count everything first): Go's Close drops frames not yet sent.
	select {
	case <-ctx.Done():
	case <-time.After(*linger):
	}
}

// ------------------------------------------------------------------ sink

type counter struct {
	frames, bytes, badLen, outOfOrder int64
	lastSeq                           map[uint64]int64 // by source connection (top 16 bits)
	first, last                       int64            // unix ns
}

func runSink(args []string) {
	fs := flag.NewFlagSet("sink", flag.ExitOnError)
	zipper := fs.String("zipper", "127.0.0.1:9000", "zipper host:port")
	observe := fs.String("observe", "0x10", "tag to observe")
	size := fs.Int("size", 0, "expected payload size (0: any)")
	conns := fs.Int("conns", 1, "stream functions (connections) in this process")
	name := fs.String("name", "bench-sink", "function name prefix")
	quicStats := fs.Bool("quicstats", false, "count quic-go's events (dropped packets by trigger) into the summary")
	_ = fs.Parse(args)
	var qc *quicCounts
	if *quicStats {
		qc = newQuicCounts()
	}

	t := parseTag(*observe)
	counters := make([]*counter, *conns)
	var mu sync.Mutex // one lock: the counters are touched by one read loop each
	var total atomic.Int64
	clients := make([]*core.Client, 0, *conns)
	for i := 0; i < *conns; i++ {
		c := &counter{lastSeq: map[uint64]int64{}}
		counters[i] = c
		opts := []core.ClientOption{core.WithLogger(logger())}
		if qc != nil {
			opts = append(opts, quicStatsOption(qc))
		}
		cl := core.NewClient(fmt.Sprintf("%s-%d", *name, i), *zipper, core.ClientTypeStreamFunction, opts...)
		cl.SetObserveDataTags(t)
		cl.SetDataFrameObserver(func(f *frame.DataFrame) {
			now := time.Now().UnixNano()
			p := f.Payload
			mu.Lock()
			if c.frames == 0 {
				c.first = now
			}
			c.last = now
			c.frames++
			c.bytes += int64(len(p))
			if *size > 0 && len(p) != *size {
				c.badLen++
			}
			if len(p) >= 8 {
				raw := binary.BigEndian.Uint64(p[:8])
				src, seq := raw>>48, int64(raw&(1<<48-1))
				if last, ok := c.lastSeq[src]; ok && seq <= last {
					c.outOfOrder++
				}
				c.lastSeq[src] = seq
			}
			mu.Unlock()
			total.Add(1)
		})
		if err := cl.Connect(context.Background()); err != nil {
			fatal("connect_error", err)
		}
		clients = append(clients, cl)
	}
	emit(map[string]any{"event": "connected", "conns": *conns})
	ctx, stop := signalContext()
	defer stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
LOOP:
	for {
		select {
		case <-ctx.Done():
			break LOOP
		case <-tick.C:
			emit(map[string]any{"event": "progress", "frames": total.Load()})
		}
	}
	mu.Lock()
	per := make([]map[string]any, 0, len(counters))
	var frames, bytes, bad, ooo int64
	first, last := int64(math.MaxInt64), int64(0)
	for _, c := range counters {
		fps := 0.0
		if c.frames > 1 && c.last > c.first {
			fps = float64(c.frames-1) / (float64(c.last-c.first) / 1e9)
		}
		per = append(per, map[string]any{"frames": c.frames, "bytes": c.bytes, "fps": fps})
		frames += c.frames
		bytes += c.bytes
		bad += c.badLen
		ooo += c.outOfOrder
		if c.frames > 0 {
			first = min(first, c.first)
			last = max(last, c.last)
		}
	}
	mu.Unlock()
	elapsed := 0.0
	if last > first {
		elapsed = float64(last-first) / 1e9
	}
	summary := map[string]any{
		"event": "summary", "frames": frames, "bytes": bytes, "bad_len": bad,
		"out_of_order": ooo, "elapsed_s": elapsed, "per_conn": per,
	}
	if qc != nil {
		summary["quic"] = qc.snapshot()
	}
	emit(summary)
	for _, cl := range clients {
		_ = cl.Close()
	}
}

// ------------------------------------------------------------------ fwd

func runFwd(args []string) {
	fs := flag.NewFlagSet("fwd", flag.ExitOnError)
	zipper := fs.String("zipper", "127.0.0.1:9000", "zipper host:port")
	observe := fs.String("observe", "0x10", "tag to observe")
	out := fs.String("out", "0x11", "tag to write")
	_ = fs.Parse(args)

	outTag := parseTag(*out)
	cl := core.NewClient("bench-fwd", *zipper, core.ClientTypeStreamFunction, core.WithLogger(logger()))
	cl.SetObserveDataTags(parseTag(*observe))
	// The observer runs on the client's only loop, which also does the writes:
	// hand frames to a goroutine so writing never waits on itself.
	ch := make(chan *frame.DataFrame, 1<<16)
	cl.SetDataFrameObserver(func(f *frame.DataFrame) {
		ch <- &frame.DataFrame{Tag: outTag, Metadata: f.Metadata, Payload: f.Payload}
	})
	if err := cl.Connect(context.Background()); err != nil {
		fatal("connect_error", err)
	}
	var forwarded atomic.Int64
	go func() {
		for f := range ch {
			if err := cl.WriteFrame(f); err == nil {
				forwarded.Add(1)
			}
		}
	}()
	emit(map[string]any{"event": "connected"})
	ctx, stop := signalContext()
	defer stop()
	<-ctx.Done()
	emit(map[string]any{"event": "summary", "forwarded": forwarded.Load()})
	_ = cl.Close()
}

// ------------------------------------------------------------------ lat

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func runLat(args []string) {
	fs := flag.NewFlagSet("lat", flag.ExitOnError)
	zipper := fs.String("zipper", "127.0.0.1:9000", "zipper host:port")
	tag := fs.String("tag", "0x10", "tag the source writes")
	observe := fs.String("observe", "0x11", "tag the sink observes")
	size := fs.Int("size", 64, "payload size")
	rate := fs.Float64("rate", 1000, "writes per second")
	duration := fs.Duration("duration", 5*time.Second, "how long to write")
	warmup := fs.Duration("warmup", 500*time.Millisecond, "leading part excluded from percentiles")
	_ = fs.Parse(args)

	n := int(*rate * duration.Seconds())
	recv := make([]int64, n) // latency in ns by seq, 0 = not received
	var got atomic.Int64
	var ooo atomic.Int64
	lastSeq := int64(-1)
	sink := core.NewClient("bench-lat-sink", *zipper, core.ClientTypeStreamFunction, core.WithLogger(logger()))
	sink.SetObserveDataTags(parseTag(*observe))
	sink.SetDataFrameObserver(func(f *frame.DataFrame) {
		now := time.Now().UnixNano()
		p := f.Payload
		if len(p) < 16 {
			return
		}
		seq := int64(binary.BigEndian.Uint64(p[:8]))
		sent := int64(binary.BigEndian.Uint64(p[8:16]))
		if seq <= lastSeq {
			ooo.Add(1)
		}
		lastSeq = seq
		if seq >= 0 && seq < int64(n) {
			recv[seq] = max(now-sent, 1)
		}
		got.Add(1)
	})
	if err := sink.Connect(context.Background()); err != nil {
		fatal("connect_error", err)
	}
	defer func() { _ = sink.Close() }()
	src := yomo.NewSource("bench-lat-source", *zipper, yomo.WithLogger(logger()))
	if err := src.Connect(); err != nil {
		fatal("connect_error", err)
	}
	defer func() { _ = src.Close() }()
	emit(map[string]any{"event": "connected"})
	time.Sleep(200 * time.Millisecond)

	t := parseTag(*tag)
	interval := time.Duration(float64(time.Second) / *rate)
	start := time.Now()
	giveUp := start.Add(2 * *duration) // a zipper that cannot keep up: stop, report what was sent
	for i := 0; i < n; i++ {
		if time.Now().After(giveUp) {
			n = i
			break
		}
		next := start.Add(time.Duration(i) * interval)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		if err := src.Write(t, payload(uint64(i), *size)); err != nil {
			fatal("write_error", err)
		}
	}
	sendElapsed := time.Since(start).Seconds()
	wait := time.Now().Add(5 * time.Second)
	for got.Load() < int64(n) && time.Now().Before(wait) {
		time.Sleep(10 * time.Millisecond)
	}
	skip := int(*rate * warmup.Seconds())
	lat := make([]float64, 0, n)
	lost := 0
	for i, v := range recv[:n] {
		if v == 0 {
			lost++
			continue
		}
		if i >= skip {
			lat = append(lat, float64(v)/1e6)
		}
	}
	sort.Float64s(lat)
	mean := 0.0
	for _, v := range lat {
		mean += v
	}
	if len(lat) > 0 {
		mean /= float64(len(lat))
	}
	emit(map[string]any{
		"event": "summary", "sent": n, "received": got.Load(), "lost": lost,
		"out_of_order": ooo.Load(), "rate_target": *rate,
		"rate_achieved": float64(n) / sendElapsed, "samples": len(lat),
		"p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
		"p999_ms": percentile(lat, 99.9), "max_ms": percentile(lat, 100), "mean_ms": mean,
	})
}

// ------------------------------------------------------------------ idle

func runIdle(args []string) {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	zipper := fs.String("zipper", "127.0.0.1:9000", "zipper host:port")
	n := fs.Int("n", 1000, "connections")
	parallel := fs.Int("parallel", 16, "handshakes in flight")
	_ = fs.Parse(args)

	clients := make([]*core.Client, *n)
	var failed atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, *parallel)
	start := time.Now()
	for i := 0; i < *n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			cl := core.NewClient(fmt.Sprintf("bench-idle-%d", i), *zipper, core.ClientTypeStreamFunction,
				core.WithLogger(logger()))
			cl.SetObserveDataTags(0x99)
			cl.SetDataFrameObserver(func(*frame.DataFrame) {})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := cl.Connect(ctx); err != nil {
				failed.Add(1)
				return
			}
			clients[i] = cl
		}(i)
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	ok := int64(*n) - failed.Load()
	emit(map[string]any{
		"event": "connected", "n": *n, "ok": ok, "failed": failed.Load(),
		"seconds": secs, "hps": float64(ok) / secs,
	})
	ctx, stop := signalContext()
	defer stop()
	<-ctx.Done()
	for _, cl := range clients {
		if cl != nil {
			_ = cl.Close()
		}
	}
	emit(map[string]any{"event": "closed"})
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: ybench source|sink|fwd|lat|idle [flags]")
		os.Exit(64)
	}
	cmd, args := os.Args[1], os.Args[2:]
	switch cmd {
	case "source":
		runSource(args)
	case "sink":
		runSink(args)
	case "fwd":
		runFwd(args)
	case "lat":
		runLat(args)
	case "idle":
		runIdle(args)
	default:
		fmt.Fprintln(os.Stderr, "unknown command", cmd)
		os.Exit(64)
	}
}
