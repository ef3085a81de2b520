// Command parity answers what Go YoMo v1.22.3 makes of inputs whose handling
// the Python port must match, one JSON line per input on stdout:
//
//	parity addr ADDR...               core.ParseZipperAddr (as NewClient and `yomo run -z` use it)
//	parity cron -from UNIX -n N SPEC...  the schedule sfn.SetCronHandler builds (robfig/cron's
//	                                  standard parser, as cron.New() uses it): its next N times
//	                                  after UNIX, or the parse error (which Go's sfn ignores)
//
// The cron times are in the zone of $TZ, as Go's time.Local is.
package main

import (
	"errors"
	"flag"
	"os"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/yomorun/yomo/core"

	"yomo-py-interop/internal/peer"
)

func main() {
	if len(os.Args) < 2 {
		peer.Fatal(64, "usage_error", errors.New("usage: parity addr|cron ..."))
	}
	switch os.Args[1] {
	case "addr":
		for _, in := range os.Args[2:] {
			out, err := core.ParseZipperAddr(in)
			line := map[string]any{"in": in, "out": out}
			if err != nil {
				line["error"] = err.Error()
			}
			peer.Emit(line)
		}
	case "cron":
		fs := flag.NewFlagSet("cron", flag.ExitOnError)
		from := fs.Int64("from", 0, "start, unix seconds")
		n := fs.Int("n", 5, "how many times")
		_ = fs.Parse(os.Args[2:])
		parser := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
		for _, spec := range fs.Args() {
			line := map[string]any{"spec": spec}
			schedule, err := parser.Parse(spec)
			if err != nil {
				line["error"] = err.Error()
				peer.Emit(line)
				continue
			}
			t := time.Unix(*from, 0)
			times := []int64{}
			for i := 0; i < *n; i++ {
				t = schedule.Next(t)
				if t.IsZero() {
					break
				}
				times = append(times, t.Unix())
			}
			line["next"] = times
			peer.Emit(line)
		}
	default:
		peer.Fatal(64, "usage_error", errors.New("unknown subcommand "+os.Args[1]))
	}
}
