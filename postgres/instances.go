package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qrapi/qrapi/domain"
)

const instanceColumns = `crn, account_id, plan_id, backends, usage_allocation_seconds, instance_limit, qctrl_enabled, period_start, period_end, consumed_seconds`

// readColumns are instanceColumns, the instance's fixture (empty for none), name and tags.
const readColumns = instanceColumns + `, coalesce(fixture_id, ''), coalesce(name, ''), tags`

// scanInstance reads readColumns.
func scanInstance(row pgx.Row) (*domain.Instance, error) {
	var (
		in           domain.Instance
		pStart, pEnd *time.Time
	)
	if err := row.Scan(&in.CRN, &in.AccountID, &in.PlanID, &in.Backends, &in.UsageAllocationSeconds, &in.InstanceLimitSeconds,
		&in.QctrlEnabled, &pStart, &pEnd, &in.ConsumedSeconds, &in.FixtureID, &in.Name, &in.Tags); err != nil {
		return nil, err
	}
	in.SetDefaultName()
	if in.Backends == nil {
		in.Backends = []string{}
	}
	if pStart != nil && pEnd != nil {
		in.UsagePeriod = &domain.UsagePeriod{Start: pStart.UTC(), End: pEnd.UTC()}
	}
	return &in, nil
}

// queueInstance queues the read of one instance: *out is left nil if none has the CRN.
func queueInstance(b *pgx.Batch, crn string, out **domain.Instance) {
	b.Queue(`SELECT `+readColumns+` FROM instances WHERE crn = $1`, crn).QueryRow(func(row pgx.Row) error {
		in, err := scanInstance(row)
		if noRows(err) {
			return nil
		}
		*out = in
		return err
	})
}

// queueAccountInstances queues the read of an account's instances, by CRN.
func queueAccountInstances(b *pgx.Batch, accountID string, out *[]domain.Instance) {
	b.Queue(`SELECT `+readColumns+` FROM instances WHERE account_id = $1 ORDER BY crn COLLATE "C"`, accountID).Query(func(rows pgx.Rows) error {
		var err error
		*out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Instance, error) {
			in, err := scanInstance(r)
			if err != nil {
				return domain.Instance{}, err
			}
			return *in, nil
		})
		return err
	})
}

// Instance returns the instance with the given CRN, as committed now.
func (s *Store) Instance(ctx context.Context, crn string) (*domain.Instance, error) {
	var in *domain.Instance
	if err := s.read(ctx, "read instance", func(b *pgx.Batch) { queueInstance(b, crn, &in) }); err != nil {
		return nil, err
	}
	if in == nil {
		return nil, domain.InstanceNotFound(crn)
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
	var out []domain.Instance
	if err := s.read(ctx, "read instances", func(b *pgx.Batch) { queueAccountInstances(b, accountID, &out) }); err != nil {
		return nil, err
	}
	return out, nil
}
