package postgres

import (
	"context"
	"crypto/rand"
	"fmt"
)

// SigningKey returns the token signing key. Replicas starting at once may each make one;
// the first insert wins and every replica reads that one.
func (s *Store) SigningKey(ctx context.Context) ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO settings (name, value) VALUES ('token_signing_key', $1) ON CONFLICT (name) DO NOTHING`, key); err != nil {
		return nil, fmt.Errorf("postgres: keep signing key: %w", err)
	}
	if err := s.pool.QueryRow(ctx, `SELECT value FROM settings WHERE name = 'token_signing_key'`).Scan(&key); err != nil {
		return nil, fmt.Errorf("postgres: read signing key: %w", err)
	}
	return key, nil
}
