//go:build tools

// Package tools pins the code generators and benchstat in go.mod, so `make generate` and
// `make bench` run the same tools on every machine.
package tools

import (
	_ "github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen"
	_ "golang.org/x/perf/cmd/benchstat"
)
