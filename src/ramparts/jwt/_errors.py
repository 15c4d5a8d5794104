"""The exception tree of ``ramparts.jwt`` (drawn in the package docstring).

Every rejection carries a short machine ``reason`` code (stable, for events,
metrics and the CLI's ``--json``) and a human ``message`` that names what was
wrong and where. Messages never contain the token, its signature or key
material; values taken from the token are shortened before they are quoted.
"""

from __future__ import annotations

from typing import ClassVar

#: Longest excerpt of an untrusted value quoted in a message.
_QUOTE_LIMIT = 64


def quote_untrusted(value: object) -> str:
    """``repr`` of an untrusted value, cut to a length that is safe to log."""
    text = repr(value)
    if len(text) > _QUOTE_LIMIT:
        return text[: _QUOTE_LIMIT - 3] + "..."
    return text


class JWTError(Exception):
    """Base class: the token was not accepted.

    ``reason`` is a short machine code; ``str(exc)`` is the human message.
    """

    #: The reason codes this class may carry; the first is its default.
    reasons: ClassVar[tuple[str, ...]] = ("rejected",)

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        code = reason or self.reasons[0]
        if code not in self.reasons:
            # A code outside the documented set is a programming error here,
            # not a token problem, so it must not be swallowed as a rejection.
            raise ValueError(f"{type(self).__name__} has no reason code {code!r}")
        self.reason = code
        self.message = message


class MalformedTokenError(JWTError):
    """The token is not a well-formed compact JWS carrying a JSON claims object."""

    reasons = ("malformed", "too_large", "bad_encoding", "bad_json", "duplicate_member")


class HeaderRejectedError(JWTError):
    """The JOSE header asks for something the policy refuses."""

    reasons = ("alg_not_allowed", "alg_none", "crit_unsupported", "bad_header")


class KeyResolutionError(JWTError):
    """No trusted key could be chosen to verify the token."""

    reasons = ("unknown_kid", "kid_required", "key_mismatch", "jwks_unavailable")


class SignatureInvalidError(JWTError):
    """The signature does not verify with the selected trusted key."""

    reasons = ("bad_signature",)


class ClaimsRejectedError(JWTError):
    """The signature is good but the claims do not satisfy the issuer policy."""

    reasons = (
        "expired",
        "not_yet_valid",
        "issued_in_future",
        "unknown_issuer",
        "issuer_mismatch",
        "audience_mismatch",
        "missing_claim",
        "bad_claim_type",
    )


class InsufficientScopeError(JWTError):
    """The token is valid but lacks a scope the route requires (HTTP 403, not 401)."""

    reasons = ("insufficient_scope",)


class JWKSError(Exception):
    """A JWKS document (or one of its keys) is unusable; raised while loading keys.

    This is a configuration/upstream problem, not a verdict on a token. A token
    that cannot be verified because of it is rejected with
    :class:`KeyResolutionError` (``jwks_unavailable``).
    """
