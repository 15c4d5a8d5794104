"""Errors raised by the identity piece.

The tree, so callers can choose which level to catch::

    IdentityError
    ├── InsecureFileError        a key or passphrase file readable by group/others
    ├── CAStateError             the CA directory is missing, corrupt or locked
    ├── IssuanceRefused          the CA will not sign this request (wrong ID, bad CSR)
    ├── InvalidSVIDError         a certificate breaks the X.509-SVID rules
    │   └── PeerIdentityError    the peer of a TLS connection is not who we require
    └── IdentityExpiredError     an SVID or CA expired and could not be renewed
"""

from __future__ import annotations


class IdentityError(Exception):
    """Base of every error raised by :mod:`ramparts.identity`."""

    def diagnostics(self) -> str:
        """Advice for the person at the CLI; defaults to the message."""
        return str(self)


class InsecureFileError(IdentityError):
    """A private file (CA key, passphrase) has permissions that expose it."""


class CAStateError(IdentityError):
    """The CA's directory cannot be used as it is."""


class IssuanceRefused(IdentityError):
    """The CA refuses to sign: the request asks for an identity the caller does not hold."""


class InvalidSVIDError(IdentityError):
    """A certificate is not a valid X.509-SVID for our trust domain."""


class PeerIdentityError(InvalidSVIDError):
    """The verified peer certificate does not carry the identity we require."""


class IdentityExpiredError(IdentityError):
    """An SVID (or a CA) expired without renewal: the workload is stranded.

    ``str(exc)`` says what expired; :meth:`diagnostics` says how to recover.
    """

    def __init__(self, message: str, *, advice: str) -> None:
        super().__init__(message)
        self.advice = advice

    def diagnostics(self) -> str:
        return f"{self}\n\nHow to recover:\n{self.advice}"
