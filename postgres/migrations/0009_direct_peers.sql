-- Instance writes are sent straight from replica to replica (direct.go), where a message
-- may arrive after a later change's, even after a reset's. So that a replica can tell
-- which state is newer, an instance's version comes from one sequence: it grows with each
-- update and across a reset (Load inserts the rows anew), where it used to count one row's
-- updates from 0.
CREATE SEQUENCE instance_version;
SELECT setval('instance_version', greatest(1, (SELECT coalesce(max(version), 0) FROM instances)));
ALTER TABLE instances ALTER COLUMN version SET DEFAULT nextval('instance_version');
-- Where a replica takes those messages (host:port), or null: it takes none, and writes
-- notify it through the database.
ALTER TABLE replicas ADD COLUMN peer_addr text;
