// Package reftest starts the reference server with the demo seed on a loopback listener,
// for the tests and examples of the packages that talk to it (client, qrctl).
package reftest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/qrapi/qrapi/internal/engine"
	"github.com/qrapi/qrapi/seed"
	"github.com/qrapi/qrapi/server"
)

// The demo seed's names (seed/demo.yaml).
const (
	KeyAdmin  = "qrdemo-admin-key-0123456789abcdefghijklmnop"
	KeyReader = "qrdemo-reader-key-0123456789abcdefghijklmno"
	KeyOther  = "qrdemo-other-key-0123456789abcdefghijklmnop"
	AcctDemo  = "8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b"
	AcctOther = "5b2d9e8f7a6c4b3d8e1f0a9b8c7d6e5f"
	CRNA1     = "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f::"
	CRNA2     = "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f::"
	CRNB1     = "crn:v1:bluemix:public:quantum-computing:us-east:a/5b2d9e8f7a6c4b3d8e1f0a9b8c7d6e5f:7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b::"
	CRNB2     = "crn:v1:bluemix:public:quantum-computing:eu-de:a/5b2d9e8f7a6c4b3d8e1f0a9b8c7d6e5f:3a4b5c6d-7e8f-4a9b-8c0d-1e2f3a4b5c6d::"
	CRNAMiss  = "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:00000000-0000-4000-8000-000000000000::"
)

// Server is a running reference server.
type Server struct {
	URL    string       // http://127.0.0.1:port; the API is under /api
	Tokens atomic.Int32 // tokens issued at /identity/token
	close  func()
}

// Close stops the server.
func (s *Server) Close() { s.close() }

// Start starts a reference server on an in-memory database with the demo seed, validating
// its answers. tokenTTL 0 means IAM's one hour.
func Start(tokenTTL time.Duration) (*Server, error) {
	ctx := context.Background()
	st, err := engine.Open(ctx, ":memory:", nil)
	if err != nil {
		return nil, err
	}
	if err := st.Load(ctx, seed.Demo()); err != nil {
		st.Close()
		return nil, err
	}
	srv, err := server.New(ctx, server.Config{Store: st, ValidateResponses: true, TokenTTL: tokenTTL})
	if err != nil {
		st.Close()
		return nil, err
	}
	rs := &Server{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/identity/token" {
			rs.Tokens.Add(1)
		}
		srv.ServeHTTP(w, r)
	}))
	rs.URL = hs.URL
	rs.close = func() {
		hs.Close()
		srv.Close()
		st.Close()
	}
	return rs, nil
}

// ReadmeBlock returns the fenced block (```lang) that follows the HTML comment
// <!-- marker … --> in the README at path: the README's examples are run by tests.
func ReadmeBlock(path, marker, lang string) (string, error) {
	readme, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	_, after, ok := strings.Cut(string(readme), "<!-- "+marker)
	if !ok {
		return "", fmt.Errorf("%s has no <!-- %s --> block", path, marker)
	}
	_, after, ok = strings.Cut(after, "```"+lang+"\n")
	if !ok {
		return "", fmt.Errorf("%s: no ```%s block after <!-- %s -->", path, lang, marker)
	}
	block, _, _ := strings.Cut(after, "```")
	return block, nil
}
