package postgres

import "context"

// Setting returns the value kept under name, keeping create's result first if there is
// none. Replicas starting at once may each create one; the first insert wins and every
// replica reads that one.
func (s *Store) Setting(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error) {
	var value []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM settings WHERE name = $1`, name).Scan(&value)
	if err == nil {
		return value, nil
	}
	if !noRows(err) {
		return nil, dbError("read setting "+name, err)
	}
	if value, err = create(); err != nil {
		return nil, err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
		return nil, dbError("keep setting "+name, err)
	}
	if err := s.pool.QueryRow(ctx, `SELECT value FROM settings WHERE name = $1`, name).Scan(&value); err != nil {
		return nil, dbError("read setting "+name, err)
	}
	return value, nil
}
