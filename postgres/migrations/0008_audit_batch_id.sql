-- A batch of audit events carries the id its writer gave it, kept once: a writer may try
-- again an append whose outcome an error left unknown (a connection lost during its
-- commit). Rows from before have none.
ALTER TABLE audit_batches ADD COLUMN batch_id text;
CREATE UNIQUE INDEX audit_batches_by_batch_id ON audit_batches (batch_id);
