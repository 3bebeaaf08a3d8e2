-- Fault rules of the control API: the rule as JSON (match, effect, schedule), and how many
-- matching requests it saw and fired on, counted in the transaction that decides, under
-- the row's lock, so that a count is exact across replicas.
CREATE TABLE fault_rules (
    seq  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id   text NOT NULL UNIQUE,
    rule bytea NOT NULL,
    seen bigint NOT NULL DEFAULT 0,
    hits bigint NOT NULL DEFAULT 0
);
