package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/internal/groupcommit"
)

// Group commit (internal/groupcommit): the changes queued at one moment are applied in one
// transaction, with one lock of each row and one commit, and every caller is answered
// after the commit.

// commitGroup is the queue's CommitFunc: applyGroup under a deadline.
func (s *Store) commitGroup(group []*groupcommit.Request, results []groupcommit.Result) (func() error, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return nil, s.applyGroup(ctx, group, results)
}

// applyGroup commits a group's changes in two round trips: BEGIN with the lock of the
// rows, then the updates and COMMIT. The rows stay locked only for the second (and the
// commit's fsync), so that a group through another replica waits less for them.
func (s *Store) applyGroup(ctx context.Context, group []*groupcommit.Request, results []groupcommit.Result) error {
	crns := groupcommit.CRNs(group) // rows locked in one order by every replica: no deadlock
	var (
		conn    *pgxpool.Conn
		current map[string]*domain.Instance
	)
	err := s.again(ctx, func() (err error) {
		conn, current, err = s.lockRows(ctx, crns)
		return err
	})
	if err != nil {
		return dbError("lock instances", err)
	}
	defer func() {
		// A transaction left open (a failure part-way, or nothing to write) is ended here;
		// a connection that cannot end it is closed as it goes back to the pool.
		if conn.Conn().PgConn().TxStatus() != 'I' {
			conn.Exec(context.Background(), "ROLLBACK")
		}
		conn.Release()
	}()
	changed := groupcommit.Apply(group, results, current)
	if len(changed) == 0 {
		return nil // every change was refused: nothing to write
	}
	b := &pgx.Batch{}
	for _, crn := range changed {
		in := current[crn]
		var pStart, pEnd *time.Time
		if in.UsagePeriod != nil {
			pStart, pEnd = &in.UsagePeriod.Start, &in.UsagePeriod.End
		}
		b.Queue(`UPDATE instances SET instance_limit = $1, period_start = $2, period_end = $3, consumed_seconds = $4 WHERE crn = $5`,
			in.InstanceLimitSeconds, pStart, pEnd, in.ConsumedSeconds, crn)
	}
	b.Queue(`COMMIT`)
	return dbError("update instances", conn.SendBatch(ctx, b).Close())
}

// lockRows acquires a connection and begins a transaction on it that holds the rows of
// crns locked: the instances by CRN. Nothing is written yet, so a failure may be tried
// again.
func (s *Store) lockRows(ctx context.Context, crns []string) (*pgxpool.Conn, map[string]*domain.Instance, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	current := map[string]*domain.Instance{}
	b.Queue(`SELECT `+readColumns+` FROM instances WHERE crn = ANY($1) ORDER BY crn FOR UPDATE`, crns).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			in, err := scanInstance(rows)
			if err != nil {
				return err
			}
			current[in.CRN] = in
		}
		return rows.Err()
	})
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		conn.Conn().Close(context.Background()) // its transaction's state is unknown
		conn.Release()
		return nil, nil, err
	}
	return conn, current, nil
}
