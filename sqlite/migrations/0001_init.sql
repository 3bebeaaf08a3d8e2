-- The service's state: accounts and their plans, instances and their usage, principals,
-- their API keys (hashed) and policies, kept audit events, and settings.
CREATE TABLE accounts (
    id         TEXT PRIMARY KEY,
    configured INTEGER NOT NULL
);

CREATE TABLE plans (
    account_id               TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    position                 INTEGER NOT NULL,
    plan_id                  TEXT NOT NULL,
    usage_allocation_seconds INTEGER,
    usage_limit_seconds      INTEGER,
    backends                 TEXT NOT NULL,
    max_ttl                  INTEGER,
    active_ttl               INTEGER,
    interactive_ttl          INTEGER,
    start_time               TEXT,
    end_time                 TEXT,
    PRIMARY KEY (account_id, plan_id)
);

CREATE TABLE instances (
    crn                      TEXT PRIMARY KEY,
    account_id               TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    plan_id                  TEXT NOT NULL,
    backends                 TEXT NOT NULL, -- one backend name a line
    usage_allocation_seconds INTEGER,
    instance_limit           REAL,
    qctrl_enabled            INTEGER,
    period_start             TEXT,
    period_end               TEXT,
    consumed_seconds         REAL NOT NULL DEFAULT 0
);
CREATE INDEX instances_by_account ON instances(account_id);

CREATE TABLE principals (
    id         TEXT PRIMARY KEY,
    type       TEXT NOT NULL,
    name       TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE
);

CREATE TABLE api_keys (
    hash         TEXT PRIMARY KEY,
    principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE
);

CREATE TABLE policies (
    principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    role         TEXT NOT NULL,
    account_id   TEXT NOT NULL,
    instance_crn TEXT NOT NULL DEFAULT ''
);
CREATE INDEX policies_by_principal ON policies(principal_id);

-- Audit events, one row per write of the server's audit writer: its events as JSON lines.
-- last_seq numbers events across rows, for pruning by count.
CREATE TABLE audit_batches (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    last_seq INTEGER NOT NULL,
    events   BLOB NOT NULL
);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
