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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	wait, err := s.applyGroup(ctx, live, results)
	answer := func(err error) {
		defer cancel()
		for i, r := range live {
			if err != nil {
				r.done <- writeResult{err: err}
			} else {
				r.done <- results[i]
			}
		}
	}
	if err != nil || wait == nil {
		answer(err)
		return
	}
	// The next group may commit while this one waits for the other replicas' acks; this
	// one's callers are answered when its own acks are in.
	s.waiting.Add(1)
	go func() {
		defer s.waiting.Done()
		answer(wait())
	}()
}

// applyGroup commits a group's changes; the function it returns (nil if nothing was
// written) waits until no other replica's cache holds what they changed.
func (s *Store) applyGroup(ctx context.Context, group []*writeReq, results []writeResult) (func() error, error) {
	var crns []string
	for _, r := range group {
		if !slices.Contains(crns, r.crn) {
			crns = append(crns, r.crn)
		}
	}
	slices.Sort(crns) // rows locked in one order by every replica: no deadlock
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: begin: %w", err)
	}
	defer tx.Rollback(context.Background())
	rows, err := tx.Query(ctx, `SELECT `+versionedColumns+` FROM instances WHERE crn = ANY($1) ORDER BY crn FOR UPDATE`, crns)
	if err != nil {
		return nil, fmt.Errorf("postgres: lock instances: %w", err)
	}
	current := map[string]*domain.Instance{}
	versions := map[string]int64{}
	for rows.Next() {
		in, version, err := scanVersioned(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres: read instance: %w", err)
		}
		current[in.CRN], versions[in.CRN] = in, version
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: read instances: %w", err)
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
		return nil, nil // every change was refused: nothing to write
	}
	b := &pgx.Batch{}
	var updates []instanceUpdate
	for _, crn := range crns {
		if !changed[crn] {
			continue
		}
		in := current[crn]
		var pStart, pEnd *time.Time
		if in.UsagePeriod != nil {
			pStart, pEnd = &in.UsagePeriod.Start, &in.UsagePeriod.End
		}
		b.Queue(`UPDATE instances SET instance_limit = $1, period_start = $2, period_end = $3, consumed_seconds = $4, version = version + 1 WHERE crn = $5`,
			in.InstanceLimitSeconds, pStart, pEnd, in.ConsumedSeconds, crn)
		updates = append(updates, instanceUpdate{in: in, version: versions[crn] + 1})
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("postgres: update instances: %w", err)
	}
	seq, acks, err := s.replica.notify(ctx, tx, updateLines(updates))
	if err != nil {
		return nil, fmt.Errorf("postgres: notify: %w", err)
	}
	wait, err := s.commitThenWait(ctx, tx, func() { s.replica.cache.apply(updates) }, seq, acks)
	if err != nil {
		return nil, fmt.Errorf("postgres: commit: %w", err)
	}
	return wait, nil
}
