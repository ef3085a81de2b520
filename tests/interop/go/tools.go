//go:build tools

// Package tools pins the reference YoMo CLI so `go build github.com/yomorun/yomo/cmd/yomo`
// resolves through this module's go.mod and go.sum.
package tools

import _ "github.com/yomorun/yomo/cmd/yomo"
