"""Errors of the secrets broker, each mapped to one HTTP status in the Vault-style API.

::

    SecretsError                  500 (an internal failure; message safe to show)
    ├── SealedError               503 the barrier is sealed
    ├── BarrierError              500 a stored record failed authentication (tampering)
    ├── PermissionDenied          403 missing, bad, expired or misbound token; policy says no
    ├── InvalidRequest            400 malformed input, check-and-set mismatch, bad lease
    ├── NotFound                  404 no such secret / route
    ├── UnsupportedOperation      405 the route exists, the operation does not
    └── AuditFailure              500 the audit sink could not record: the request fails

Messages never contain a secret value: they name the field, not its content.
"""

from __future__ import annotations


class SecretsError(Exception):
    status = 500


class SealedError(SecretsError):
    status = 503

    def __init__(self, message: str = "Vault is sealed") -> None:
        super().__init__(message)


class BarrierError(SecretsError):
    status = 500


class PermissionDenied(SecretsError):
    status = 403

    def __init__(self, message: str = "permission denied") -> None:
        super().__init__(message)


class InvalidRequest(SecretsError):
    status = 400


class NotFound(SecretsError):
    status = 404


class UnsupportedOperation(SecretsError):
    status = 405


class AuditFailure(SecretsError):
    status = 500
