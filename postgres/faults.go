package postgres

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qrapi/qrapi/domain"
)

// AddFault keeps a fault rule after the others.
func (s *Store) AddFault(ctx context.Context, r *domain.FaultRule) error {
	b, err := domain.EncodeFaultRule(r)
	if err != nil {
		return err
	}
	// A rule scoped to a fixture is kept only while the fixture is.
	tag, err := s.pool.Exec(ctx, `INSERT INTO fault_rules (id, rule, fixture_id) SELECT $1, $2, $3::text
		WHERE $3::text IS NULL OR EXISTS (SELECT 1 FROM fixtures WHERE id = $3::text)`, r.ID, b, nullIfEmpty(r.Fixture))
	if err != nil {
		return dbError("keep fault rule", err)
	}
	if tag.RowsAffected() == 0 {
		return domain.FixtureNotFound(r.Fixture).WithTarget("field", "fixture")
	}
	return nil
}

// DeleteFault removes one rule.
func (s *Store) DeleteFault(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM fault_rules WHERE id = $1`, id)
	if err != nil {
		return dbError("delete fault rule", err)
	}
	if tag.RowsAffected() == 0 {
		return domain.FaultNotFound(id)
	}
	return nil
}

// ClearFaults removes every rule.
func (s *Store) ClearFaults(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM fault_rules`)
	return dbError("delete fault rules", err)
}

// queueFaults queues the read of every rule, oldest first, with its counts.
func queueFaults(b *pgx.Batch, out *[]domain.FaultRule) {
	b.Queue(`SELECT rule, seen, hits FROM fault_rules ORDER BY seq`).Query(func(rows pgx.Rows) error {
		var err error
		*out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.FaultRule, error) {
			rule, err := domain.ScanFaultRule(r)
			if err != nil {
				return domain.FaultRule{}, err
			}
			return *rule, nil
		})
		return err
	})
}

// Faults lists every rule, oldest first, with its counts.
func (s *Store) Faults(ctx context.Context) ([]domain.FaultRule, error) {
	var out []domain.FaultRule
	if err := s.read(ctx, "read fault rules", func(b *pgx.Batch) { queueFaults(b, &out) }); err != nil {
		return nil, err
	}
	return out, nil
}

// LiveFaults lists the rules that may fire at now, as committed now.
func (s *Store) LiveFaults(ctx context.Context, now time.Time) ([]domain.FaultRule, error) {
	all, err := s.Faults(ctx)
	return domain.LiveFaultRules(all, now), err
}

// TakeFault counts a matching request and decides whether the rule fires, holding the
// rule's row lock, so that replicas take turns and a count is exact.
func (s *Store) TakeFault(ctx context.Context, id string, now time.Time) (bool, error) {
	var fired bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		r, err := domain.ScanFaultRule(tx.QueryRow(ctx, `SELECT rule, seen, hits FROM fault_rules WHERE id = $1 FOR UPDATE`, id))
		if noRows(err) {
			return nil // deleted meanwhile: it does not fire
		}
		if err != nil {
			return err
		}
		fired = r.Take(now, rand.Float64)
		_, err = tx.Exec(ctx, `UPDATE fault_rules SET seen = $1, hits = $2 WHERE id = $3`, r.Seen, r.Hits, id)
		return err
	})
	if err != nil {
		return false, dbError("count a fault rule's request", err)
	}
	return fired, nil
}
