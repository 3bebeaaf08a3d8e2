package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
)

// SigningKey returns the token signing key, making and keeping one on first use.
func (s *Store) SigningKey(ctx context.Context) ([]byte, error) {
	var key []byte
	err := s.write.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = 'token_signing_key'`).Scan(&key)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: read signing key: %w", err)
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if _, err := s.write.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ('token_signing_key', ?) ON CONFLICT(name) DO NOTHING`, key); err != nil {
		return nil, fmt.Errorf("sqlite: keep signing key: %w", err)
	}
	return s.SigningKey(ctx)
}
