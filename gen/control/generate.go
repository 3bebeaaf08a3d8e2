// Package control holds the code oapi-codegen generates from openapi-control.yaml, the
// reference server's control API. Nothing here is written by hand.
package control

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config control.cfg.yaml ../../openapi-control.yaml
