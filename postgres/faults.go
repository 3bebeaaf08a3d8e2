package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qrapi/qrapi/domain"
)

// lineFaults is the change line of a write of the fault rules: drop the cached rules.
const lineFaults = "!faults"

// AddFault keeps a fault rule after the others.
func (s *Store) AddFault(ctx context.Context, r *domain.FaultRule) error {
	b, err := domain.EncodeFaultRule(r)
	if err != nil {
		return err
	}
	return s.faultTx(ctx, func(tx pgx.Tx) (bool, error) {
		_, err := tx.Exec(ctx, `INSERT INTO fault_rules (id, rule) VALUES ($1, $2)`, r.ID, b)
		return true, err
	})
}

// DeleteFault removes one rule.
func (s *Store) DeleteFault(ctx context.Context, id string) error {
	return s.faultTx(ctx, func(tx pgx.Tx) (bool, error) {
		tag, err := tx.Exec(ctx, `DELETE FROM fault_rules WHERE id = $1`, id)
		if err == nil && tag.RowsAffected() == 0 {
			return false, domain.FaultNotFound(id)
		}
		return true, err
	})
}

// ClearFaults removes every rule.
func (s *Store) ClearFaults(ctx context.Context) error {
	return s.faultTx(ctx, func(tx pgx.Tx) (bool, error) {
		_, err := tx.Exec(ctx, `DELETE FROM fault_rules`)
		return true, err
	})
}

// faultTx runs a write of the rules in a transaction. If write says the live rules
// changed, the transaction notifies it and faultTx returns once no replica's cache holds
// the rules as they were; else it just commits.
func (s *Store) faultTx(ctx context.Context, write func(pgx.Tx) (changed bool, err error)) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer tx.Rollback(context.Background())
	changed, err := write(tx)
	if err != nil {
		if domain.ErrorCode(err) != domain.EINTERNAL {
			return err
		}
		return fmt.Errorf("postgres: write fault rules: %w", err)
	}
	if !changed {
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("postgres: commit fault rules: %w", err)
		}
		return nil
	}
	seq, acks, err := s.replica.notify(ctx, tx, []string{lineFaults})
	if err != nil {
		return fmt.Errorf("postgres: notify: %w", err)
	}
	if err := s.commitAndInvalidate(ctx, tx, s.replica.cache.dropFaults, seq, acks); err != nil {
		return fmt.Errorf("postgres: commit fault rules: %w", err)
	}
	return nil
}

// Faults lists every rule, oldest first, with its counts.
func (s *Store) Faults(ctx context.Context) ([]domain.FaultRule, error) {
	rows, err := s.pool.Query(ctx, `SELECT rule, seen, hits FROM fault_rules ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("postgres: read fault rules: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.FaultRule, error) {
		rule, err := domain.ScanFaultRule(r)
		if err != nil {
			return domain.FaultRule{}, err
		}
		return *rule, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: read fault rules: %w", err)
	}
	if out == nil {
		out = []domain.FaultRule{}
	}
	return out, nil
}

// LiveFaults lists the rules that may fire at now: from the cache while the lease holds
// (every write of the rules drops them on every replica before it returns), else read.
func (s *Store) LiveFaults(ctx context.Context, now time.Time) ([]domain.FaultRule, error) {
	c := s.replica.cache
	rules, gen, ok := c.faultRules()
	if ok {
		return domain.LiveFaultRules(rules, now), nil
	}
	all, err := s.Faults(ctx)
	if err != nil {
		return nil, err
	}
	c.fillFaults(gen, all)
	return domain.LiveFaultRules(all, now), nil
}

// TakeFault counts a matching request and decides whether the rule fires, holding the
// rule's row lock, so that replicas take turns and a count is exact. A rule it spends is
// dropped from every replica's cache before it returns.
func (s *Store) TakeFault(ctx context.Context, id string, now time.Time) (bool, error) {
	var fired bool
	err := s.faultTx(ctx, func(tx pgx.Tx) (bool, error) {
		r, err := domain.ScanFaultRule(tx.QueryRow(ctx, `SELECT rule, seen, hits FROM fault_rules WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		fired = r.Take(now, rand.Float64)
		_, err = tx.Exec(ctx, `UPDATE fault_rules SET seen = $1, hits = $2 WHERE id = $3`, r.Seen, r.Hits, id)
		return !r.Live(now), err
	})
	return fired && err == nil, err
}
