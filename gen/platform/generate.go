// Package platform holds the code oapi-codegen generates from openapi-platform.yaml: the
// subset of IBM Cloud's Global Search, Global Catalog and Resource Controller that the
// reference server answers. Nothing here is written by hand.
package platform

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config platform.cfg.yaml ../../openapi-platform.yaml
