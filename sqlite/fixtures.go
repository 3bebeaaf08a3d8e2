package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/qrapi/qrapi/domain"
)

// writeTx runs write in one write transaction. forget drops from the caches what the
// write may have changed: after the commit if write says it changed something, and after a
// commit that failed, whose outcome is unknown.
func (s *Store) writeTx(ctx context.Context, what string, forget func(), write func(*sql.Tx) (changed bool, err error)) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	changed, err := write(tx)
	if err != nil {
		if domain.ErrorCode(err) != domain.EINTERNAL {
			return err
		}
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		forget()
		return fmt.Errorf("sqlite: %s: commit: %w", what, err)
	}
	if changed {
		forget()
	}
	return nil
}

// fixtureTx is a write of fixtures, which changes instances, identities and fault rules
// at once: every cache is dropped after it.
func (s *Store) fixtureTx(ctx context.Context, what string, write func(*sql.Tx) error) error {
	return s.writeTx(ctx, what, s.forgetAll, func(tx *sql.Tx) (bool, error) { return true, write(tx) })
}

// AddFixture adds a fixture's state and keeps it, in one write transaction (the one
// writer makes the limit and the check that its names are free exact).
func (s *Store) AddFixture(ctx context.Context, f *domain.Fixture, now time.Time) error {
	st, err := f.State(now)
	if err != nil {
		return err
	}
	seed, hashes, err := f.Encode()
	if err != nil {
		return err
	}
	return s.fixtureTx(ctx, "add fixture", func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM fixtures`).Scan(&n); err != nil {
			return err
		}
		if n >= domain.MaxFixtures {
			return domain.TooManyFixtures()
		}
		if err := takenNames(ctx, tx, f.Names()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO fixtures (id, created_at, seed, key_hashes) VALUES (?, ?, ?, ?)`,
			f.ID, timeOrNil(&f.CreatedAt), seed, hashes); err != nil {
			return err
		}
		return insertState(ctx, tx, st)
	})
}

// takenQueries find, by kind of name, whether one is taken.
var takenQueries = map[string]string{
	domain.NameAccount:   `SELECT 1 FROM accounts WHERE id = ?`,
	domain.NameInstance:  `SELECT 1 FROM instances WHERE crn = ?`,
	domain.NamePrincipal: `SELECT 1 FROM principals WHERE id = ?`,
	domain.NameAPIKey:    `SELECT 1 FROM api_keys WHERE hash = ?`,
}

// takenNames is the 409 for the first of names, in the document's order, that the
// database holds already (FixtureName.Taken), or nil.
func takenNames(ctx context.Context, tx *sql.Tx, names []domain.FixtureName) error {
	for _, n := range names {
		var one int
		err := tx.QueryRowContext(ctx, takenQueries[n.Kind], n.Value).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return err
		}
		return n.Taken()
	}
	return nil
}

const fixtureColumns = `id, created_at, seed, key_hashes`

func scanFixture(row scanner) (*domain.Fixture, error) {
	var (
		f            domain.Fixture
		created      string
		seed, hashes []byte
	)
	if err := row.Scan(&f.ID, &created, &seed, &hashes); err != nil {
		return nil, err
	}
	t, err := time.Parse(time.RFC3339Nano, created)
	if err != nil {
		return nil, err
	}
	f.CreatedAt = t
	return &f, f.Decode(seed, hashes)
}

// Fixtures lists the kept fixtures, oldest first.
func (s *Store) Fixtures(ctx context.Context) ([]domain.Fixture, error) {
	rows, err := s.query(ctx, `SELECT `+fixtureColumns+` FROM fixtures ORDER BY rowid`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list fixtures: %w", err)
	}
	defer rows.Close()
	out := []domain.Fixture{}
	for rows.Next() {
		f, err := scanFixture(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: read fixture: %w", err)
		}
		out = append(out, *f)
	}
	return out, rows.Err()
}

// Fixture reads one fixture.
func (s *Store) Fixture(ctx context.Context, id string) (*domain.Fixture, error) {
	row, err := s.queryRow(ctx, `SELECT `+fixtureColumns+` FROM fixtures WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	f, err := scanFixture(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.FixtureNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: read fixture: %w", err)
	}
	return f, nil
}

// DeleteFixture deletes a fixture; its rows go with it (ON DELETE CASCADE).
func (s *Store) DeleteFixture(ctx context.Context, id string) error {
	return s.fixtureTx(ctx, "delete fixture", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM fixtures WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return domain.FixtureNotFound(id)
		}
		return nil
	})
}

// ResetFixture deletes what the fixture made and adds its state at now again.
func (s *Store) ResetFixture(ctx context.Context, id string, now time.Time) error {
	return s.fixtureTx(ctx, "reset fixture", func(tx *sql.Tx) error {
		f, err := scanFixture(tx.QueryRowContext(ctx, `SELECT `+fixtureColumns+` FROM fixtures WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return domain.FixtureNotFound(id)
		}
		if err != nil {
			return err
		}
		st, err := f.State(now)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM accounts WHERE fixture_id = ?`, id); err != nil {
			return err
		}
		return insertState(ctx, tx, st)
	})
}
