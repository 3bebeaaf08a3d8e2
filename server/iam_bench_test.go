package server

import (
	"context"
	"testing"
	"time"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/internal/engine"
	"github.com/qrapi/qrapi/seed"
)

// BenchmarkAuth is the token check: a full JWT verification, and the same token again,
// its signature checked once, with the principal and policies read from the store.
func BenchmarkAuth(b *testing.B) {
	ctx := context.Background()
	st, err := engine.Open(ctx, b.TempDir()+"/bench.db")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.Load(ctx, seed.Demo()); err != nil {
		b.Fatal(err)
	}
	s, err := New(ctx, Config{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	p, _, _ := st.Identity(ctx, "IBMid-demo-admin")
	tok, _, err := s.issueToken(p, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.verifyToken(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.authenticateCaller(ctx, nil, "Bearer "+tok, domain.RequestQuery{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("authorize", func(b *testing.B) {
		_, policies, _ := st.Identity(ctx, p.ID)
		res := domain.Resource{AccountID: "8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b", InstanceCRN: "crn:x"}
		b.ReportAllocs()
		for b.Loop() {
			if !domain.Allowed(policies, domain.ActionInstanceRead, res) {
				b.Fatal("denied")
			}
		}
	})
}
