package postgres

import (
	"bytes"
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/qrapi/qrapi/domain"
)

// AppendAudit keeps a batch of audit events as one row of JSON lines. The advisory lock
// makes appends from all replicas one after the other, so the list's order (id) is the
// order of commits and last_seq = the previous last_seq + n is race-free. A batch whose id
// is kept already is not kept again (domain.Store).
func (s *Store) AppendAudit(ctx context.Context, id string, events [][]byte) error {
	if len(events) == 0 {
		return nil
	}
	blob := bytes.Join(events, []byte{'\n'})
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockAudit); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO audit_batches (batch_id, last_seq, events)
			VALUES ($1, coalesce((SELECT last_seq FROM audit_batches ORDER BY id DESC LIMIT 1), 0) + $2, $3)
			ON CONFLICT (batch_id) DO NOTHING`, id, len(events), blob)
		return err
	})
	if err != nil {
		return dbError("keep audit events", err)
	}
	return nil
}

// PruneAudit deletes the oldest rows of audit events, keeping at least the newest keep.
func (s *Store) PruneAudit(ctx context.Context, keep int) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM audit_batches
		WHERE last_seq <= (SELECT last_seq FROM audit_batches ORDER BY id DESC LIMIT 1) - $1`, keep)
	if err != nil {
		return dbError("prune audit events", err)
	}
	return nil
}

// AuditEvents reads one page of the kept audit events (domain.PageAudit).
func (s *Store) AuditEvents(ctx context.Context, q domain.AuditQuery) (domain.AuditPage, error) {
	page, err := domain.PageAudit(q, func(after int64, n int) ([]domain.AuditBatch, error) {
		rows, err := s.pool.Query(ctx, `SELECT last_seq, events FROM audit_batches WHERE last_seq > $1 ORDER BY last_seq LIMIT $2`, after, n)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.AuditBatch, error) {
			var b domain.AuditBatch
			err := r.Scan(&b.LastSeq, &b.Events)
			return b, err
		})
	})
	if err != nil && domain.ErrorCode(err) == domain.EINTERNAL {
		err = dbError("list audit events", err)
	}
	return page, err
}
