package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/internal/storetest"
	"github.com/qrapi/qrapi/postgres"
	"github.com/qrapi/qrapi/postgres/pgtest"
	"github.com/qrapi/qrapi/seed"
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

// A database that the replicas' cache protocol used (migrations up to 0009 of that code)
// loses its state on the next open: the replicas table, the instances' versions, their
// sequence and the port's secret.
func TestMigrationDropsTheCacheProtocolsState(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	if err := postgres.MigrateUpTo(ctx, dsn, 9); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// The protocol's state, as its migrations (emptied since) left it at schema version 9.
	if _, err := conn.Exec(ctx, `CREATE TABLE replicas (id text PRIMARY KEY, seen timestamptz NOT NULL, fenced boolean NOT NULL DEFAULT false, fenced_at timestamptz, peer_addr text);
		CREATE SEQUENCE instance_version;
		ALTER TABLE instances ADD COLUMN version bigint NOT NULL DEFAULT nextval('instance_version');
		INSERT INTO settings (name, value) VALUES ('peer_secret', 'x')`); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var left []string
	if err := conn.QueryRow(ctx, `SELECT array(
		SELECT relname::text FROM pg_class WHERE relname IN ('replicas', 'instance_version')
		UNION ALL SELECT 'instances.' || column_name::text FROM information_schema.columns WHERE table_name = 'instances' AND column_name = 'version'
		UNION ALL SELECT 'settings.' || name FROM settings WHERE name = 'peer_secret')`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Fatalf("left after the migration: %v", left)
	}
}

// What a call reads with its caller (its principal and policies, the instance or account
// it names, and the fault rules) is one round trip, once the pool's connection has
// prepared the statements; so is a read of one thing.
func TestReadRequestIsOneRoundTrip(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	s, err := postgres.Open(ctx, dsn+"?pool_max_conns=1") // one connection: its statements stay prepared
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Load(ctx, seed.Demo()); err != nil {
		t.Fatal(err)
	}
	const (
		acct = "8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b"
		crn  = "crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f::"
	)
	if err := s.AddFault(ctx, &domain.FaultRule{ID: "r1", Status: 503}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []domain.RequestQuery{
		{PrincipalID: "IBMid-demo-admin", InstanceCRN: crn},
		{APIKey: "qrdemo-reader-key-0123456789abcdefghijklmno", AccountID: acct},
		{PrincipalID: "IBMid-nobody", InstanceCRN: crn + "x"},
	} {
		q.Now = time.Now()
		for i := range 3 {
			before := s.RoundTrips()
			st, err := s.ReadRequest(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if n := s.RoundTrips() - before; i > 0 && n != 1 {
				t.Errorf("ReadRequest(%+v) took %d round trips, want 1", q, n)
			}
			if q.PrincipalID == "IBMid-nobody" {
				if st.Principal != nil || st.Instance != nil {
					t.Fatalf("read a principal or an instance that does not exist: %+v", st)
				}
				continue
			}
			if st.Principal == nil || len(st.Policies) == 0 || len(st.Faults) != 1 || (q.InstanceCRN != "") != (st.Instance != nil) ||
				(q.AccountID != "") != (st.Account != nil && len(st.AccountInstances) > 0) {
				t.Fatalf("ReadRequest(%+v) = %+v", q, st)
			}
		}
	}
}

// protocolWords are the words of a protocol between replicas.
var protocolWords = regexp.MustCompile(`(?i)\b(listen|notify|pg_notify|leases?|fenc\w*|peers?)\b`)

// The engine keeps no protocol of its own between replicas: its production code names no
// LISTEN, NOTIFY or lease, and stays within the 1,100 lines that reading PostgreSQL on
// every request takes (the protocol alone was about 1,500).
func TestNoProtocolOfItsOwn(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines += bytes.Count(b, []byte("\n"))
		if w := protocolWords.Find(b); w != nil {
			t.Errorf("%s names %q", f, w)
		}
	}
	if lines > 1100 {
		t.Errorf("postgres/ holds %d lines of production code, more than 1,100", lines)
	}
}
