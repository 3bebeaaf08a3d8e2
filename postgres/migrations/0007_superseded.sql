-- Superseded by migration 0010, which drops what this one made: a new database skips it.
-- (Migrations are numbered by position, so the file stays.)
SELECT 1;
