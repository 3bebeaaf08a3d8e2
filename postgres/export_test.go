package postgres

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
)

// MigrateUpTo brings the database dsn names to schema version n, as an older qrserver
// left it.
func MigrateUpTo(ctx context.Context, dsn string, n int) error {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	return (&Store{pool: pool}).migrate(ctx, n)
}
