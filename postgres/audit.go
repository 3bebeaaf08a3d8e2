package postgres

import (
	"bytes"
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// AppendAudit keeps a batch of audit events as one row of JSON lines. The advisory lock
// makes appends from all replicas one after the other, so the list's order (id) is the
// order of commits and last_seq = the previous last_seq + n is race-free.
func (s *Store) AppendAudit(ctx context.Context, events [][]byte) error {
	if len(events) == 0 {
		return nil
	}
	blob := bytes.Join(events, []byte{'\n'})
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockAudit); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO audit_batches (last_seq, events)
			VALUES (coalesce((SELECT last_seq FROM audit_batches ORDER BY id DESC LIMIT 1), 0) + $1, $2)`, len(events), blob)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: keep audit events: %w", err)
	}
	return nil
}

// PruneAudit deletes the oldest rows of audit events, keeping at least the newest keep.
func (s *Store) PruneAudit(ctx context.Context, keep int) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM audit_batches
		WHERE last_seq <= (SELECT last_seq FROM audit_batches ORDER BY id DESC LIMIT 1) - $1`, keep)
	if err != nil {
		return fmt.Errorf("postgres: prune audit events: %w", err)
	}
	return nil
}

// AuditEvents returns every kept audit event, oldest first.
func (s *Store) AuditEvents(ctx context.Context) ([][]byte, error) {
	rows, err := s.pool.Query(ctx, `SELECT events FROM audit_batches ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list audit events: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var blob []byte
		if err := rows.Scan(&blob); err != nil {
			return nil, err
		}
		out = append(out, bytes.Split(blob, []byte{'\n'})...)
	}
	return out, rows.Err()
}
