package spec_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/qrapi/qrapi/spec"
)

// BenchmarkValidateRequest is kin-openapi's request validation of get_instance alone
// (security passes through a no-op authenticator), as the server runs it.
func BenchmarkValidateRequest(b *testing.B) {
	d, err := spec.Load()
	if err != nil {
		b.Fatal(err)
	}
	op := d.Operation("get_instance")
	route := &routers.Route{Spec: d.T, Path: op.Path, PathItem: op.PathItem, Method: op.Method, Operation: op.Operation}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	req := httptest.NewRequest("GET", "/api/v1/instance", nil)
	req.Header.Set("Authorization", "Bearer x")
	req.Header.Set("Service-CRN", "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f::")
	req.Header.Set("IBM-API-Version", "2025-05-01")
	b.ReportAllocs()
	for b.Loop() {
		if err := openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{Request: req, Route: route, Options: opts}); err != nil {
			b.Fatal(err)
		}
	}
}
