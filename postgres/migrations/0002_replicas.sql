-- Replicas that keep a cache, with their lease. A replica renews its row every 250 ms and
-- uses its cache only while its lease (1 s from its last renewal) holds; a writer waits
-- until every replica whose row is recent has acknowledged dropping what the write changed,
-- or fences it (a fenced replica's renewals fail) and waits out its lease.
CREATE TABLE replicas (
    id      text PRIMARY KEY,
    seen    timestamptz NOT NULL,
    fenced  boolean NOT NULL DEFAULT false
);
