// Command fndef prints, one JSON line each, the function definitions Go YoMo's
// core.ParseAIFunctionDefinition builds (the bytes of a handshake's field 0x09)
// for a few argument structs, and the bytes of an answered ai.FunctionCall.
// The interop tests compare them with what yomo.ai builds for the same types.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/yomorun/yomo/ai"
	"github.com/yomorun/yomo/core"
)

// Weather is the argument struct of Go's `yomo init` llm template.
type Weather struct {
	City      string  `json:"city" jsonschema:"description=The city name to get the weather for,required"`
	Latitude  float64 `json:"latitude" jsonschema:"description=The latitude of the city, in decimal format, range should be in (-90, 90)"`
	Longitude float64 `json:"longitude" jsonschema:"description=The longitude of the city, in decimal format, range should be in (-180, 180)"`
}

// Kinds has one field of each scalar kind, an enum, a list and optional fields.
type Kinds struct {
	Name   string   `json:"name" jsonschema:"description=A name"`
	Count  int      `json:"count"`
	Ratio  float64  `json:"ratio,omitempty"`
	OK     bool     `json:"ok,omitempty"`
	Unit   string   `json:"unit" jsonschema:"enum=celsius,enum=fahrenheit"`
	Tags   []string `json:"tags,omitempty"`
	Nested map[string]string `json:"nested,omitempty"`
}

type line struct {
	Case  string          `json:"case"`
	Bytes json.RawMessage `json:"bytes,omitempty"`
	Text  string          `json:"text,omitempty"`
}

func emit(name string, b []byte, err error) {
	out := line{Case: name}
	if err != nil {
		out.Text = "error: " + err.Error()
	} else {
		out.Text = string(b)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(out)
}

func main() {
	b, err := core.ParseAIFunctionDefinition("get-weather", "Get current weather for a given city.", &Weather{})
	emit("weather", b, err)
	b, err = core.ParseAIFunctionDefinition("kinds", "All kinds", &Kinds{})
	emit("kinds", b, err)
	b, err = core.ParseAIFunctionDefinition("no-args", "Takes nothing", nil)
	emit("no-args", b, err)
	call := ai.FunctionCall{TransID: "t1", ReqID: "r1", ToolCallID: "c1", FunctionName: "get-weather", Arguments: `{"city":"Paris"}`, AgentContext: "null"}
	call.IsOK = true
	call.Result = "sunny <&> \u00e9"
	b, err = call.Bytes()
	emit("call", b, err)
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "fndef takes no arguments")
		os.Exit(64)
	}
}
