-- Audit batches are JSON lines, a few KiB each, and were compressed with pglz, which took
-- about a seventh of PostgreSQL's CPU under load (a perf profile of the mix). lz4 compresses
-- them several times faster. A server built without lz4, or older than 14 (no per-column
-- compression), keeps pglz.
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 140000 THEN
        ALTER TABLE audit_batches ALTER COLUMN events SET COMPRESSION lz4;
    END IF;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this server has no lz4: audit batches stay compressed with pglz';
END
$$;
