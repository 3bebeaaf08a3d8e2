-- The service's state: accounts and their plans, instances and their usage, principals,
-- their API keys (hashed) and policies, kept audit events, and settings. The same tables
-- as the SQLite engine's, in PostgreSQL's types.
CREATE TABLE accounts (
    id         text PRIMARY KEY,
    configured boolean NOT NULL
);

CREATE TABLE plans (
    account_id               text NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    position                 integer NOT NULL,
    plan_id                  text NOT NULL,
    usage_allocation_seconds bigint,
    usage_limit_seconds      bigint,
    backends                 text[] NOT NULL,
    max_ttl                  bigint,
    active_ttl               bigint,
    interactive_ttl          bigint,
    start_time               timestamptz,
    end_time                 timestamptz,
    PRIMARY KEY (account_id, plan_id)
);

CREATE TABLE instances (
    crn                      text PRIMARY KEY,
    account_id               text NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    plan_id                  text NOT NULL,
    backends                 text[] NOT NULL,
    usage_allocation_seconds bigint,
    instance_limit           double precision,
    qctrl_enabled            boolean,
    period_start             timestamptz,
    period_end               timestamptz,
    consumed_seconds         double precision NOT NULL DEFAULT 0
);
CREATE INDEX instances_by_account ON instances(account_id);

CREATE TABLE principals (
    id         text PRIMARY KEY,
    type       text NOT NULL,
    name       text NOT NULL,
    account_id text NOT NULL REFERENCES accounts(id) ON DELETE CASCADE
);

CREATE TABLE api_keys (
    hash         text PRIMARY KEY,
    principal_id text NOT NULL REFERENCES principals(id) ON DELETE CASCADE
);

CREATE TABLE policies (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    principal_id text NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    role         text NOT NULL,
    account_id   text NOT NULL,
    instance_crn text NOT NULL DEFAULT ''
);
CREATE INDEX policies_by_principal ON policies(principal_id);

-- Audit events, one row per write of a replica's audit writer: its events as JSON lines.
-- Appends take a transaction-level advisory lock, so id order is commit order and
-- last_seq (events numbered across rows, for pruning by count) has no race.
CREATE TABLE audit_batches (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    last_seq bigint NOT NULL,
    events   bytea NOT NULL
);

CREATE TABLE settings (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);
