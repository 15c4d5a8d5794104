"""Shamir's secret sharing over GF(2^8), the layout HashiCorp Vault uses.

Each byte of the secret is the constant term of its own random polynomial of
degree ``threshold - 1``; a share is the polynomials evaluated at one non-zero
``x``, with ``x`` appended as the last byte (``y_0 .. y_{n-1} || x``), as in
Vault's ``shamir`` package. Any ``threshold`` shares give the secret back by
Lagrange interpolation at 0; fewer give bytes that are statistically unrelated
to it, which the barrier then rejects (its AES-GCM tag fails), so a wrong or
short set of shares never unseals anything.

Field arithmetic is carry-less multiplication modulo the AES polynomial
x^8 + x^4 + x^3 + x + 1 (0x11B), written without lookup tables or
data-dependent branches. (CPython integers are not constant-time; unseal runs a
handful of times per process life, on the operator's machine.)
"""

from __future__ import annotations

import secrets

MAX_SHARES = 255
_SYSRAND = secrets.SystemRandom()


class ShamirError(ValueError):
    """The split parameters or the shares offered for combining are malformed."""


def _mul(a: int, b: int) -> int:
    """a * b in GF(2^8) modulo 0x11B."""
    product = 0
    for _ in range(8):
        product ^= a & -(b & 1)
        a = ((a << 1) ^ (0x11B & -(a >> 7))) & 0xFF
        b >>= 1
    return product


def _inv(a: int) -> int:
    """a^-1 = a^254 (Fermat); 0 has no inverse, and callers never pass it."""
    result, base, exp = 1, a, 254
    while exp:
        if exp & 1:
            result = _mul(result, base)
        base = _mul(base, base)
        exp >>= 1
    return result


def _eval(coefficients: list[int], x: int) -> int:
    """Horner's rule; coefficients[0] is the constant term."""
    acc = 0
    for c in reversed(coefficients):
        acc = _mul(acc, x) ^ c
    return acc


def split(secret: bytes, shares: int, threshold: int) -> list[bytes]:
    """Split ``secret`` into ``shares`` parts, any ``threshold`` of which rebuild it."""
    if not secret:
        raise ShamirError("cannot split an empty secret")
    if not 2 <= threshold <= shares <= MAX_SHARES:
        raise ShamirError(
            f"need 2 <= threshold <= shares <= {MAX_SHARES}, "
            f"got threshold={threshold} shares={shares}"
        )
    xs = _SYSRAND.sample(range(1, 256), shares)
    out = [bytearray(len(secret) + 1) for _ in range(shares)]
    for i, byte in enumerate(secret):
        poly = [byte, *secrets.token_bytes(threshold - 1)]
        for share, x in zip(out, xs, strict=True):
            share[i] = _eval(poly, x)
    for share, x in zip(out, xs, strict=True):
        share[-1] = x
    return [bytes(s) for s in out]


def combine(parts: list[bytes]) -> bytes:
    """Rebuild the secret from shares made by :func:`split`.

    Checks only the shape (at least two shares, equal lengths, distinct
    non-zero ``x``); whether they were enough of the right ones is for the
    caller to verify, by authenticating what the result decrypts.
    """
    if len(parts) < 2:
        raise ShamirError(f"need at least 2 shares to combine, got {len(parts)}")
    length = len(parts[0])
    if length < 2 or any(len(p) != length for p in parts):
        raise ShamirError("shares must all be the same length, at least 2 bytes")
    xs = [p[-1] for p in parts]
    if 0 in xs or len(set(xs)) != len(xs):
        raise ShamirError("shares must have distinct, non-zero x coordinates")
    # Lagrange basis at 0: l_j = prod_{m != j} x_m / (x_m - x_j); minus is XOR here.
    basis = []
    for j, xj in enumerate(xs):
        num, den = 1, 1
        for m, xm in enumerate(xs):
            if m != j:
                num = _mul(num, xm)
                den = _mul(den, xm ^ xj)
        basis.append(_mul(num, _inv(den)))
    secret = bytearray(length - 1)
    for i in range(length - 1):
        acc = 0
        for part, lj in zip(parts, basis, strict=True):
            acc ^= _mul(part[i], lj)
        secret[i] = acc
    return bytes(secret)
