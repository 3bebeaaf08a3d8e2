// Package engine opens the store that a --db value names, by its form: a postgres:// or
// postgresql:// URL is PostgreSQL, anything else (a path, or :memory:) is SQLite. It is
// the one place outside cmd/ and the engine folders that names engines: a third engine is
// its folder, a case here, and a line that runs internal/storetest on it.
package engine

import (
	"context"
	"os"
	"path/filepath"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/postgres"
	"github.com/qrapi/qrapi/sqlite"
)

// Name is the engine db names: "postgres" or "sqlite". Logs say this, never the DSN,
// which may hold a password.
func Name(db string) string {
	if postgres.IsDSN(db) {
		return "postgres"
	}
	return "sqlite"
}

// Open opens the store db names, creating a SQLite file's directory if needed.
func Open(ctx context.Context, db string) (domain.Store, error) {
	if postgres.IsDSN(db) {
		return postgres.Open(ctx, db)
	}
	if db != sqlite.Memory {
		if err := os.MkdirAll(filepath.Dir(db), 0o755); err != nil {
			return nil, err
		}
	}
	return sqlite.Open(ctx, db)
}
