package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

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

// Audit batches are kept lz4-compressed where the server has lz4 (Debian's has): pglz cost
// a seventh of PostgreSQL's CPU under load. A server without lz4 still migrates.
func TestAuditBatchesUseLZ4(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Events like the server's, compressible, over the 2 KiB at which PostgreSQL compresses.
	var events [][]byte
	for i := range 40 {
		events = append(events, fmt.Appendf(nil, `{"eventTime":"2026-11-24T21:00:%02d.000+0000","action":"quantum-computing.instance.read","outcome":"success","reason":{"reasonCode":200}}`, i))
	}
	if err := s.AppendAudit(ctx, "lz4-batch", events); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var configure, method string
	if err := conn.QueryRow(ctx, `SELECT setting FROM pg_config WHERE name = 'CONFIGURE'`).Scan(&configure); err != nil {
		t.Fatalf("reading the server's build options (the tests run as a superuser): %v", err)
	}
	if err := conn.QueryRow(ctx, `SELECT coalesce(pg_column_compression(events), 'none') FROM audit_batches`).Scan(&method); err != nil {
		t.Fatal(err)
	}
	want := "lz4"
	if !strings.Contains(configure, "--with-lz4") {
		want = "pglz"
	}
	if method != want {
		t.Fatalf("an audit batch is stored with compression %q, want %q", method, want)
	}
}
