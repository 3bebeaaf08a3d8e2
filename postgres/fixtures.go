package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qrapi/qrapi/domain"
)

// AddFixture adds a fixture's state and keeps it, in one transaction under the fixtures'
// advisory lock: replicas take turns, so the limit and the check that its names are free
// hold across them.
func (s *Store) AddFixture(ctx context.Context, f *domain.Fixture, now time.Time) error {
	st, err := f.State(now)
	if err != nil {
		return err
	}
	seed, hashes, err := f.Encode()
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockFixtures); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM fixtures`).Scan(&n); err != nil {
			return err
		}
		if n >= domain.MaxFixtures {
			return domain.TooManyFixtures()
		}
		if err := takenNames(ctx, tx, f.Names()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO fixtures (id, created_at, seed, key_hashes) VALUES ($1, $2, $3, $4)`, f.ID, f.CreatedAt, seed, hashes); err != nil {
			return err
		}
		return insertState(ctx, tx, st)
	})
	if domain.ErrorCode(err) != domain.EINTERNAL {
		return err // nil, or the fixture's fault
	}
	return dbError("add fixture", err)
}

// takenNames is FirstTaken of the names that the database holds already.
func takenNames(ctx context.Context, tx pgx.Tx, names []domain.FixtureName) error {
	byKind := map[string][]string{}
	for _, n := range names {
		byKind[n.Kind] = append(byKind[n.Kind], n.Value)
	}
	rows, err := tx.Query(ctx, `SELECT $5::text, id FROM accounts WHERE id = ANY($1)
		UNION ALL SELECT $6::text, crn FROM instances WHERE crn = ANY($2)
		UNION ALL SELECT $7::text, id FROM principals WHERE id = ANY($3)
		UNION ALL SELECT $8::text, hash FROM api_keys WHERE hash = ANY($4)`,
		byKind[domain.NameAccount], byKind[domain.NameInstance], byKind[domain.NamePrincipal], byKind[domain.NameAPIKey],
		domain.NameAccount, domain.NameInstance, domain.NamePrincipal, domain.NameAPIKey)
	if err != nil {
		return err
	}
	taken := map[string]map[string]bool{}
	for rows.Next() {
		var kind, value string
		if err := rows.Scan(&kind, &value); err != nil {
			return err
		}
		if taken[kind] == nil {
			taken[kind] = map[string]bool{}
		}
		taken[kind][value] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return domain.FirstTaken(names, taken)
}

// scanFixture reads id, created_at, seed, key_hashes.
func scanFixture(row pgx.Row) (*domain.Fixture, error) {
	var (
		f            domain.Fixture
		seed, hashes []byte
	)
	if err := row.Scan(&f.ID, &f.CreatedAt, &seed, &hashes); err != nil {
		return nil, err
	}
	f.CreatedAt = f.CreatedAt.UTC()
	return &f, f.Decode(seed, hashes)
}

const fixtureColumns = `id, created_at, seed, key_hashes`

// Fixtures lists the kept fixtures, oldest first.
func (s *Store) Fixtures(ctx context.Context) ([]domain.Fixture, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+fixtureColumns+` FROM fixtures ORDER BY created_at, id`)
	if err != nil {
		return nil, dbError("list fixtures", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Fixture, error) {
		f, err := scanFixture(r)
		if err != nil {
			return domain.Fixture{}, err
		}
		return *f, nil
	})
	return out, dbError("list fixtures", err)
}

// Fixture reads one fixture.
func (s *Store) Fixture(ctx context.Context, id string) (*domain.Fixture, error) {
	f, err := scanFixture(s.pool.QueryRow(ctx, `SELECT `+fixtureColumns+` FROM fixtures WHERE id = $1`, id))
	if noRows(err) {
		return nil, domain.FixtureNotFound(id)
	}
	return f, dbError("read fixture", err)
}

// DeleteFixture deletes a fixture; its rows go with it (ON DELETE CASCADE).
func (s *Store) DeleteFixture(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM fixtures WHERE id = $1`, id)
	if err != nil {
		return dbError("delete fixture", err)
	}
	if tag.RowsAffected() == 0 {
		return domain.FixtureNotFound(id)
	}
	return nil
}

// ResetFixture deletes what the fixture made and adds its state at now again, in one
// transaction holding the fixture's row.
func (s *Store) ResetFixture(ctx context.Context, id string, now time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		f, err := scanFixture(tx.QueryRow(ctx, `SELECT `+fixtureColumns+` FROM fixtures WHERE id = $1 FOR UPDATE`, id))
		if noRows(err) {
			return domain.FixtureNotFound(id)
		}
		if err != nil {
			return err
		}
		st, err := f.State(now)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM accounts WHERE fixture_id = $1`, id); err != nil {
			return err
		}
		return insertState(ctx, tx, st)
	})
	if domain.ErrorCode(err) != domain.EINTERNAL {
		return err
	}
	return dbError("reset fixture", err)
}
