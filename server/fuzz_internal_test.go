package server

import (
	"context"
	"testing"
	"time"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/internal/enginetest"
	"github.com/qrapi/qrapi/seed"
)

// The token parser never panics, and accepts only what this server signed: any other
// string is an unauthorized error.
func FuzzVerifyToken(f *testing.F) {
	st := enginetest.Open(f)
	if err := st.Load(context.Background(), seed.Demo()); err != nil {
		f.Fatal(err)
	}
	s, err := New(context.Background(), Config{Store: st})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	p, _, _ := st.Identity(context.Background(), "IBMid-demo-admin")
	good, _, err := s.issueToken(p, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	for _, seedTok := range []string{good, good + "x", "a.b.c", "", "..", "eyJhbGciOiJub25lIn0.e30.", good[:len(good)-4]} {
		f.Add(seedTok)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		claims, err := s.verifyToken(tok)
		if err == nil {
			if tok != good || claims.Subject != "IBMid-demo-admin" {
				t.Fatalf("accepted a token this server did not sign: %q", tok)
			}
			return
		}
		if domain.ErrorCode(err) != domain.EUNAUTHORIZED {
			t.Fatalf("%q: %v, want unauthorized", tok, err)
		}
	})
}
