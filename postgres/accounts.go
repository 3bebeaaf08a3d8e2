package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/qrapi/qrapi/domain"
)

// queueAccount queues the read of an account with its plans, in their stored order: *out
// is left nil if there is no such account.
func queueAccount(b *pgx.Batch, id string, out **domain.Account) {
	b.Queue(`SELECT a.configured, p.plan_id, p.usage_allocation_seconds, p.usage_limit_seconds, p.backends,
			p.max_ttl, p.active_ttl, p.interactive_ttl, p.start_time, p.end_time,
			coalesce(p.catalog_id, ''), coalesce(p.display_name, ''), coalesce(p.pricing_type, '')
		FROM accounts a LEFT JOIN plans p ON p.account_id = a.id WHERE a.id = $1 ORDER BY p.position`, id).Query(func(rows pgx.Rows) error {
		*out = nil
		for rows.Next() {
			var (
				configured bool
				planID     *string
				p          domain.PlanConfig
			)
			if err := rows.Scan(&configured, &planID, &p.UsageAllocationSeconds, &p.UsageLimitSeconds, &p.Backends,
				&p.MaxTTL, &p.ActiveTTL, &p.InteractiveTTL, &p.StartTime, &p.EndTime, &p.CatalogID, &p.DisplayName, &p.PricingType); err != nil {
				return err
			}
			if *out == nil {
				*out = &domain.Account{ID: id, Configured: configured}
			}
			if planID == nil {
				continue // an account without plans
			}
			p.PlanID = *planID
			if p.Backends == nil {
				p.Backends = []string{}
			}
			p.StartTime, p.EndTime = utc(p.StartTime), utc(p.EndTime)
			(*out).Plans = append((*out).Plans, p)
		}
		return rows.Err()
	})
}

// Account returns an account with its stored plans, in their stored order.
func (s *Store) Account(ctx context.Context, id string) (*domain.Account, error) {
	var acct *domain.Account
	if err := s.read(ctx, "read account", func(b *pgx.Batch) { queueAccount(b, id, &acct) }); err != nil {
		return nil, err
	}
	if acct == nil {
		return nil, domain.AccountNotFound(id)
	}
	return acct, nil
}
