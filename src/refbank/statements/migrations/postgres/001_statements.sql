-- What was issued to whom, so a disputed statement can be matched by its hash.
CREATE TABLE statements (
    id          BIGSERIAL PRIMARY KEY,
    account     TEXT NOT NULL CHECK (account ~ '^[0-9]{10}$'),
    customer_id TEXT NOT NULL,
    month       TEXT NOT NULL CHECK (month ~ '^[0-9]{4}-[0-9]{2}$'),
    sha256      TEXT NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
