package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qrapi/qrapi/domain"
)

// Load replaces accounts, instances, principals, keys and policies with the seed's, in one
// transaction. Audit events and the signing key are kept.
func (s *Store) Load(ctx context.Context, seed *domain.Seed) error {
	_, err := s.load(ctx, seed, false)
	return err
}

// LoadIfEmpty loads the seed if no account is stored. The seed lock makes the check and
// the load one step across replicas: exactly one of several starting at once loads.
func (s *Store) LoadIfEmpty(ctx context.Context, seed *domain.Seed) (bool, error) {
	return s.load(ctx, seed, true)
}

func (s *Store) load(ctx context.Context, seed *domain.Seed, onlyIfEmpty bool) (bool, error) {
	st, err := seed.State()
	if err != nil {
		return false, err
	}
	loaded := false
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockSeed); err != nil {
			return err
		}
		if onlyIfEmpty {
			var any bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM accounts)`).Scan(&any); err != nil || any {
				return err
			}
		}
		loaded = true
		// Deleting fixtures and accounts cascades to plans, instances, principals, keys,
		// policies and the fault rules scoped to a fixture; a reset removes the rest too.
		if _, err := tx.Exec(ctx, `DELETE FROM fixtures; DELETE FROM accounts; DELETE FROM fault_rules`); err != nil {
			return err
		}
		return insertState(ctx, tx, st)
	})
	if err != nil {
		return false, dbError("load seed", err)
	}
	return loaded, nil
}

// insertState adds a state's rows, each with its fixture (NULL for none).
func insertState(ctx context.Context, tx pgx.Tx, st *domain.State) error {
	b := &pgx.Batch{}
	for _, a := range st.Accounts {
		b.Queue(`INSERT INTO accounts (id, configured, fixture_id) VALUES ($1, $2, $3)`, a.ID, a.Configured, nullIfEmpty(a.FixtureID))
		for i, p := range a.Plans {
			b.Queue(`INSERT INTO plans (account_id, position, plan_id, usage_allocation_seconds, usage_limit_seconds, backends, max_ttl, active_ttl, interactive_ttl, start_time, end_time,
					catalog_id, display_name, pricing_type)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`, a.ID, i, p.PlanID, p.UsageAllocationSeconds, p.UsageLimitSeconds, p.Backends,
				p.MaxTTL, p.ActiveTTL, p.InteractiveTTL, p.StartTime, p.EndTime, nullIfEmpty(p.CatalogID), nullIfEmpty(p.DisplayName), nullIfEmpty(p.PricingType))
		}
	}
	for _, in := range st.Instances {
		var pStart, pEnd *time.Time
		if in.UsagePeriod != nil {
			pStart, pEnd = &in.UsagePeriod.Start, &in.UsagePeriod.End
		}
		b.Queue(`INSERT INTO instances (`+instanceColumns+`, fixture_id, name, tags) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			in.CRN, in.AccountID, in.PlanID, in.Backends, in.UsageAllocationSeconds, in.InstanceLimitSeconds, in.QctrlEnabled, pStart, pEnd, in.ConsumedSeconds,
			nullIfEmpty(in.FixtureID), nullIfEmpty(in.Name), in.Tags)
	}
	for _, p := range st.Principals {
		b.Queue(`INSERT INTO principals (id, type, name, account_id, fixture_id) VALUES ($1, $2, $3, $4, $5)`, p.ID, string(p.Type), p.Name, p.AccountID, nullIfEmpty(p.FixtureID))
	}
	for hash, id := range st.APIKeyHash {
		b.Queue(`INSERT INTO api_keys (hash, principal_id) VALUES ($1, $2)`, hash, id)
	}
	for _, p := range st.Policies {
		b.Queue(`INSERT INTO policies (principal_id, role, account_id, instance_crn) VALUES ($1, $2, $3, $4)`, p.PrincipalID, string(p.Role), p.AccountID, p.InstanceCRN)
	}
	return tx.SendBatch(ctx, b).Close()
}

// nullIfEmpty is s, or NULL for "".
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
