package client

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/qrapi/qrapi/gen"
)

// ValidationError says an answer does not match openapi.yaml: the service and the
// document have drifted apart.
type ValidationError struct {
	Method, URL string
	Status      int
	Err         error
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("client: the answer to %s %s (status %d) does not match openapi.yaml: %v", e.Method, e.URL, e.Status, e.Err)
}

func (e *ValidationError) Unwrap() error { return e.Err }

// validatingTransport checks every answer against the embedded document.
type validatingTransport struct {
	next   http.RoundTripper
	router routers.Router
}

func newValidatingTransport(next http.RoundTripper, baseURL string) (*validatingTransport, error) {
	doc, err := gen.GetSwagger()
	if err != nil {
		return nil, err
	}
	doc.Servers = openapi3.Servers{{URL: strings.TrimSuffix(baseURL, "/")}}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &validatingTransport{next: next, router: r}, nil
}

func (vt *validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := vt.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	route, params, ferr := vt.router.FindRoute(req)
	if ferr != nil {
		return resp, nil // not an operation of the document
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	in.SetBodyBytes(body)
	if verr := openapi3filter.ValidateResponse(req.Context(), in); verr != nil {
		u := *req.URL
		u.RawQuery = ""
		return nil, &ValidationError{Method: req.Method, URL: redact(&u), Status: resp.StatusCode, Err: verr}
	}
	return resp, nil
}

func redact(u *url.URL) string {
	u.User = nil
	return u.String()
}
