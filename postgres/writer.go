package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qrapi/qrapi/domain"
)

// Group commit. UpdateInstance queues its change; one goroutine per Store takes every
// change queued at that moment and applies them, in order, in one transaction: one lock
// of each row, one commit (one fsync), one invalidation round. A change that fails its
// rule fails alone: it runs on a copy, and the others of its group go on. Every caller is
// answered only after the commit that holds its change, and after the invalidation.

// maxGroup bounds the changes committed together.
const maxGroup = 256

type writeReq struct {
	ctx    context.Context
	crn    string
	change domain.Change
	done   chan writeResult
}

type writeResult struct {
	in  *domain.Instance
	err error
}

// writeLoop runs the group commits until ctx ends.
func (s *Store) writeLoop(ctx context.Context) {
	defer close(s.writerDone)
	for {
		var group []*writeReq
		select {
		case <-ctx.Done():
			return
		case r := <-s.writes:
			group = append(group, r)
		}
	take:
		for len(group) < maxGroup {
			select {
			case r := <-s.writes:
				group = append(group, r)
			default:
				break take
			}
		}
		s.commitGroup(group)
	}
}

// commitGroup applies a group of changes in one transaction and answers each.
func (s *Store) commitGroup(group []*writeReq) {
	live := group[:0:0]
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.done <- writeResult{err: err} // its caller is gone: nothing to do
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	results := make([]writeResult, len(live))
	err := s.applyGroup(live, results)
	for i, r := range live {
		if err != nil {
			r.done <- writeResult{err: err}
		} else {
			r.done <- results[i]
		}
	}
}

func (s *Store) applyGroup(group []*writeReq, results []writeResult) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var crns []string
	for _, r := range group {
		if !slices.Contains(crns, r.crn) {
			crns = append(crns, r.crn)
		}
	}
	slices.Sort(crns) // rows locked in one order by every replica: no deadlock
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer tx.Rollback(context.Background())
	rows, err := tx.Query(ctx, `SELECT `+instanceColumns+` FROM instances WHERE crn = ANY($1) ORDER BY crn FOR UPDATE`, crns)
	if err != nil {
		return fmt.Errorf("postgres: lock instances: %w", err)
	}
	current := map[string]*domain.Instance{}
	for rows.Next() {
		in, err := scanInstance(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("postgres: read instance: %w", err)
		}
		current[in.CRN] = in
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: read instances: %w", err)
	}
	changed := map[string]bool{}
	for i, r := range group {
		in := current[r.crn]
		if in == nil {
			results[i].err = domain.InstanceNotFound(r.crn)
			continue
		}
		next := in.Clone()
		if err := r.change(next); err != nil {
			results[i].err = err
			continue
		}
		current[r.crn] = next
		changed[r.crn] = true
		results[i].in = next.Clone()
	}
	if len(changed) == 0 {
		return nil // every change was refused: nothing to write
	}
	b := &pgx.Batch{}
	for _, crn := range crns {
		if !changed[crn] {
			continue
		}
		in := current[crn]
		var pStart, pEnd *time.Time
		if in.UsagePeriod != nil {
			pStart, pEnd = &in.UsagePeriod.Start, &in.UsagePeriod.End
		}
		b.Queue(`UPDATE instances SET instance_limit = $1, period_start = $2, period_end = $3, consumed_seconds = $4 WHERE crn = $5`,
			in.InstanceLimitSeconds, pStart, pEnd, in.ConsumedSeconds, crn)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("postgres: update instances: %w", err)
	}
	invalidate := ""
	if len(changed) == 1 {
		for crn := range changed {
			invalidate = crn
		}
	}
	seq, acks, err := s.replica.notify(ctx, tx, invalidate)
	if err != nil {
		return fmt.Errorf("postgres: notify: %w", err)
	}
	if err := s.commitAndInvalidate(ctx, tx, invalidate, seq, acks); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}
