CREATE TABLE transfers (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id      TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 128),
    kind             TEXT NOT NULL DEFAULT 'transfer' CHECK (kind IN ('transfer', 'deposit')),
    from_account     TEXT CHECK (length(from_account) = 10 AND from_account NOT GLOB '*[^0-9]*'),
    to_account       TEXT NOT NULL CHECK (length(to_account) = 10 AND to_account NOT GLOB '*[^0-9]*'),
    amount           INTEGER NOT NULL CHECK (amount > 0),
    narration        TEXT NOT NULL DEFAULT '' CHECK (length(narration) <= 140),
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'completed', 'failed')),
    reason           TEXT,
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    UNIQUE (customer_id, idempotency_key)
);
CREATE INDEX transfers_customer_day ON transfers (customer_id, created_at);
