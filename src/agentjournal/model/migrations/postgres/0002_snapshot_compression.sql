-- Snapshots are read whole on every load of a long run: compress them with lz4 (PostgreSQL 14+, when the
-- server was built with it), which reads back several times faster than the default pglz. Elsewhere the
-- column keeps the default; nothing else changes.
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 140000 THEN
        EXECUTE 'ALTER TABLE aj_snapshots ALTER COLUMN state SET COMPRESSION lz4';
    END IF;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    NULL;
END
$$;
