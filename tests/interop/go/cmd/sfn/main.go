// Command sfn is a Go YoMo stream function for the interop tests: it observes
// tags, transforms each payload and writes the result to -out-tag.
//
// Modes:
//
//	handler  yomo.NewStreamFunction + SetHandler; the reply goes out through
//	         serverless.Context.Write, so it keeps the frame's metadata (tid,
//	         source id, trace). Go runs every handler call in its own
//	         goroutine, so replies may leave in a different order.
//	ordered  a core.Client of type StreamFunction whose frame observer queues
//	         frames for one writer goroutine: replies keep the arrival order
//	         and the frame's metadata (the target key is dropped, as the
//	         handler path does, or set to -out-target).
//	pipe     yomo.NewStreamFunction + SetPipeHandler; Go hands the pipe only
//	         the payload bytes, so replies carry no metadata of the input.
//	cron     yomo.NewStreamFunction + SetCronHandler(-cron): each run writes the
//	         function's name to -out-tag through serverless.CronContext (with
//	         -out-target, WriteWithTarget); observed frames are not handled.
package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"sync/atomic"

	"github.com/yomorun/yomo"
	"github.com/yomorun/yomo/core"
	"github.com/yomorun/yomo/core/frame"
	"github.com/yomorun/yomo/core/metadata"
	"github.com/yomorun/yomo/serverless"

	"yomo-py-interop/internal/peer"
)

