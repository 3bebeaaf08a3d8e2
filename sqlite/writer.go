package sqlite

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/qrapi/qrapi/domain"
)

// Group commit. UpdateInstance queues its change; one goroutine takes every change queued
// at that moment and applies them, in order, in one transaction: one commit, one fsync
// (synchronous=FULL) for the group, where each PUT used to fsync alone behind the one
// writer. A change that fails its rule runs on a copy and fails alone; every caller is
// answered after the commit that holds its change, with the cache already updated.

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

// UpdateInstance applies change to the instance in a write transaction shared with the
// changes queued beside it, and stores what it leaves.
func (s *Store) UpdateInstance(ctx context.Context, crn string, change domain.Change) (*domain.Instance, error) {
	r := &writeReq{ctx: ctx, crn: crn, change: change, done: make(chan writeResult, 1)}
	select {
	case s.writes <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.writerDone:
		return nil, errors.New("sqlite: the store is closed")
	}
	select {
	case res := <-r.done:
		return res.in, res.err
	case <-s.writerDone:
		return nil, errors.New("sqlite: the store is closed")
	}
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
		live := group[:0:0]
		for _, r := range group {
			if err := r.ctx.Err(); err != nil {
				r.done <- writeResult{err: err} // its caller is gone
				continue
			}
			live = append(live, r)
		}
		if len(live) == 0 {
			continue
		}
		results := make([]writeResult, len(live))
		err := s.commitGroup(live, results)
		for i, r := range live {
			if err != nil {
				r.done <- writeResult{err: err}
			} else {
				r.done <- results[i]
			}
		}
	}
}

// commitGroup applies a group's changes in one transaction and, once it committed, puts
// the instances it changed in the cache, as one step under writeMu.
func (s *Store) commitGroup(group []*writeReq, results []writeResult) error {
	ctx := context.Background()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	current := map[string]*domain.Instance{}
	var order []string // the changed instances, in the order first changed
	for i, r := range group {
		in, ok := current[r.crn]
		if !ok {
			in, err = instanceFrom(tx.QueryRowContext(ctx, selectInstance, r.crn), r.crn)
			if domain.ErrorCode(err) == domain.ENOTFOUND {
				results[i].err = err
				continue
			}
			if err != nil {
				return err
			}
			current[r.crn] = in
		}
		next := in.Clone()
		if err := r.change(next); err != nil {
			results[i].err = err
			continue
		}
		current[r.crn] = next
		if !slices.Contains(order, r.crn) {
			order = append(order, r.crn)
		}
		results[i].in = next.Clone()
	}
	if len(order) == 0 {
		return nil // every change was refused: nothing to write
	}
	for _, crn := range order {
		in := current[crn]
		var pStart, pEnd any
		if in.UsagePeriod != nil {
			pStart, pEnd = timeOrNil(&in.UsagePeriod.Start), timeOrNil(&in.UsagePeriod.End)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE instances SET instance_limit = ?, period_start = ?, period_end = ?, consumed_seconds = ? WHERE crn = ?`,
			in.InstanceLimitSeconds, pStart, pEnd, in.ConsumedSeconds, crn); err != nil {
			return fmt.Errorf("sqlite: update instance: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		s.forgetAll() // the outcome is unknown: read it again
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	for _, crn := range order {
		s.cacheInstance(current[crn])
	}
	return nil
}
