CREATE TABLE statements (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account     TEXT NOT NULL CHECK (length(account) = 10 AND account NOT GLOB '*[^0-9]*'),
    customer_id TEXT NOT NULL,
    month       TEXT NOT NULL CHECK (month GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]'),
    sha256      TEXT NOT NULL CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
