package postgres

import (
	"context"
	"fmt"

	"github.com/qrapi/qrapi/domain"
)

// Account returns an account with its stored plans, in their stored order, in one query.
func (s *Store) Account(ctx context.Context, id string) (*domain.Account, error) {
	rows, err := s.pool.Query(ctx, `SELECT a.configured, p.plan_id, p.usage_allocation_seconds, p.usage_limit_seconds, p.backends,
			p.max_ttl, p.active_ttl, p.interactive_ttl, p.start_time, p.end_time
		FROM accounts a LEFT JOIN plans p ON p.account_id = a.id WHERE a.id = $1 ORDER BY p.position`, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: read account: %w", err)
	}
	defer rows.Close()
	var acct *domain.Account
	for rows.Next() {
		var (
			configured bool
			planID     *string
			p          domain.PlanConfig
		)
		if err := rows.Scan(&configured, &planID, &p.UsageAllocationSeconds, &p.UsageLimitSeconds, &p.Backends,
			&p.MaxTTL, &p.ActiveTTL, &p.InteractiveTTL, &p.StartTime, &p.EndTime); err != nil {
			return nil, fmt.Errorf("postgres: read plan: %w", err)
		}
		if acct == nil {
			acct = &domain.Account{ID: id, Configured: configured}
		}
		if planID == nil {
			continue // an account without plans
		}
		p.PlanID = *planID
		if p.Backends == nil {
			p.Backends = []string{}
		}
		p.StartTime, p.EndTime = utc(p.StartTime), utc(p.EndTime)
		acct.Plans = append(acct.Plans, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: read account: %w", err)
	}
	if acct == nil {
		return nil, domain.AccountNotFound(id)
	}
	return acct, nil
}
