"""The ledger: a double-entry journal whose invariants the database enforces."""
