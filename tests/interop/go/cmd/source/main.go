// Command source is a Go YoMo source for the interop tests: it writes -n
// deterministic payloads (see peer.Payload) and prints one JSON line per write.
package main

import (
	"flag"
	"os"
	"sync/atomic"
	"time"

	"github.com/yomorun/yomo"

	"yomo-py-interop/internal/peer"
)

func main() {
	zipper := flag.String("zipper", "127.0.0.1:9000", "zipper host:port")
	name := flag.String("name", "go-source", "source name")
	credential := flag.String("credential", "", "credential, e.g. token:abc")
	tagList := flag.String("tags", "0x33", "comma list of tags, used in turn")
	flag.StringVar(tagList, "tag", "0x33", "alias of -tags")
	n := flag.Int("n", 10, "number of writes")
	sizeList := flag.String("sizes", "16", "comma list of payload sizes, used in turn")
	target := flag.String("target", "", "write with this target (WriteWithTarget)")
	interval := flag.Duration("interval", 0, "pause between writes")
	linger := flag.Duration("linger", time.Second, "stay connected this long after the last write")
	quiet := flag.Bool("quiet", false, "no per-write lines")
	flag.Parse()

	tags, err := peer.ParseTags(*tagList)
	if err != nil || len(tags) == 0 {
		peer.Emit(map[string]any{"event": "usage_error", "error": "need -tags"})
		os.Exit(64)
	}
	sizes, err := peer.ParseSizes(*sizeList)
	if err != nil {
		peer.Fatal(64, "usage_error", err)
	}

	opts := []yomo.SourceOption{yomo.WithLogger(peer.Logger())}
	if *credential != "" {
		opts = append(opts, yomo.WithCredential(*credential))
	}
	src := yomo.NewSource(*name, *zipper, opts...)
	var closing atomic.Bool
	src.SetErrorHandler(func(err error) {
		if !closing.Load() { // closing reports "Source: shutdown" here
			peer.Emit(map[string]any{"event": "error", "error": err.Error()})
		}
	})
	if err := src.Connect(); err != nil {
		peer.Fatal(2, "connect_error", err)
	}
	peer.Emit(map[string]any{"event": "connected"})

	ctx, stop := peer.SignalContext()
	defer stop()

	start := time.Now()
	written, failed, total := 0, 0, 0
	for i := 0; i < *n; i++ {
		if ctx.Err() != nil {
			break
		}
		tag := tags[i%len(tags)]
		payload := peer.Payload(uint64(i), sizes[i%len(sizes)])
		if *target != "" {
			err = src.WriteWithTarget(tag, payload, *target)
		} else {
			err = src.Write(tag, payload)
		}
		if err != nil {
			failed++
		} else {
			written++
			total += len(payload)
		}
		if !*quiet || err != nil {
			line := map[string]any{"event": "write", "seq": i, "tag": tag, "len": len(payload), "ok": err == nil}
			if err != nil {
				line["error"] = err.Error()
			}
			peer.Emit(line)
		}
		if *interval > 0 {
			time.Sleep(*interval)
		}
	}
	peer.Emit(map[string]any{
		"event": "summary", "written": written, "failed": failed, "bytes": total,
		"elapsed_ms": peer.Millis(time.Since(start)),
	})
	select {
	case <-ctx.Done():
	case <-time.After(*linger):
	}
	closing.Store(true)
	_ = src.Close()
	peer.Emit(map[string]any{"event": "closed"})
	if failed > 0 || written < *n {
		os.Exit(1)
	}
}
