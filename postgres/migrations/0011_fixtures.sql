-- Fixtures: state a test made at run time from a seed document (its completed document as
-- JSON, and its API keys' hashes by principal), owning the accounts, instances and
-- principals it made and the fault rules scoped to it: deleting a fixture deletes them.
CREATE TABLE fixtures (
    id         text PRIMARY KEY,
    created_at timestamptz NOT NULL,
    seed       bytea NOT NULL,
    key_hashes bytea NOT NULL
);
ALTER TABLE accounts ADD COLUMN fixture_id text REFERENCES fixtures(id) ON DELETE CASCADE;
ALTER TABLE instances ADD COLUMN fixture_id text REFERENCES fixtures(id) ON DELETE CASCADE;
ALTER TABLE principals ADD COLUMN fixture_id text REFERENCES fixtures(id) ON DELETE CASCADE;
ALTER TABLE fault_rules ADD COLUMN fixture_id text REFERENCES fixtures(id) ON DELETE CASCADE;
CREATE INDEX accounts_by_fixture ON accounts(fixture_id) WHERE fixture_id IS NOT NULL;
CREATE INDEX instances_by_fixture ON instances(fixture_id) WHERE fixture_id IS NOT NULL;
CREATE INDEX principals_by_fixture ON principals(fixture_id) WHERE fixture_id IS NOT NULL;
CREATE INDEX fault_rules_by_fixture ON fault_rules(fixture_id) WHERE fixture_id IS NOT NULL;
