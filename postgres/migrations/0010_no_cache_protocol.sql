-- Every request reads PostgreSQL, and no replica keeps a copy of what another can change.
-- What only the cache coherence between replicas used goes: the table of replicas, the
-- instances' versions and their sequence, and the secret of the replicas' own port. (A
-- database made after this migration was written never had them.)
DROP TABLE IF EXISTS replicas;
ALTER TABLE instances DROP COLUMN IF EXISTS version;
DROP SEQUENCE IF EXISTS instance_version;
DELETE FROM settings WHERE name = 'peer_secret';
