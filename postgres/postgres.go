// Package postgres implements domain.Store on PostgreSQL with pgx v5 (pgxpool), with its
// schema migrations embedded in the binary. Several qrserver replicas on one database
// behave as one: every read-modify-write is one transaction holding the row's lock, and a
// replica answers a read from its cache only under the protocol of cache.go, by which a
// write answers only once no replica's cache holds what it changed.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/internal/groupcommit"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Keys of the advisory locks that serialize what replicas must not do at once.
const (
	lockMigrate int64 = 0x71726170_0001 // "qrap" 1: applying migrations
	lockSeed    int64 = 0x71726170_0002 // loading a seed
	lockAudit   int64 = 0x71726170_0003 // appending audit events
)

// Store is a domain.Store on a PostgreSQL database.
type Store struct {
	pool    *pgxpool.Pool
	replica *replica
	writes  *groupcommit.Queue // instance writes, committed in groups (writer.go)
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
// only what the others have not. Logs go to log (nil: discarded).
func Open(ctx context.Context, dsn string) (*Store, error) {
	return OpenWithLogger(ctx, dsn, nil)
}

// OpenWithLogger is Open with a logger for the cache protocol's warnings.
func OpenWithLogger(ctx context.Context, dsn string, log *slog.Logger) (*Store, error) {
	return OpenWithOptions(ctx, dsn, Options{Log: log})
}

// Options are what Open leaves at their defaults.
type Options struct {
	// Log gets the cache protocol's warnings (nil: discarded).
	Log *slog.Logger
	// PeerAddr is the host:port at which this replica takes the other replicas' messages
	// of instance writes (direct.go). They connect to it as given, with the port chosen if
	// it is 0. "" is a loopback port of the system's choosing (replicas on one host);
	// NoPeerAddr is none (writes notify this replica through the database).
	PeerAddr string
}

// OpenWithOptions is Open with options.
func OpenWithOptions(ctx context.Context, dsn string, o Options) (*Store, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	secret, err := s.peerSecret(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	rctx, stop := context.WithCancel(context.Background())
	s.replica = &replica{
		id: newReplicaID(), dsn: dsn, pool: pool, log: log, stop: stop, done: make(chan struct{}),
		acks: map[uint64]chan string{}, ackOut: make(chan string, 4096),
		cache: &cache{instances: map[string]*versionedInstance{}, identities: map[string]*identity{}},
	}
	if s.replica.direct, err = listenDirect(s.replica, o.PeerAddr, secret); err != nil {
		stop()
		pool.Close()
		return nil, err
	}
	go s.replica.run(rctx)
	s.writes = groupcommit.Start(s.commitGroup)
	return s, nil
}

// Close leaves the replicas (leave: while other replicas are live, this takes leaseGrace),
// stops the cache protocol, and closes the pool.
func (s *Store) Close() error {
	s.writes.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.replica.leave(ctx)
	s.replica.stop()
	<-s.replica.done
	s.replica.direct.close()
	s.pool.Exec(ctx, `DELETE FROM replicas WHERE id = $1`, s.replica.id)
	s.pool.Close()
	return nil
}

// commitAndInvalidate commits tx, which notified a change (seq, acks), applies it to this
// replica's cache (local), and returns once every other replica's cache has too.
func (s *Store) commitAndInvalidate(ctx context.Context, tx pgx.Tx, local func(), seq uint64, acks chan string) error {
	wait, err := s.commitThenWait(ctx, tx, local, seq, acks)
	if err != nil {
		return err
	}
	return wait()
}

// commitThenWait commits tx and applies its change to this replica's cache (local); the
// function it returns waits until every other replica's cache has applied it too.
func (s *Store) commitThenWait(ctx context.Context, tx pgx.Tx, local func(), seq uint64, acks chan string) (func() error, error) {
	if err := s.commitLocal(ctx, tx, local); err != nil {
		s.replica.forget(seq)
		return nil, err
	}
	return func() error { return s.replica.awaitAcks(ctx, seq, acks) }, nil
}

// commitLocal commits tx and applies its change to this replica's cache (local). If the
// commit fails, its outcome is unknown, and the whole cache is dropped.
func (s *Store) commitLocal(ctx context.Context, tx pgx.Tx, local func()) error {
	if err := tx.Commit(ctx); err != nil {
		s.replica.cache.lose()
		return err
	}
	local()
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// migrate applies, in order, the embedded migrations not yet in schema_migrations, each
// in its own transaction, holding the migration lock for the whole run.
func (s *Store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
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

// utc returns t in UTC (pgx reads timestamptz in the local zone), nil stays nil.
func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// noRows reports whether err is a read that found nothing.
func noRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
