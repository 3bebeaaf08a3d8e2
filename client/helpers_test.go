package client_test

import (
	"fmt"
	"time"

	"github.com/qrapi/qrapi/qrtest"
)

const (
	keyAdmin  = qrtest.KeyAdmin
	keyReader = qrtest.KeyReader
	acctDemo  = qrtest.AccountDemo
	crnA1     = qrtest.InstanceA
	crnA2     = qrtest.InstanceB
	crnAMiss  = qrtest.InstanceMissing
)

// standalone stands in for a test's *testing.T where there is none (the examples).
type standalone struct{ cleanups []func() }

func (s *standalone) Helper()                           {}
func (s *standalone) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (s *standalone) Cleanup(f func())                  { s.cleanups = append(s.cleanups, f) }

// refServer is a qrtest.Server for the examples, which have no *testing.T.
type refServer struct {
	*qrtest.Server
	t *standalone
}

func (r *refServer) close() {
	for i := len(r.t.cleanups) - 1; i >= 0; i-- {
		r.t.cleanups[i]()
	}
}

func startReferenceServer(tokenTTL time.Duration) *refServer {
	t := &standalone{}
	return &refServer{Server: qrtest.NewServer(t, qrtest.WithTokenTTL(tokenTTL)), t: t}
}
