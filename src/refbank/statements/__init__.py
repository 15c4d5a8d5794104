"""Statements: PDF statements rendered from ledger data. May call only the ledger."""
