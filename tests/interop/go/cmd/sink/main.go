// Command sink is a Go YoMo stream function for the interop tests that only
// reports: one JSON line per data frame it receives, never a reply.
//
// Modes:
//
//	ordered  (default) a core.Client of type StreamFunction; lines come out in
//	         the order the frames arrived on the wire.
//	handler  yomo.NewStreamFunction + SetHandler, read through the
//	         serverless.Context accessors; Go runs each call in its own
//	         goroutine, so lines may come out of arrival order.
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

var received atomic.Int64

func report(tag uint32, data []byte, get func(string) (string, bool), md map[string]string) {
	n := received.Add(1)
	line := map[string]any{
		"event":     "frame",
		"n":         n,
		"tag":       tag,
		"len":       len(data),
		"sha256":    peer.Digest(data),
		"seq":       peer.Seq(data),
		"head":      peer.Head(data),
		"tid":       peer.OrNil(get(metadata.TIDKey)),
		"source_id": peer.OrNil(get(metadata.SourceIDKey)),
		"trace_id":  peer.OrNil(get(metadata.TraceIDKey)),
		"span_id":   peer.OrNil(get(metadata.SpanIDKey)),
		"target":    peer.OrNil(get(metadata.TargetKey)),
	}
	if md != nil {
		line["md"] = md
	}
	peer.Emit(line)
}

func main() {
	zipper := flag.String("zipper", "127.0.0.1:9000", "zipper host:port")
	name := flag.String("name", "go-sink", "stream function name")
	credential := flag.String("credential", "", "credential, e.g. token:abc")
	observe := flag.String("observe", "0x34", "comma list of observed tags")
	wanted := flag.String("wanted-target", "", "wanted target")
	mode := flag.String("mode", "ordered", "ordered | handler")
	flag.Parse()

	tags, err := peer.ParseTags(*observe)
	if err != nil {
		peer.Fatal(64, "usage_error", err)
	}
	var closing atomic.Bool
	onError := func(err error) {
		if !closing.Load() { // closing reports "StreamFunction: shutdown" here
			peer.Emit(map[string]any{"event": "error", "error": err.Error()})
		}
	}

	var closer func() error
	switch *mode {
	case "ordered":
		opts := []core.ClientOption{core.WithLogger(peer.Logger())}
		if *credential != "" {
			opts = append(opts, core.WithCredential(*credential))
		}
		client := core.NewClient(*name, *zipper, core.ClientTypeStreamFunction, opts...)
		client.SetObserveDataTags(tags...)
		client.SetWantedTarget(*wanted)
		client.SetErrorHandler(onError)
		client.SetDataFrameObserver(func(f *frame.DataFrame) {
			md, err := metadata.Decode(f.Metadata)
			if err != nil {
				peer.Emit(map[string]any{"event": "bad_metadata", "tag": f.Tag, "error": err.Error()})
				md = metadata.M{}
			}
			report(f.Tag, f.Payload, md.Get, md)
		})
		if err := client.Connect(context.Background()); err != nil {
			peer.Fatal(2, "connect_error", err)
		}
		closer = client.Close
	case "handler":
		opts := []yomo.SfnOption{yomo.WithSfnLogger(peer.Logger())}
		if *credential != "" {
			opts = append(opts, yomo.WithSfnCredential(*credential))
		}
		sfn := yomo.NewStreamFunction(*name, *zipper, opts...)
		sfn.SetObserveDataTags(tags...)
		sfn.SetWantedTarget(*wanted)
		sfn.SetErrorHandler(onError)
		_ = sfn.SetHandler(func(ctx serverless.Context) {
			report(ctx.Tag(), ctx.Data(), ctx.Metadata, nil)
		})
		if err := sfn.Connect(); err != nil {
			peer.Fatal(2, "connect_error", err)
		}
		closer = sfn.Close
	default:
		peer.Fatal(64, "usage_error", errors.New("unknown -mode "+*mode))
	}

	peer.Emit(map[string]any{"event": "connected", "mode": *mode})
	sig, stop := peer.SignalContext()
	defer stop()
	<-sig.Done()
	closing.Store(true)
	_ = closer()
	peer.Emit(map[string]any{"event": "closed", "received": received.Load()})
	os.Exit(0)
}
