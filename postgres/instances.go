package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qrapi/qrapi/domain"
)

const instanceColumns = `crn, account_id, plan_id, backends, usage_allocation_seconds, instance_limit, qctrl_enabled, period_start, period_end, consumed_seconds`

func scanInstance(row pgx.Row) (*domain.Instance, error) {
	var (
		in           domain.Instance
		pStart, pEnd *time.Time
	)
	if err := row.Scan(&in.CRN, &in.AccountID, &in.PlanID, &in.Backends, &in.UsageAllocationSeconds, &in.InstanceLimitSeconds,
		&in.QctrlEnabled, &pStart, &pEnd, &in.ConsumedSeconds); err != nil {
		return nil, err
	}
	if in.Backends == nil {
		in.Backends = []string{}
	}
	if pStart != nil && pEnd != nil {
		in.UsagePeriod = &domain.UsagePeriod{Start: pStart.UTC(), End: pEnd.UTC()}
	}
	return &in, nil
}

func instanceFrom(row pgx.Row, crn string) (*domain.Instance, error) {
	in, err := scanInstance(row)
	if noRows(err) {
		return nil, domain.InstanceNotFound(crn)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: read instance: %w", err)
	}
	return in, nil
}

// Instance returns the instance with the given CRN, as committed now.
func (s *Store) Instance(ctx context.Context, crn string) (*domain.Instance, error) {
	return instanceFrom(s.pool.QueryRow(ctx, `SELECT `+instanceColumns+` FROM instances WHERE crn = $1`, crn), crn)
}

// UpdateInstance reads the instance with its row locked (FOR UPDATE), applies change and
// writes the result in the same transaction: an update through another replica waits for
// the lock and then reads what this one committed.
func (s *Store) UpdateInstance(ctx context.Context, crn string, change domain.Change) (*domain.Instance, error) {
	var out *domain.Instance
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		in, err := instanceFrom(tx.QueryRow(ctx, `SELECT `+instanceColumns+` FROM instances WHERE crn = $1 FOR UPDATE`, crn), crn)
		if err != nil {
			return err
		}
		if err := change(in); err != nil {
			return err
		}
		var pStart, pEnd *time.Time
		if in.UsagePeriod != nil {
			pStart, pEnd = &in.UsagePeriod.Start, &in.UsagePeriod.End
		}
		if _, err := tx.Exec(ctx, `UPDATE instances SET instance_limit = $1, period_start = $2, period_end = $3, consumed_seconds = $4 WHERE crn = $5`,
			in.InstanceLimitSeconds, pStart, pEnd, in.ConsumedSeconds, crn); err != nil {
			return fmt.Errorf("postgres: update instance: %w", err)
		}
		out = in
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AccountInstances returns the instances of an account, by CRN.
func (s *Store) AccountInstances(ctx context.Context, accountID string) ([]domain.Instance, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+instanceColumns+` FROM instances WHERE account_id = $1 ORDER BY crn COLLATE "C"`, accountID)
	if err != nil {
		return nil, fmt.Errorf("postgres: read instances: %w", err)
	}
	defer rows.Close()
	var out []domain.Instance
	for rows.Next() {
		in, err := scanInstance(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: read instance: %w", err)
		}
		out = append(out, *in)
	}
	return out, rows.Err()
}
