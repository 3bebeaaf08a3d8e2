package sqlite

import (
	"context"
	"fmt"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/internal/groupcommit"
)

// UpdateInstance applies change to the instance in a write transaction shared with the
// changes queued beside it (group commit: one commit, one fsync with synchronous=FULL, for
// the group, where each PUT used to fsync alone behind the one writer).
func (s *Store) UpdateInstance(ctx context.Context, crn string, change domain.Change) (*domain.Instance, error) {
	return s.writes.Do(ctx, crn, change)
}

// commitGroup applies a group's changes in one transaction and, once it committed, puts
// the instances it changed in the cache, as one step under writeMu.
func (s *Store) commitGroup(group []*groupcommit.Request, results []groupcommit.Result) (func() error, error) {
	ctx := context.Background()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	current := map[string]*domain.Instance{}
	for _, crn := range groupcommit.CRNs(group) {
		in, err := instanceFrom(tx.QueryRowContext(ctx, selectInstance, crn), crn)
		if domain.ErrorCode(err) == domain.ENOTFOUND {
			continue // Apply answers its changes with this not-found
		}
		if err != nil {
			return nil, err
		}
		current[crn] = in
	}
	changed := groupcommit.Apply(group, results, current)
	if len(changed) == 0 {
		return nil, nil // every change was refused: nothing to write
	}
	for _, crn := range changed {
		in := current[crn]
		var pStart, pEnd any
		if in.UsagePeriod != nil {
			pStart, pEnd = timeOrNil(&in.UsagePeriod.Start), timeOrNil(&in.UsagePeriod.End)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE instances SET instance_limit = ?, period_start = ?, period_end = ?, consumed_seconds = ? WHERE crn = ?`,
			in.InstanceLimitSeconds, pStart, pEnd, in.ConsumedSeconds, crn); err != nil {
			return nil, fmt.Errorf("sqlite: update instance: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		s.forgetAll() // the outcome is unknown: read it again
		return nil, fmt.Errorf("sqlite: commit: %w", err)
	}
	for _, crn := range changed {
		s.cacheInstance(current[crn])
	}
	return nil, nil
}
