package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qrapi/qrapi/domain"
)

const instanceColumns = `crn, account_id, plan_id, backends, usage_allocation_seconds, instance_limit, qctrl_enabled, period_start, period_end, consumed_seconds`

// versionedColumns are an instance's columns and its version (its count of updates).
const versionedColumns = instanceColumns + `, version`

// scanVersioned reads versionedColumns.
func scanVersioned(row pgx.Row) (*domain.Instance, int64, error) {
	var (
		in           domain.Instance
		pStart, pEnd *time.Time
		version      int64
	)
	if err := row.Scan(&in.CRN, &in.AccountID, &in.PlanID, &in.Backends, &in.UsageAllocationSeconds, &in.InstanceLimitSeconds,
		&in.QctrlEnabled, &pStart, &pEnd, &in.ConsumedSeconds, &version); err != nil {
		return nil, 0, err
	}
	if in.Backends == nil {
		in.Backends = []string{}
	}
	if pStart != nil && pEnd != nil {
		in.UsagePeriod = &domain.UsagePeriod{Start: pStart.UTC(), End: pEnd.UTC()}
	}
	return &in, version, nil
}

// Instance returns the instance with the given CRN: from this replica's cache while the
// cache protocol allows it, else as committed now.
func (s *Store) Instance(ctx context.Context, crn string) (*domain.Instance, error) {
	if in := s.replica.cache.instance(crn); in != nil {
		return in, nil
	}
	gen, cacheable := s.replica.cache.generation()
	in, version, err := scanVersioned(s.pool.QueryRow(ctx, `SELECT `+versionedColumns+` FROM instances WHERE crn = $1`, crn))
	if noRows(err) {
		return nil, domain.InstanceNotFound(crn)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: read instance: %w", err)
	}
	if cacheable {
		s.replica.cache.fillInstance(gen, in, version)
	}
	return in, nil
}

// UpdateInstance applies change to the instance with its row locked (FOR UPDATE) and
// writes the result in the same transaction, shared with the changes queued beside it
// (writer.go): an update through another replica waits for the lock and then reads what
// this one committed.
func (s *Store) UpdateInstance(ctx context.Context, crn string, change domain.Change) (*domain.Instance, error) {
	return s.writes.Do(ctx, crn, change)
}

// AccountInstances returns the instances of an account, by CRN.
func (s *Store) AccountInstances(ctx context.Context, accountID string) ([]domain.Instance, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+versionedColumns+` FROM instances WHERE account_id = $1 ORDER BY crn COLLATE "C"`, accountID)
	if err != nil {
		return nil, fmt.Errorf("postgres: read instances: %w", err)
	}
	defer rows.Close()
	var out []domain.Instance
	for rows.Next() {
		in, _, err := scanVersioned(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: read instance: %w", err)
		}
		out = append(out, *in)
	}
	return out, rows.Err()
}
