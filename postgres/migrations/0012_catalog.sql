-- What Global Search, Global Catalog and Resource Controller show: an instance's name and
-- tags, and a plan's catalog entry (its id, display name and pricing type).
ALTER TABLE instances ADD COLUMN name text, ADD COLUMN tags text[];
ALTER TABLE plans ADD COLUMN catalog_id text, ADD COLUMN display_name text, ADD COLUMN pricing_type text;
