CREATE TABLE transfers (
    id               BIGSERIAL PRIMARY KEY,
    customer_id      TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 128),
    kind             TEXT NOT NULL DEFAULT 'transfer' CHECK (kind IN ('transfer', 'deposit')),
    from_account     TEXT CHECK (from_account ~ '^[0-9]{10}$'),
    to_account       TEXT NOT NULL CHECK (to_account ~ '^[0-9]{10}$'),
    amount           BIGINT NOT NULL CHECK (amount > 0),
    narration        TEXT NOT NULL DEFAULT '' CHECK (length(narration) <= 140),
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'completed', 'failed')),
    reason           TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (customer_id, idempotency_key)
);
CREATE INDEX transfers_customer_day ON transfers (customer_id, created_at);
