"""Encryption and tokenisation of national identifiers (BVN, NIN) at rest.

A BVN is 11 digits: a plain hash of one is reversed by trying all 10^11
values, minutes on one GPU. So the value is encrypted (AES-256-GCM, the field
name and record id bound in as associated data), and the lookup token that
enforces "one customer per BVN" is an HMAC under a separate key derived from
the service's data key (HKDF), which never leaves the process.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12
VERSION = b"\x01"  # leading version byte, so the scheme can change


class PIIVault:
    def __init__(self, data_key: bytes) -> None:
        if len(data_key) != 32:
            raise ValueError(f"data key must be 32 bytes, got {len(data_key)}")
        derive = lambda info: HKDF(hashes.SHA256(), 32, salt=None, info=info).derive(data_key)  # noqa: E731
        self._aead = AESGCM(derive(b"refbank pii encryption v1"))
        self._mac_key = derive(b"refbank pii token v1")

    def __repr__(self) -> str:
        return "PIIVault(<keys hidden>)"

    def encrypt(self, field: str, record_id: str, value: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        aad = f"{field}\x00{record_id}".encode()
        return VERSION + nonce + self._aead.encrypt(nonce, value.encode(), aad)

    def decrypt(self, field: str, record_id: str, blob: bytes) -> str:
        if blob[:1] != VERSION:
            raise ValueError(f"unknown PII ciphertext version for {field}")
        nonce, ct = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        return self._aead.decrypt(nonce, ct, f"{field}\x00{record_id}".encode()).decode()

    def token(self, field: str, value: str) -> str:
        return hmac.new(self._mac_key, f"{field}\x00{value}".encode(), hashlib.sha256).hexdigest()


def masked_identifier(last4: str, length: int = 11) -> str:
    """How a BVN or NIN is shown: its shape, and only its last four digits."""
    return "*" * (length - len(last4)) + last4
