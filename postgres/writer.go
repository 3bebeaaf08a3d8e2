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
// to wait for) waits until no other replica's cache holds what they changed. It takes two
// round trips to the database: BEGIN with the lock of the rows, then the updates, the
// notification and COMMIT. The rows stay locked only for the second (and the commit's
// fsync), so that a group through another replica waits less for them: with a round trip
// for each statement, the lock was held across four.
func (s *Store) applyGroup(ctx context.Context, group []*groupcommit.Request, results []groupcommit.Result) (func() error, error) {
	crns := groupcommit.CRNs(group) // rows locked in one order by every replica: no deadlock
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	defer func() {
		// A transaction left open (a failure part-way, or nothing to write) is ended here;
		// a connection that cannot end it is closed as it goes back to the pool.
		if conn.Conn().PgConn().TxStatus() != 'I' {
			conn.Exec(context.Background(), "ROLLBACK")
		}
		conn.Release()
	}()
	lock := &pgx.Batch{}
	lock.Queue(`BEGIN`)
	lock.Queue(`SELECT `+versionedColumns+` FROM instances WHERE crn = ANY($1) ORDER BY crn FOR UPDATE`, crns)
	// The group's version, taken once its rows are locked: a later write of any of them
	// takes its own after this commit, so versions grow in commit order.
	lock.Queue(`SELECT nextval('instance_version')`)
	current, version, err := lockInstances(conn.SendBatch(ctx, lock))
	if err != nil {
		return nil, err
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
		b.Queue(`UPDATE instances SET instance_limit = $1, period_start = $2, period_end = $3, consumed_seconds = $4, version = $5 WHERE crn = $6`,
			in.InstanceLimitSeconds, pStart, pEnd, in.ConsumedSeconds, version, crn)
		updates = append(updates, versionedInstance{in: in, version: version})
	}
	at, alone := s.replica.alone()
	var (
		seq     uint64
		acks    chan string
		payload string
		direct  bool // sent to the other replicas after the commit (direct.go)
	)
	if alone {
		if d := time.Duration(s.replica.slowCommit.Load()); d > 0 {
			time.Sleep(d)
		}
	} else {
		peers, err := s.replica.livePeers(ctx)
		direct = err == nil && s.replica.direct.ready(peers)
		seq, acks, payload = s.replica.invalidation(updateLines(updates), direct)
		if !direct {
			b.Queue(`SELECT pg_notify($1, $2)`, chanInvalidate, payload)
		}
	}
	b.Queue(`COMMIT`)
	if err := s.commitBatch(conn.SendBatch(ctx, b), b.Len()); err != nil {
		if !alone {
			s.replica.forget(seq)
		}
		return nil, err
	}
	s.replica.cache.apply(updates)
	switch {
	case alone:
		return s.afterAlone(ctx, updates, at)
	case direct:
		return s.sendDirect(ctx, seq, acks, payload)
	}
	return func() error { return s.replica.awaitAcks(ctx, seq, acks) }, nil
}

// sendDirect sends a committed write's message (seq, payload) to the replicas live now,
// and returns a wait for their acks: a replica that is not in that list became live after
// the list was read, and fills its cache from the database only once this commit is in it
// (cache.renewed). If a message does not go out, the write is notified through the
// database instead.
func (s *Store) sendDirect(ctx context.Context, seq uint64, acks chan string, payload string) (func() error, error) {
	peers, err := s.replica.livePeers(ctx)
	if err != nil || !s.replica.direct.send(peers, payload) {
		return s.notifyAfterCommit(ctx, seq, acks, payload)
	}
	return func() error { return s.replica.awaitAcksFrom(ctx, seq, acks, peers) }, nil
}

// lockInstances reads the results of BEGIN, the locking read of a group's rows and the
// group's version: the instances by CRN, and the version their updates take.
func lockInstances(br pgx.BatchResults) (map[string]*domain.Instance, int64, error) {
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, 0, fmt.Errorf("postgres: begin: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: lock instances: %w", err)
	}
	current := map[string]*domain.Instance{}
	for rows.Next() {
		in, _, err := scanVersioned(rows)
		if err != nil {
			rows.Close()
			return nil, 0, fmt.Errorf("postgres: read instance: %w", err)
		}
		current[in.CRN] = in
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("postgres: read instances: %w", err)
	}
	var version int64
	if err := br.QueryRow().Scan(&version); err != nil {
		return nil, 0, fmt.Errorf("postgres: instance version: %w", err)
	}
	return current, version, nil
}

// commitBatch reads the results of a batch of n statements whose last is COMMIT. A
// statement before it that fails leaves nothing committed; a COMMIT that fails has an
// unknown outcome, and the whole cache is dropped (as commitLocal does).
func (s *Store) commitBatch(br pgx.BatchResults, n int) error {
	defer br.Close()
	for i := 0; i < n-1; i++ {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("postgres: update instances: %w", err)
		}
	}
	if _, err := br.Exec(); err != nil {
		s.replica.cache.lose()
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// afterAlone follows a group's commit made without notifying it, when this replica's last
// renewal, which began at, found no other live replica: no other cache holds anything.
// A replica that became live since is not in that list, and answers only from the
// database until leaseGrace after its renewal returned, longer than peersMaxAge after at:
// if the commit was done within peersMaxAge of at, every read that may fill its cache reads
// this commit. If the commit took longer, such a replica may have filled its cache before
// it, so the change is notified now, and the write waits for the live replicas' acks.
func (s *Store) afterAlone(ctx context.Context, updates []versionedInstance, at time.Time) (func() error, error) {
	if fresh(at) {
		return nil, nil
	}
	seq, acks, payload := s.replica.invalidation(updateLines(updates), true)
	return s.notifyAfterCommit(ctx, seq, acks, payload)
}

// notifyAfterCommit notifies a committed write's message (seq, payload) through the
// database, and returns a wait for the live replicas' acks. If it cannot, it fences every
// other replica and returns a wait until their leases are out.
func (s *Store) notifyAfterCommit(ctx context.Context, seq uint64, acks chan string, payload string) (func() error, error) {
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
