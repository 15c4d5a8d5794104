CREATE TABLE webhooks (
    id           BIGSERIAL PRIMARY KEY,
    customer_id  TEXT NOT NULL,
    url          TEXT NOT NULL CHECK (length(url) <= 2048),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_customer ON webhooks (customer_id);

CREATE TABLE deliveries (
    id           BIGSERIAL PRIMARY KEY,
    webhook_id   BIGINT NOT NULL REFERENCES webhooks (id),
    event_type   TEXT NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('delivered', 'failed', 'blocked')),
    status_code  INT,
    detail       TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
