package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/internal/groupcommit"
)

// Group commit (internal/groupcommit): the changes queued at one moment are applied in one
// transaction — one lock of each row, one commit, one invalidation round — and every
// caller is answered after the commit and the other replicas' acks.

// commitGroup is the queue's CommitFunc: applyGroup under a deadline that lasts until the
// other replicas have acknowledged.
func (s *Store) commitGroup(group []*groupcommit.Request, results []groupcommit.Result) (func() error, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	wait, err := s.applyGroup(ctx, group, results)
	if err != nil || wait == nil {
		cancel()
		return nil, err
	}
	return func() error { defer cancel(); return wait() }, nil
}

// applyGroup commits a group's changes; the function it returns (nil if there is nothing
// to wait for) waits until no other replica's cache holds what they changed.
func (s *Store) applyGroup(ctx context.Context, group []*groupcommit.Request, results []groupcommit.Result) (func() error, error) {
	crns := groupcommit.CRNs(group) // rows locked in one order by every replica: no deadlock
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
	changed := groupcommit.Apply(group, results, current)
	if len(changed) == 0 {
		return nil, nil // every change was refused: nothing to write
	}
	b := &pgx.Batch{}
	var updates []versionedInstance
	for _, crn := range changed {
		in := current[crn]
		var pStart, pEnd *time.Time
		if in.UsagePeriod != nil {
			pStart, pEnd = &in.UsagePeriod.Start, &in.UsagePeriod.End
		}
		b.Queue(`UPDATE instances SET instance_limit = $1, period_start = $2, period_end = $3, consumed_seconds = $4, version = version + 1 WHERE crn = $5`,
			in.InstanceLimitSeconds, pStart, pEnd, in.ConsumedSeconds, crn)
		updates = append(updates, versionedInstance{in: in, version: versions[crn] + 1})
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("postgres: update instances: %w", err)
	}
	if at, alone := s.replica.alone(); alone {
		return s.commitAlone(ctx, tx, updates, at)
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

// commitAlone commits a group's changes without notifying them, when this replica's last
// renewal, which began at, found no other live replica: no other cache holds anything.
// A replica that became live since is not in that list, and answers only from the
// database until leaseGrace after its renewal returned, longer than peersMaxAge after at:
// if the commit is done within peersMaxAge of at, every read that may fill its cache reads
// this commit. If the commit took longer, such a replica may have filled its cache before
// it, so the change is notified then, and the write waits for the live replicas' acks.
func (s *Store) commitAlone(ctx context.Context, tx pgx.Tx, updates []versionedInstance, at time.Time) (func() error, error) {
	if d := time.Duration(s.replica.slowCommit.Load()); d > 0 {
		time.Sleep(d)
	}
	if err := s.commitLocal(ctx, tx, func() { s.replica.cache.apply(updates) }); err != nil {
		return nil, fmt.Errorf("postgres: commit: %w", err)
	}
	if fresh(at) {
		return nil, nil
	}
	seq, acks, payload := s.replica.invalidation(updateLines(updates))
	_, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, chanInvalidate, payload)
	if err == nil && !s.replica.failFollowUp.Load() {
		return func() error { return s.replica.awaitAcks(ctx, seq, acks) }, nil
	}
	// Committed, and no other replica told: fence them all, so that none answers from its
	// cache once its lease is out, and answer then.
	s.replica.forget(seq)
	if _, ferr := s.pool.Exec(ctx, `UPDATE replicas SET fenced = true, fenced_at = now() WHERE id <> $1 AND NOT fenced`, s.replica.id); ferr != nil {
		return nil, fmt.Errorf("postgres: notify after a slow commit: %w", errors.Join(err, ferr))
	}
	s.replica.log.Warn("postgres: a write's notification failed after its commit; fenced the other replicas and waiting out their lease", "error", err)
	return func() error { return waitOutLease(ctx) }, nil
}
