package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Setting returns the value kept under name, keeping create's result first if there is
// none.
func (s *Store) Setting(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error) {
	var value []byte
	err := s.write.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&value)
	if err == nil {
		return value, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: read setting %s: %w", name, err)
	}
	if value, err = create(); err != nil {
		return nil, err
	}
	if _, err := s.write.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT(name) DO NOTHING`, name, value); err != nil {
		return nil, fmt.Errorf("sqlite: keep setting %s: %w", name, err)
	}
	if err := s.write.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&value); err != nil {
		return nil, fmt.Errorf("sqlite: read setting %s: %w", name, err)
	}
	return value, nil
}
