// Package postgres implements domain.Store on PostgreSQL with pgx v5 (pgxpool), with its
// schema migrations embedded in the binary. Several qrserver replicas on one database
// behave as one because PostgreSQL is the only state: every request reads it, every
// read-modify-write is one transaction holding the row's lock, and advisory locks order
// what replicas must not do at once. No replica keeps a copy of what another can change.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/internal/groupcommit"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Keys of the advisory locks that serialize what replicas must not do at once.
const (
	lockMigrate  int64 = 0x71726170_0001 // "qrap" 1: applying migrations
	lockSeed     int64 = 0x71726170_0002 // loading a seed
	lockAudit    int64 = 0x71726170_0003 // appending audit events
	lockFixtures int64 = 0x71726170_0004 // adding a fixture
)

// Store is a domain.Store on a PostgreSQL database.
type Store struct {
	pool       *pgxpool.Pool
	writes     *groupcommit.Queue // instance writes, committed in groups (writer.go)
	roundTrips *roundTrips
}

var _ domain.Store = (*Store)(nil)

// IsDSN reports whether db names a PostgreSQL database (a postgres:// or postgresql://
// URL) rather than a SQLite path.
func IsDSN(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// defaultMaxConns is the pool size unless the DSN sets pool_max_conns: pgxpool's own
// default (4 on this 2-core machine) queued requests under 32 concurrent connections.
const defaultMaxConns = 16

// Open connects to the database named by dsn and brings its schema up to date. Replicas
// starting at once take turns at the migrations (an advisory lock), and each applies
// only what the others have not.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	s := &Store{roundTrips: &roundTrips{}}
	cfg.ConnConfig.Tracer = s.roundTrips
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := s.migrate(ctx, len(migrationNames())); err != nil {
		s.pool.Close()
		return nil, err
	}
	s.writes = groupcommit.Start(s.commitGroup)
	return s, nil
}

// Close answers the queued writes and closes the pool.
func (s *Store) Close() error {
	s.writes.Close()
	s.pool.Close()
	return nil
}

// RoundTrips counts the statements and batches this store has sent to PostgreSQL, each
// one round trip once its statements are prepared: the server reports it as a metric.
func (s *Store) RoundTrips() uint64 { return s.roundTrips.n.Load() }

// roundTrips is the pgx tracer that counts them.
type roundTrips struct{ n atomic.Uint64 }

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// migrate applies, in order, the first upTo embedded migrations not yet in
// schema_migrations, each
// in its own transaction, holding the migration lock for the whole run.
func (s *Store) migrate(ctx context.Context, upTo int) error {
	names := migrationNames()[:upTo]
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return dbError("connect", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockMigrate); err != nil {
		return fmt.Errorf("postgres: migration lock: %w", err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, lockMigrate)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("postgres: schema_migrations: %w", err)
	}
	var version int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return fmt.Errorf("postgres: read schema version: %w", err)
	}
	for i, name := range names {
		if i < version {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, i+1)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: migration %s: %w", name, err)
		}
	}
	return nil
}

// migrationNames are the embedded migrations, in order.
func migrationNames() []string {
	names, _ := fs.Glob(migrations, "migrations/*.sql") // a constant pattern: no error
	sort.Strings(names)
	return names
}

// utc returns t in UTC (pgx reads timestamptz in the local zone), nil stays nil.
func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// dbError is a failed database call's error, saying what failed; it wraps
// domain.ErrUnavailable too when the database could not be reached or is going away, so
// that the caller meets a 503. nil stays nil.
func dbError(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case unavailable(err):
		return fmt.Errorf("postgres: %s: %w: %w", what, domain.ErrUnavailable, err)
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// unavailable reports whether err is the database being out of reach rather than a
// statement failing: no connection could be made, a connection broke, or the server is
// shutting down, restarting or refusing connections for now.
func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P01–57P05: shut down by an operator, crashed,
		// not accepting connections yet, or an idle session ended.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P")
	}
	var (
		connect *pgconn.ConnectError
		netErr  net.Error
	)
	return errors.As(err, &connect) || errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, pgconn.ErrConnClosed) || pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}

// noRows reports whether err is a read that found nothing.
func noRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
