// Command chatload is the load generator of bench/bridge_bench.py: N clients post
// chat-completion requests back to back and it prints one JSON line of results.
//
//	chatload -url http://127.0.0.1:8000/v1/chat/completions -c 100 -duration 10s \
//	    -expect "is sunny" [-direct -tool get-weather]
//
// Bridge mode posts one user message and checks that the answer contains -expect.
// Direct mode (-direct) makes the two LLM calls a bridge would make, straight to the
// LLM: the first offers -tool and must get a tool call back, the second carries the
// tool's result (-expect) and must get an answer quoting it.
//
// It is written in Go so that the client costs the bench little CPU: the bench's
// Python client (httpx) used to be a bottleneck of its own. Its user+system CPU
// time is part of the output, so the bench can show what the client took.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"
)

type result struct {
	Requests    int      `json:"requests"`
	Errors      int      `json:"errors"`
	FirstErrors []string `json:"first_errors"`
	Seconds     float64  `json:"seconds"`
	CallsPerS   float64  `json:"calls_per_s"`
	P50Ms       float64  `json:"p50_ms"`
	P90Ms       float64  `json:"p90_ms"`
	P99Ms       float64  `json:"p99_ms"`
	MaxMs       float64  `json:"max_ms"`
	MeanMs      float64  `json:"mean_ms"`
	CPUSeconds  float64  `json:"client_cpu_s"`
	Connections int64    `json:"client_connections"`
}

type chatMessage = map[string]any

var ask = []chatMessage{{"role": "user", "content": "weather in New York?"}}

func main() {
	url := flag.String("url", "", "chat-completions URL")
	concurrency := flag.Int("c", 100, "clients posting back to back")
	duration := flag.Duration("duration", 10*time.Second, "how long to post")
	expect := flag.String("expect", "", "text the final answer must contain")
	direct := flag.Bool("direct", false, "make the two LLM calls of a bridge straight to the LLM")
	tool := flag.String("tool", "get-weather", "the tool offered in direct mode")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "chatload: -url is required")
		os.Exit(2)
	}

	var dials counter
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.add()
			return dialer.DialContext(ctx, network, addr)
		},
		MaxIdleConns:        *concurrency,
		MaxIdleConnsPerHost: *concurrency,
		MaxConnsPerHost:     *concurrency,
		IdleConnTimeout:     90 * time.Second,
	}
	client := &http.Client{Transport: transport, Timeout: 120 * time.Second}
	one := func() error { return bridgeCall(client, *url, *expect) }
	if *direct {
		one = func() error { return directCall(client, *url, *tool, *expect) }
	}

	var mu sync.Mutex
	var latencies []float64
	var errs []string
	nErrors := 0
	start := time.Now()
	stopAt := start.Add(*duration)
	var wg sync.WaitGroup
	for i := 0; i < *concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stopAt) {
				t0 := time.Now()
				err := one()
				took := time.Since(t0).Seconds()
				mu.Lock()
				if err != nil {
					nErrors++
					if len(errs) < 3 {
						errs = append(errs, trim(err.Error(), 200))
					}
				} else {
					latencies = append(latencies, took)
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	transport.CloseIdleConnections()

	sort.Float64s(latencies)
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		i := int(p * float64(len(latencies)))
		if i >= len(latencies) {
			i = len(latencies) - 1
		}
		return latencies[i] * 1000
	}
	sum := 0.0
	for _, l := range latencies {
		sum += l
	}
	mean := 0.0
	if len(latencies) > 0 {
		mean = sum / float64(len(latencies)) * 1000
	}
	if errs == nil {
		errs = []string{}
	}
	out := result{
		Requests: len(latencies), Errors: nErrors, FirstErrors: errs, Seconds: elapsed,
		CallsPerS: float64(len(latencies)) / elapsed,
		P50Ms:     pct(0.50), P90Ms: pct(0.90), P99Ms: pct(0.99), MaxMs: pct(1.0), MeanMs: mean,
		CPUSeconds: cpuSeconds(), Connections: dials.get(),
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}

type counter struct {
	mu sync.Mutex
	n  int64
}

func (c *counter) add() { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *counter) get() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func trim(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// post sends body as JSON and decodes a 200 answer's first choice's message.
func post(client *http.Client, url string, body any) (map[string]any, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	resp, err := client.Post(url, "application/json", bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, trim(string(data), 150))
	}
	var answer struct {
		Choices []struct {
			Message map[string]any `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(data, &answer); err != nil {
		return nil, fmt.Errorf("answer is not JSON: %w", err)
	}
	if len(answer.Choices) == 0 || answer.Choices[0].Message == nil {
		return nil, fmt.Errorf("answer without a message: %s", trim(string(data), 150))
	}
	return answer.Choices[0].Message, nil
}

func checkContent(message map[string]any, expect string) error {
	content, _ := message["content"].(string)
	if !bytes.Contains([]byte(content), []byte(expect)) {
		return fmt.Errorf("unexpected answer %q", trim(content, 150))
	}
	return nil
}

func bridgeCall(client *http.Client, url, expect string) error {
	message, err := post(client, url, map[string]any{"model": "m", "messages": ask})
	if err != nil {
		return err
	}
	return checkContent(message, expect)
}

func directCall(client *http.Client, url, tool, expect string) error {
	tools := []any{map[string]any{
		"type":     "function",
		"function": map[string]any{"name": tool, "parameters": map[string]any{"type": "object", "properties": map[string]any{}}},
	}}
	first, err := post(client, url, map[string]any{"model": "m", "messages": ask, "tools": tools})
	if err != nil {
		return err
	}
	calls, _ := first["tool_calls"].([]any)
	if len(calls) == 0 {
		return fmt.Errorf("no tool call in the first answer")
	}
	call, _ := calls[0].(map[string]any)
	id, _ := call["id"].(string)
	messages := append(append([]chatMessage{}, ask...),
		chatMessage{"role": "assistant", "tool_calls": []any{call}},
		chatMessage{"role": "tool", "tool_call_id": id, "content": expect},
	)
	second, err := post(client, url, map[string]any{"model": "m", "messages": messages, "tools": tools})
	if err != nil {
		return err
	}
	return checkContent(second, expect)
}
