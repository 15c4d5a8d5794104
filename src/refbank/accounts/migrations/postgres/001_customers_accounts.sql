CREATE TABLE customers (
    id          TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    bvn_enc     BYTEA NOT NULL,
    bvn_token   TEXT NOT NULL UNIQUE,
    bvn_last4   TEXT NOT NULL CHECK (bvn_last4 ~ '^[0-9]{4}$'),
    nin_enc     BYTEA NOT NULL,
    nin_token   TEXT NOT NULL UNIQUE,
    nin_last4   TEXT NOT NULL CHECK (nin_last4 ~ '^[0-9]{4}$'),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- NUBAN serials; a counter row rather than a sequence so both engines share the SQL.
CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL CHECK (value < 1000000000));
INSERT INTO counters (name, value) VALUES ('nuban_serial', 999);

CREATE TABLE accounts (
    nuban        TEXT PRIMARY KEY CHECK (nuban ~ '^[0-9]{10}$'),
    customer_id  TEXT NOT NULL REFERENCES customers (id),
    currency     TEXT NOT NULL DEFAULT 'NGN' CHECK (currency = 'NGN'),
    status       TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen', 'closed')),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX accounts_customer ON accounts (customer_id);
