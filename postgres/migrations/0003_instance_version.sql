-- Each instance row counts its updates, so that a replica's cache keeps the newest state
-- it has seen, whether from a read or from a write's notification.
ALTER TABLE instances ADD COLUMN version bigint NOT NULL DEFAULT 0;
