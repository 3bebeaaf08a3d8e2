// Package gen holds the Go code that oapi-codegen generates from openapi.yaml: the wire
// models, the echo strict-server interface, the embedded document and the HTTP client.
// Nothing here is written by hand; run `make generate` after editing openapi.yaml.
package gen

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config models.cfg.yaml ../openapi.yaml
//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config server.cfg.yaml ../openapi.yaml
//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config client.cfg.yaml ../openapi.yaml
