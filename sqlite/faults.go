package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/qrapi/qrapi/domain"
)

// AddFault keeps a fault rule after the others.
func (s *Store) AddFault(ctx context.Context, r *domain.FaultRule) error {
	b, err := domain.EncodeFaultRule(r)
	if err != nil {
		return err
	}
	return s.faultTx(ctx, func(tx *sql.Tx) (bool, error) {
		// A rule scoped to a fixture is kept only while the fixture is.
		res, err := tx.ExecContext(ctx, `INSERT INTO fault_rules (id, rule, fixture_id) SELECT ?1, ?2, ?3
			WHERE ?3 IS NULL OR EXISTS (SELECT 1 FROM fixtures WHERE id = ?3)`, r.ID, b, nullIfEmpty(r.Fixture))
		if err != nil {
			return false, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return false, domain.FixtureNotFound(r.Fixture).WithTarget("field", "fixture")
		}
		return true, nil
	})
}

// DeleteFault removes one rule.
func (s *Store) DeleteFault(ctx context.Context, id string) error {
	return s.faultTx(ctx, func(tx *sql.Tx) (bool, error) {
		res, err := tx.ExecContext(ctx, `DELETE FROM fault_rules WHERE id = ?`, id)
		if err != nil {
			return false, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return false, domain.FaultNotFound(id)
		}
		return true, nil
	})
}

// ClearFaults removes every rule.
func (s *Store) ClearFaults(ctx context.Context) error {
	return s.faultTx(ctx, func(tx *sql.Tx) (bool, error) {
		_, err := tx.ExecContext(ctx, `DELETE FROM fault_rules`)
		return true, err
	})
}

// faultTx runs a write of the rules (writeTx), dropping the cached live rules.
func (s *Store) faultTx(ctx context.Context, write func(*sql.Tx) (changed bool, err error)) error {
	return s.writeTx(ctx, "write fault rules", s.forgetFaults, write)
}

// Faults lists every rule, oldest first, with its counts.
func (s *Store) Faults(ctx context.Context) ([]domain.FaultRule, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT rule, seen, hits FROM fault_rules ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read fault rules: %w", err)
	}
	defer rows.Close()
	out := []domain.FaultRule{}
	for rows.Next() {
		r, err := domain.ScanFaultRule(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: read fault rules: %w", err)
		}
		out = append(out, *r)
	}
	return out, rows.Err()
}

// LiveFaults lists the rules that may fire at now, from memory once read: every write of
// the rules goes through this Store (one process owns the file) and drops the copy.
func (s *Store) LiveFaults(ctx context.Context, now time.Time) ([]domain.FaultRule, error) {
	s.cacheMu.RLock()
	rules, ok, gen := s.faults, s.faultsOK, s.faultsGen
	s.cacheMu.RUnlock()
	if !ok {
		all, err := s.Faults(ctx)
		if err != nil {
			return nil, err
		}
		rules = all
		s.cacheMu.Lock()
		if s.faultsGen == gen {
			s.faults, s.faultsOK = all, true
		}
		s.cacheMu.Unlock()
	}
	return domain.LiveFaultRules(rules, now), nil
}

// forgetFaults drops the cached rules (and makes a read in flight not keep what it read).
func (s *Store) forgetFaults() {
	s.cacheMu.Lock()
	s.faults, s.faultsOK = nil, false
	s.faultsGen++
	s.cacheMu.Unlock()
}

// TakeFault counts a matching request and decides whether the rule fires, in one write
// transaction. The cached rules are dropped only when the rule is spent.
func (s *Store) TakeFault(ctx context.Context, id string, now time.Time) (bool, error) {
	var fired bool
	err := s.faultTx(ctx, func(tx *sql.Tx) (bool, error) {
		r, err := domain.ScanFaultRule(tx.QueryRowContext(ctx, `SELECT rule, seen, hits FROM fault_rules WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		fired = r.Take(now, rand.Float64)
		_, err = tx.ExecContext(ctx, `UPDATE fault_rules SET seen = ?, hits = ? WHERE id = ?`, r.Seen, r.Hits, id)
		return !r.Live(now), err
	})
	return fired && err == nil, err
}
