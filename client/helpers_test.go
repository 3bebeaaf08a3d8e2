package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/qrapi/qrapi/seed"
	"github.com/qrapi/qrapi/server"
	"github.com/qrapi/qrapi/sqlite"
)

// The demo seed's names (seed/demo.yaml).
const (
	keyAdmin  = "qrdemo-admin-key-0123456789abcdefghijklmnop"
	keyReader = "qrdemo-reader-key-0123456789abcdefghijklmno"
	acctDemo  = "8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b"
	crnA1     = "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f::"
	crnA2     = "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f::"
	crnB1     = "crn:v1:bluemix:public:quantum-computing:us-east:a/5b2d9e8f7a6c4b3d8e1f0a9b8c7d6e5f:7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b::"
	crnAMiss  = "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:00000000-0000-4000-8000-000000000000::"
)

// refServer is the reference server with the demo seed on a loopback listener, counting
// the tokens it issues.
type refServer struct {
	URL    string
	tokens atomic.Int32
	close  func()
}

func startReferenceServer(tokenTTL time.Duration) *refServer {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Memory)
	if err != nil {
		panic(err)
	}
	if err := st.Load(ctx, seed.Demo()); err != nil {
		panic(err)
	}
	srv, err := server.New(ctx, server.Config{Store: st, ValidateResponses: true, TokenTTL: tokenTTL})
	if err != nil {
		panic(err)
	}
	rs := &refServer{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/identity/token" {
			rs.tokens.Add(1)
		}
		srv.ServeHTTP(w, r)
	}))
	rs.URL = hs.URL
	rs.close = func() {
		hs.Close()
		srv.Close()
		st.Close()
	}
	return rs
}
