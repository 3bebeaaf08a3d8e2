//go:build tools

// Package tools pins the code generators in go.mod, so `make generate` runs the same
// oapi-codegen on every machine.
package tools

import (
	_ "github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen"
)
