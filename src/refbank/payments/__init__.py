"""Payments: transfers between accounts, idempotent, within per-customer daily limits."""
