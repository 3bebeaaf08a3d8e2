package client_test

import (
	"time"

	"github.com/qrapi/qrapi/internal/reftest"
)

const (
	keyAdmin  = reftest.KeyAdmin
	keyReader = reftest.KeyReader
	acctDemo  = reftest.AcctDemo
	crnA1     = reftest.CRNA1
	crnA2     = reftest.CRNA2
	crnAMiss  = reftest.CRNAMiss
)

// refServer adapts reftest.Server to the names these tests use.
type refServer struct {
	*reftest.Server
	tokens interface{ Load() int32 }
}

func (r *refServer) close() { r.Server.Close() }

func startReferenceServer(tokenTTL time.Duration) *refServer {
	s, err := reftest.Start(tokenTTL)
	if err != nil {
		panic(err)
	}
	return &refServer{Server: s, tokens: &s.Tokens}
}
