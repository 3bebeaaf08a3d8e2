// Package enginetest gives the server's tests a fresh store of the engine this test run
// is about: QRAPI_TEST_ENGINE=postgres (with QRAPI_TEST_POSTGRES naming a server) or
// sqlite, the default. `make test` runs the server's and qrserver's tests once per engine.
package enginetest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/internal/engine"
	"github.com/qrapi/qrapi/postgres/pgtest"
)

// EnvEngine names the engine of a test run.
const EnvEngine = "QRAPI_TEST_ENGINE"

// Postgres reports whether this run is on PostgreSQL.
func Postgres() bool { return os.Getenv(EnvEngine) == "postgres" }

// DB returns a --db value naming a new, empty database of this run's engine, for a test
// that starts qrserver processes: a file in the test's directory, or a PostgreSQL database
// dropped when the test ends.
func DB(t testing.TB) string {
	t.Helper()
	if Postgres() {
		return pgtest.NewDatabase(t)
	}
	return filepath.Join(t.TempDir(), "qrserver.db")
}

// MemoryOr returns a --db value for a throwaway database: :memory: on SQLite, a new
// database on PostgreSQL.
func MemoryOr(t testing.TB) string {
	t.Helper()
	if Postgres() {
		return pgtest.NewDatabase(t)
	}
	return ":memory:"
}

// Open opens a new, empty store of this run's engine, closed when the test ends.
func Open(t testing.TB) domain.Store {
	t.Helper()
	s, err := engine.Open(context.Background(), MemoryOr(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
