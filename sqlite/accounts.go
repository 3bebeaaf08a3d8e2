package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/qrapi/qrapi/domain"
)

// Account returns an account with its stored plans, in their stored order.
func (s *Store) Account(ctx context.Context, id string) (*domain.Account, error) {
	acct := &domain.Account{ID: id}
	row, err := s.queryRow(ctx, `SELECT configured FROM accounts WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	err = row.Scan(&acct.Configured)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.AccountNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: read account: %w", err)
	}
	rows, err := s.query(ctx, `SELECT plan_id, usage_allocation_seconds, usage_limit_seconds, backends, max_ttl, active_ttl, interactive_ttl, start_time, end_time,
			coalesce(catalog_id, ''), coalesce(display_name, ''), coalesce(pricing_type, '')
		FROM plans WHERE account_id = ? ORDER BY position`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read plans: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			p                                 domain.PlanConfig
			backends                          string
			alloc, limit, maxT, active, inter sql.NullInt64
			start, end                        sql.NullString
		)
		if err := rows.Scan(&p.PlanID, &alloc, &limit, &backends, &maxT, &active, &inter, &start, &end, &p.CatalogID, &p.DisplayName, &p.PricingType); err != nil {
			return nil, fmt.Errorf("sqlite: read plan: %w", err)
		}
		if err := json.Unmarshal([]byte(backends), &p.Backends); err != nil {
			return nil, fmt.Errorf("sqlite: plan backends: %w", err)
		}
		p.UsageAllocationSeconds, p.UsageLimitSeconds = nullInt(alloc), nullInt(limit)
		p.MaxTTL, p.ActiveTTL, p.InteractiveTTL = nullInt(maxT), nullInt(active), nullInt(inter)
		if p.StartTime, err = nullTime(start); err != nil {
			return nil, err
		}
		if p.EndTime, err = nullTime(end); err != nil {
			return nil, err
		}
		acct.Plans = append(acct.Plans, p)
	}
	return acct, rows.Err()
}
