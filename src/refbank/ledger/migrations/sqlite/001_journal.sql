-- The same journal as on PostgreSQL (see migrations/postgres): one row per
-- posting, balances kept by triggers, history append-only.
CREATE TABLE ledger_accounts (
    account     TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('customer', 'internal')),
    owner       TEXT,
    balance     INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    CONSTRAINT customer_account_is_nuban CHECK (kind = 'internal' OR (length(account) = 10 AND account NOT GLOB '*[^0-9]*')),
    CONSTRAINT internal_account_is_named CHECK (kind = 'customer' OR account LIKE 'internal:%'),
    CONSTRAINT no_overdraft CHECK (kind = 'internal' OR balance >= 0)
);

CREATE TABLE postings (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key  TEXT NOT NULL UNIQUE CHECK (length(idempotency_key) BETWEEN 1 AND 128),
    debit            TEXT NOT NULL REFERENCES ledger_accounts (account),
    credit           TEXT NOT NULL REFERENCES ledger_accounts (account),
    amount           INTEGER NOT NULL CHECK (typeof(amount) = 'integer' AND amount > 0),
    narration        TEXT NOT NULL DEFAULT '' CHECK (length(narration) <= 140),
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    CONSTRAINT two_sides CHECK (debit <> credit)
);
CREATE INDEX postings_debit ON postings (debit, id);
CREATE INDEX postings_credit ON postings (credit, id);

CREATE TRIGGER postings_apply AFTER INSERT ON postings BEGIN
    UPDATE ledger_accounts SET balance = balance - NEW.amount WHERE account = NEW.debit;
    UPDATE ledger_accounts SET balance = balance + NEW.amount WHERE account = NEW.credit;
END;

CREATE TRIGGER postings_no_update BEFORE UPDATE ON postings BEGIN
    SELECT RAISE(ABORT, 'postings are append-only (UPDATE refused)');
END;
CREATE TRIGGER postings_no_delete BEFORE DELETE ON postings BEGIN
    SELECT RAISE(ABORT, 'postings are append-only (DELETE refused)');
END;

-- A balance may only ever equal what the postings say it is.
CREATE TRIGGER ledger_accounts_balance_guard BEFORE UPDATE OF balance ON ledger_accounts
WHEN NEW.balance <> coalesce((SELECT sum(amount) FROM postings WHERE credit = NEW.account), 0)
                  - coalesce((SELECT sum(amount) FROM postings WHERE debit = NEW.account), 0)
BEGIN
    SELECT RAISE(ABORT, 'balances change only through postings');
END;

INSERT INTO ledger_accounts (account, kind) VALUES ('internal:settlement', 'internal');
