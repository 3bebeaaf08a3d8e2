package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/qrapi/qrapi/domain"
)

const instanceColumns = `crn, account_id, plan_id, backends, usage_allocation_seconds, instance_limit, qctrl_enabled, period_start, period_end, consumed_seconds`

// readColumns are instanceColumns, the instance's fixture (empty for none), name and tags.
const readColumns = instanceColumns + `, coalesce(fixture_id, ''), coalesce(name, ''), coalesce(tags, '')`

const selectInstance = `SELECT ` + readColumns + ` FROM instances WHERE crn = ?`

type scanner interface{ Scan(dest ...any) error }

func scanInstance(row scanner) (*domain.Instance, error) {
	var (
		in           domain.Instance
		backends     string
		alloc        sql.NullInt64
		limit        sql.NullFloat64
		qctrl        sql.NullBool
		pStart, pEnd sql.NullString
		tags         string
	)
	if err := row.Scan(&in.CRN, &in.AccountID, &in.PlanID, &backends, &alloc, &limit, &qctrl, &pStart, &pEnd, &in.ConsumedSeconds, &in.FixtureID, &in.Name, &tags); err != nil {
		return nil, err
	}
	if tags != "" {
		in.Tags = splitList(tags)
	}
	in.SetDefaultName()
	in.Backends = splitList(backends)
	if alloc.Valid {
		in.UsageAllocationSeconds = &alloc.Int64
	}
	if limit.Valid {
		in.InstanceLimitSeconds = &limit.Float64
	}
	if qctrl.Valid {
		in.QctrlEnabled = &qctrl.Bool
	}
	if pStart.Valid && pEnd.Valid {
		start, err1 := time.Parse(time.RFC3339Nano, pStart.String)
		end, err2 := time.Parse(time.RFC3339Nano, pEnd.String)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("sqlite: instance %s usage period: %w", in.CRN, err)
		}
		in.UsagePeriod = &domain.UsagePeriod{Start: start, End: end}
	}
	return &in, nil
}

func instanceFrom(row *sql.Row, crn string) (*domain.Instance, error) {
	in, err := scanInstance(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.InstanceNotFound(crn)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: read instance: %w", err)
	}
	return in, nil
}

// Instance returns the instance with the given CRN: a copy the caller may change.
func (s *Store) Instance(ctx context.Context, crn string) (*domain.Instance, error) {
	s.cacheMu.RLock()
	cached, gen := s.instances[crn], s.cacheGen
	s.cacheMu.RUnlock()
	if cached != nil {
		return cached.Clone(), nil
	}
	row, err := s.queryRow(ctx, selectInstance, crn)
	if err != nil {
		return nil, err
	}
	in, err := instanceFrom(row, crn)
	if err != nil {
		return nil, err
	}
	s.cacheMu.Lock()
	if s.cacheGen == gen {
		s.instances[crn] = in.Clone()
	}
	s.cacheMu.Unlock()
	return in, nil
}

// cacheInstance records a committed instance.
func (s *Store) cacheInstance(in *domain.Instance) {
	s.cacheMu.Lock()
	s.cacheGen++
	s.instances[in.CRN] = in.Clone()
	s.cacheMu.Unlock()
}

// AccountInstances returns the instances of an account, by CRN.
func (s *Store) AccountInstances(ctx context.Context, accountID string) ([]domain.Instance, error) {
	rows, err := s.query(ctx, `SELECT `+readColumns+` FROM instances WHERE account_id = ? ORDER BY crn`, accountID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read instances: %w", err)
	}
	defer rows.Close()
	var out []domain.Instance
	for rows.Next() {
		in, err := scanInstance(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *in)
	}
	return out, rows.Err()
}
