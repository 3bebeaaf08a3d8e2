-- What Global Search, Global Catalog and Resource Controller show: an instance's name and
-- tags (one a line), and a plan's catalog entry (its id, display name and pricing type).
ALTER TABLE instances ADD COLUMN name TEXT;
ALTER TABLE instances ADD COLUMN tags TEXT;
ALTER TABLE plans ADD COLUMN catalog_id TEXT;
ALTER TABLE plans ADD COLUMN display_name TEXT;
ALTER TABLE plans ADD COLUMN pricing_type TEXT;
