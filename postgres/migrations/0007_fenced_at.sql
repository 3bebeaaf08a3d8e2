-- When a replica was fenced. A fenced replica renews no more, but the lease of its last
-- renewal may hold until leaseTTL after the fencing, and with it its cache: a write whose
-- list of replicas was read in that time waits for its ack or until that lease is out.
ALTER TABLE replicas ADD COLUMN fenced_at timestamptz;
