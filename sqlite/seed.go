package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/qrapi/qrapi/domain"
)

// Load replaces accounts, instances, principals, keys and policies with the seed's, in one
// transaction. Audit events and the signing key are kept.
func (s *Store) Load(ctx context.Context, seed *domain.Seed) error {
	_, err := s.load(ctx, seed, false)
	return err
}

// LoadIfEmpty loads the seed if no account is stored; the check and the load are one
// write transaction.
func (s *Store) LoadIfEmpty(ctx context.Context, seed *domain.Seed) (bool, error) {
	return s.load(ctx, seed, true)
}

func (s *Store) load(ctx context.Context, seed *domain.Seed, onlyIfEmpty bool) (bool, error) {
	st, err := seed.State()
	if err != nil {
		return false, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	if onlyIfEmpty {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM accounts`).Scan(&n); err != nil {
			return false, fmt.Errorf("sqlite: count accounts: %w", err)
		}
		if n > 0 {
			return false, nil
		}
	}
	// Deleting fixtures and accounts cascades to plans, instances, principals, keys,
	// policies and the fault rules scoped to a fixture; a reset removes the rest too.
	for _, t := range []string{"fixtures", "fault_rules", "policies", "api_keys", "principals", "instances", "plans", "accounts"} {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+t); err != nil {
			return false, fmt.Errorf("sqlite: clear %s: %w", t, err)
		}
	}
	if err := insertState(ctx, tx, st); err != nil {
		return false, err
	}
	err = tx.Commit()
	s.forgetAll()
	if err != nil {
		return false, fmt.Errorf("sqlite: commit seed: %w", err)
	}
	return true, nil
}

// insertState adds a state's rows, each with its fixture (NULL for none).
func insertState(ctx context.Context, tx *sql.Tx, st *domain.State) (err error) {
	exec := func(q string, args ...any) {
		if err == nil {
			_, err = tx.ExecContext(ctx, q, args...)
		}
	}
	for _, a := range st.Accounts {
		exec(`INSERT INTO accounts (id, configured, fixture_id) VALUES (?, ?, ?)`, a.ID, a.Configured, nullIfEmpty(a.FixtureID))
		for i, p := range a.Plans {
			b, _ := json.Marshal(p.Backends)
			exec(`INSERT INTO plans (account_id, position, plan_id, usage_allocation_seconds, usage_limit_seconds, backends, max_ttl, active_ttl, interactive_ttl, start_time, end_time,
					catalog_id, display_name, pricing_type)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, a.ID, i, p.PlanID, p.UsageAllocationSeconds, p.UsageLimitSeconds, string(b),
				p.MaxTTL, p.ActiveTTL, p.InteractiveTTL, timeOrNil(p.StartTime), timeOrNil(p.EndTime), nullIfEmpty(p.CatalogID), nullIfEmpty(p.DisplayName), nullIfEmpty(p.PricingType))
		}
	}
	for _, in := range st.Instances {
		var pStart, pEnd any
		if in.UsagePeriod != nil {
			pStart, pEnd = timeOrNil(&in.UsagePeriod.Start), timeOrNil(&in.UsagePeriod.End)
		}
		exec(`INSERT INTO instances (`+instanceColumns+`, fixture_id, name, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			in.CRN, in.AccountID, in.PlanID, joinList(in.Backends), in.UsageAllocationSeconds, in.InstanceLimitSeconds, in.QctrlEnabled, pStart, pEnd, in.ConsumedSeconds,
			nullIfEmpty(in.FixtureID), nullIfEmpty(in.Name), nullIfEmpty(joinList(in.Tags)))
	}
	for _, p := range st.Principals {
		exec(`INSERT INTO principals (id, type, name, account_id, fixture_id) VALUES (?, ?, ?, ?, ?)`, p.ID, string(p.Type), p.Name, p.AccountID, nullIfEmpty(p.FixtureID))
	}
	for hash, id := range st.APIKeyHash {
		exec(`INSERT INTO api_keys (hash, principal_id) VALUES (?, ?)`, hash, id)
	}
	for _, p := range st.Policies {
		exec(`INSERT INTO policies (principal_id, role, account_id, instance_crn) VALUES (?, ?, ?, ?)`, p.PrincipalID, string(p.Role), p.AccountID, p.InstanceCRN)
	}
	if err != nil {
		return fmt.Errorf("sqlite: load seed: %w", err)
	}
	return nil
}

// nullIfEmpty is s, or NULL for "".
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