func main() {
	zipper := flag.String("zipper", "127.0.0.1:9000", "zipper host:port")
	name := flag.String("name", "go-sfn", "stream function name")
	credential := flag.String("credential", "", "credential, e.g. token:abc")
	observe := flag.String("observe", "0x33", "comma list of observed tags")
	outTag := flag.String("out-tag", "0x34", "tag of the replies; empty = no reply")
	transform := flag.String("transform", "upper", `"identity", "upper" or "prefix:<s>"`)
	wanted := flag.String("wanted-target", "", "wanted target")
	outTarget := flag.String("out-target", "", "reply with this target (Context.WriteWithTarget)")
	mode := flag.String("mode", "handler", "handler | ordered | pipe | cron")
	cronSpec := flag.String("cron", "@every 1s", "the cron spec of -mode cron")
	pipe := flag.Bool("pipe", false, "same as -mode pipe")
	verbose := flag.Bool("v", false, "print one line per handled frame")
	flag.Parse()
	if *pipe {
		*mode = "pipe"
	}

	tags, err := peer.ParseTags(*observe)
	if err != nil {
		peer.Fatal(64, "usage_error", err)
	}
	var out uint32
	reply := *outTag != ""
	if reply {
		outs, err := peer.ParseTags(*outTag)
		if err != nil || len(outs) != 1 {
			peer.Fatal(64, "usage_error", errors.New("-out-tag needs one tag"))
		}
		out = outs[0]
	}
	fn, err := peer.Transform(*transform)
	if err != nil {
		peer.Fatal(64, "usage_error", err)
	}
	apply := func(b []byte) []byte {
		r := fn(b)
		if r == nil {
			r = []byte{} // nil would make Context.Write a no-op
		}
		return r
	}

	var handled, failed atomic.Int64
	note := func(tag uint32, in []byte, tid any, err error) {
		if err != nil {
			failed.Add(1)
			peer.Emit(map[string]any{"event": "write_error", "tag": tag, "len": len(in), "error": err.Error()})
			return
		}
		n := handled.Add(1)
		if *verbose {
			peer.Emit(map[string]any{"event": "handled", "n": n, "tag": tag, "len": len(in), "seq": peer.Seq(in), "tid": tid})
		}
	}
	var closing atomic.Bool
	onError := func(err error) {
		if !closing.Load() { // closing reports "StreamFunction: shutdown" here
			peer.Emit(map[string]any{"event": "error", "error": err.Error()})
		}
	}

	var closer func() error
	switch *mode {
	case "handler", "pipe", "cron":
		opts := []yomo.SfnOption{yomo.WithSfnLogger(peer.Logger())}
		if *credential != "" {
			opts = append(opts, yomo.WithSfnCredential(*credential))
		}
		sfn := yomo.NewStreamFunction(*name, *zipper, opts...)
		sfn.SetObserveDataTags(tags...)
		sfn.SetWantedTarget(*wanted)
		sfn.SetErrorHandler(onError)
		if *mode == "handler" {
			_ = sfn.SetHandler(func(ctx serverless.Context) {
				var err error
				if reply && *outTarget != "" {
					err = ctx.WriteWithTarget(out, apply(ctx.Data()), *outTarget)
				} else if reply {
					err = ctx.Write(out, apply(ctx.Data()))
				}
				tid, ok := ctx.Metadata(metadata.TIDKey)
				note(ctx.Tag(), ctx.Data(), peer.OrNil(tid, ok), err)
			})
		} else if *mode == "cron" {
			_ = sfn.SetCronHandler(*cronSpec, func(ctx serverless.CronContext) {
				var err error
				if reply && *outTarget != "" {
					err = ctx.WriteWithTarget(out, []byte(*name), *outTarget)
				} else if reply {
					err = ctx.Write(out, []byte(*name))
				}
				note(out, []byte(*name), nil, err)
			})
		} else {
			_ = sfn.SetPipeHandler(func(in <-chan []byte, outCh chan<- *frame.DataFrame) {
				// Go's read loop blocks on `in` while the pipe's output waits
				// for that same loop to write, so decouple through a queue.
				q := peer.NewQueue[[]byte]()
				go func() {
					for b := range in {
						q.Push(b)
					}
					q.Close()
				}()
				for {
					b, ok := q.Pop()
					if !ok {
						return
					}
					if reply {
						outCh <- &frame.DataFrame{Tag: out, Payload: apply(b)}
					}
					note(0, b, nil, nil)
				}
			})
		}
		if err := sfn.Connect(); err != nil {
			peer.Fatal(2, "connect_error", err)
		}
		closer = sfn.Close
	case "ordered":
		opts := []core.ClientOption{core.WithLogger(peer.Logger())}
		if *credential != "" {
			opts = append(opts, core.WithCredential(*credential))
		}
		client := core.NewClient(*name, *zipper, core.ClientTypeStreamFunction, opts...)
		client.SetObserveDataTags(tags...)
		client.SetWantedTarget(*wanted)
		client.SetErrorHandler(onError)
		q := peer.NewQueue[*frame.DataFrame]()
		client.SetDataFrameObserver(func(f *frame.DataFrame) { q.Push(f) })
		go func() {
			for {
				f, ok := q.Pop()
				if !ok {
					return
				}
				md, err := metadata.Decode(f.Metadata)
				if err == nil {
					md.Set(metadata.TargetKey, *outTarget)
					var raw []byte
					raw, err = md.Encode()
					if err == nil && reply {
						err = client.WriteFrame(&frame.DataFrame{Tag: out, Metadata: raw, Payload: apply(f.Payload)})
					}
				}
				tid, ok := md.Get(metadata.TIDKey)
				note(f.Tag, f.Payload, peer.OrNil(tid, ok), err)
			}
		}()
		if err := client.Connect(context.Background()); err != nil {
			peer.Fatal(2, "connect_error", err)
		}
		closer = client.Close
	default:
		peer.Fatal(64, "usage_error", errors.New("unknown -mode "+*mode))
	}

	peer.Emit(map[string]any{"event": "connected", "mode": *mode})
	sig, stop := peer.SignalContext()
	defer stop()
	<-sig.Done()
	closing.Store(true)
	_ = closer()
	peer.Emit(map[string]any{"event": "closed", "handled": handled.Load(), "failed": failed.Load()})
	os.Exit(0)
}
