-- A posting moves `amount` (minor units, kobo) from `debit` to `credit` in one
-- row, so every posting balances by construction (the "transfer" shape of a
-- double-entry journal). Balances are derived from postings by the trigger
-- below, in the same transaction; no code path can change one without the other.
CREATE TABLE ledger_accounts (
    account     TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('customer', 'internal')),
    owner       TEXT,
    balance     BIGINT NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT customer_account_is_nuban CHECK (kind = 'internal' OR account ~ '^[0-9]{10}$'),
    CONSTRAINT internal_account_is_named CHECK (kind = 'customer' OR account LIKE 'internal:%'),
    CONSTRAINT no_overdraft CHECK (kind = 'internal' OR balance >= 0)
);

CREATE TABLE postings (
    id               BIGSERIAL PRIMARY KEY,
    idempotency_key  TEXT NOT NULL UNIQUE CHECK (length(idempotency_key) BETWEEN 1 AND 128),
    debit            TEXT NOT NULL REFERENCES ledger_accounts (account),
    credit           TEXT NOT NULL REFERENCES ledger_accounts (account),
    amount           BIGINT NOT NULL CHECK (amount > 0),
    narration        TEXT NOT NULL DEFAULT '' CHECK (length(narration) <= 140),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT two_sides CHECK (debit <> credit)
);
CREATE INDEX postings_debit ON postings (debit, id);
CREATE INDEX postings_credit ON postings (credit, id);

CREATE FUNCTION apply_posting() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ledger_accounts SET balance = balance - NEW.amount WHERE account = NEW.debit;
    UPDATE ledger_accounts SET balance = balance + NEW.amount WHERE account = NEW.credit;
    RETURN NEW;
END $$;
CREATE TRIGGER postings_apply AFTER INSERT ON postings
    FOR EACH ROW EXECUTE FUNCTION apply_posting();

-- The journal is append-only: a correction is a new posting, never an edit.
CREATE FUNCTION postings_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'postings are append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER postings_no_update_or_delete BEFORE UPDATE OR DELETE OR TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION postings_append_only();

-- Balances change only through postings.
CREATE FUNCTION balance_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.balance <> OLD.balance AND pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'balances change only through postings' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER ledger_accounts_balance_guard BEFORE UPDATE ON ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION balance_guard();

-- Where money enters and leaves the bank; may go negative.
INSERT INTO ledger_accounts (account, kind) VALUES ('internal:settlement', 'internal');
