-- The control API pages audit events by their number (a cursor): read from an index,
-- not by scanning every kept batch. Appends and pruning read max(last_seq) from it too.
CREATE UNIQUE INDEX audit_batches_by_seq ON audit_batches(last_seq);
