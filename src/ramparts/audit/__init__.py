"""Tamper-evident audit log: an RFC 6962 Merkle log with signed, witnessed checkpoints.

Sub-modules: ``merkle`` (hashing and proofs), ``note`` (C2SP signed notes and
cosignatures), ``checkpoint`` (tlog-checkpoint), ``store`` (SQLite/PostgreSQL),
``log`` (the append path), ``server`` (HTTP API), ``witness`` (cosigner),
``verify`` and ``cli`` (offline audit).
"""
