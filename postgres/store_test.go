package postgres_test

import (
	"context"
	"testing"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/internal/storetest"
	"github.com/qrapi/qrapi/postgres"
	"github.com/qrapi/qrapi/postgres/pgtest"
)

// The conformance suite on PostgreSQL, each test on a database of its own.
func TestConformance(t *testing.T) {
	pgtest.ServerDSN(t)
	storetest.Run(t, storetest.Engine{
		Shared:  true,
		Durable: true,
		NewDatabase: func(t *testing.T) func(*testing.T) domain.Store {
			dsn := pgtest.NewDatabase(t)
			return func(t *testing.T) domain.Store {
				s, err := postgres.Open(context.Background(), dsn)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
		},
	})
}

// Replicas starting at once on an empty database take turns at the migrations: all of
// them open, and the schema is applied once.
func TestConcurrentMigrations(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	errs := make(chan error, 4)
	stores := make(chan *postgres.Store, 4)
	for range 4 {
		go func() {
			s, err := postgres.Open(ctx, dsn)
			errs <- err
			stores <- s
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("a replica failed to open: %v", err)
		}
		s := <-stores
		defer s.Close()
	}
}

func TestIsDSN(t *testing.T) {
	for db, want := range map[string]bool{
		"postgres://u@127.0.0.1/db": true, "postgresql://u@h/db": true,
		":memory:": false, "./data/qrserver.db": false, "postgres.db": false,
	} {
		if postgres.IsDSN(db) != want {
			t.Errorf("IsDSN(%q) = %v", db, !want)
		}
	}
}
