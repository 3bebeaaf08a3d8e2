// Package sqlite implements domain.Store on an embedded SQLite database
// (modernc.org/sqlite, pure Go), with its schema migrations embedded in the binary.
//
// One process owns a database file: Open takes an exclusive lock beside it, so a second
// process fails at once rather than serving state that drifts from the first's caches.
// Several replicas share a PostgreSQL database instead (package postgres).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/internal/groupcommit"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a domain.Store on one SQLite database. Writes go through one connection, so
// read-modify-write transactions never interleave and no update is lost.
//
// Its caches are current by construction: this Store is the only writer of its database
// (the file lock), and it updates or drops an entry before the write that changed it
// returns.
type Store struct {
	write *sql.DB
	read  *sql.DB
	lock  *os.File // holds the exclusive lock on the database; nil for :memory:
	stmts sync.Map // query -> *sql.Stmt on read: parsing SQL was a third of a read's cost

	// instances caches committed instances by CRN, identities principals with their
	// policies. cacheGen counts writes, so that a read that raced one does not put back
	// what it read before it.
	cacheMu    sync.RWMutex
	instances  map[string]*domain.Instance
	identities map[string]*identity
	cacheGen   uint64
	faults     []domain.FaultRule // the kept fault rules, if faultsOK
	faultsOK   bool
	faultsGen  uint64 // counts drops of the fault rules (cacheGen counts every write)

	// writeMu makes a write and its cache update one step: without it, two writes could
	// commit in one order and update the cache in the other.
	writeMu sync.Mutex

	writes *groupcommit.Queue // instance writes, committed in groups (writer.go)
}

var _ domain.Store = (*Store)(nil)

// Memory is the path that opens a throwaway in-memory database.
const Memory = ":memory:"

// ErrLocked is returned by Open when another process has the database file open.
var ErrLocked = errors.New("sqlite: the database is in use by another process (one process owns a SQLite database; run several replicas on PostgreSQL)")

// Open opens (creating if needed) the database at path and brings its schema up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	s := &Store{instances: map[string]*domain.Instance{}, identities: map[string]*identity{}}
	if path == Memory {
		// One connection: each new connection to :memory: would be a new, empty database.
		db, err := sql.Open("sqlite", "file::memory:?_pragma=foreign_keys(1)&_txlock=immediate")
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(1)
		s.write, s.read = db, db
	} else {
		lock, err := lockFile(path + ".lock")
		if err != nil {
			return nil, err
		}
		s.lock = lock
		dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)"
		w, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
		if err != nil {
			lock.Close()
			return nil, err
		}
		w.SetMaxOpenConns(1)
		r, err := sql.Open("sqlite", dsn)
		if err != nil {
			w.Close()
			lock.Close()
			return nil, err
		}
		r.SetMaxOpenConns(4)
		s.write, s.read = w, r
	}
	s.writes = groupcommit.Start(s.commitGroup)
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// lockFile takes an exclusive, non-blocking lock on path; the kernel drops it when the
// process ends, however it ends.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, fmt.Errorf("sqlite: lock %s: %w", path, err)
	}
	return f, nil
}

// readStmt returns the read connection's prepared statement for query, made once.
func (s *Store) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.read.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("sqlite: prepare: %w", err)
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// queryRow runs a one-row read through its prepared statement.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) (*sql.Row, error) {
	st, err := s.readStmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryRowContext(ctx, args...), nil
}

// query runs a read through its prepared statement.
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.readStmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// Close stops the writer, closes the database and releases its lock.
func (s *Store) Close() error {
	if s.writes != nil {
		s.writes.Close()
	}
	s.stmts.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	err := s.write.Close()
	if s.read != s.write {
		err = errors.Join(err, s.read.Close())
	}
	if s.lock != nil {
		err = errors.Join(err, s.lock.Close())
	}
	return err
}

// Ping checks that both connections answer.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.read.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return s.write.PingContext(ctx)
}

// migrate applies, in order, the embedded migrations newer than the database's
// user_version, each in its own transaction.
func (s *Store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	var version int
	if err := s.write.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("sqlite: read schema version: %w", err)
	}
	for i, name := range names {
		if i < version {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		tx, err := s.write.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlite: migration %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// forgetAll drops every cached entry, after a write whose effect on them is not known
// entry by entry (a Load, a commit that failed).
func (s *Store) forgetAll() {
	s.cacheMu.Lock()
	s.cacheGen++
	clear(s.instances)
	clear(s.identities)
	s.faults, s.faultsOK = nil, false
	s.faultsGen++
	s.cacheMu.Unlock()
}

func nullInt(v sql.NullInt64) *int64 {
	if !v.Valid {
		return nil
	}
	return &v.Int64
}

func nullTime(v sql.NullString) (*time.Time, error) {
	if !v.Valid {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v.String)
	if err != nil {
		return nil, fmt.Errorf("sqlite: time %q: %w", v.String, err)
	}
	return &t, nil
}

func timeOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Backend lists are kept one name a line: names match ^.*$, so they hold no newline, and
// splitting a line is much cheaper than decoding JSON on every instance read.
func joinList(names []string) string { return strings.Join(names, "\n") }

func splitList(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, "\n")
}
