-- Fault rules of the control API: the rule as JSON (match, effect, schedule), and how many
-- matching requests it saw and fired on, counted in the transaction that decides.
CREATE TABLE fault_rules (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    id   TEXT NOT NULL UNIQUE,
    rule BLOB NOT NULL,
    seen INTEGER NOT NULL DEFAULT 0,
    hits INTEGER NOT NULL DEFAULT 0
);
