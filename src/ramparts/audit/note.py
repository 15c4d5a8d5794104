"""C2SP signed notes (signed-note), with Ed25519 signatures and cosignatures.

A note is UTF-8 text, a blank line, then one or more signature lines
``— <name> base64(key id || signature)``. The text must be ignored unless a
trusted key signed it: :func:`open_note` returns the text only after at least
one signature from a known key verified, and :func:`verify_note` additionally
demands a signature from each *required* key (for example both the log and its
witness).

Signature types (signed-note "Signature types"):

* ``0x01`` Ed25519 over the note text (log checkpoints);
* ``0x04`` timestamped Ed25519 cosignatures (c2sp.org/tlog-cosignature): the
  signature is ``u64 timestamp || Ed25519 sig`` over
  ``"cosignature/v1\\ntime <t>\\n" || text``.

Exceptions::

    NoteError
     ├── KeyFormatError        a vkey or private key string is malformed
     ├── MalformedNoteError    the note does not follow the format
     ├── UnverifiedNoteError   no signature from a known (or required) key
     ├── InvalidSignatureError a known key's signature does not verify
     └── AmbiguousKeyError     two configured keys share name and key id

>>> signer = Signer.generate("example.com/log")
>>> note = signer.sign_note("hello\\n")
>>> open_note(note.encode(), [signer.verifier()]).text
'hello\\n'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

__all__ = [
    "ALG_ED25519",
    "ALG_ED25519_COSIGNATURE_V1",
    "MAX_SIGNATURES",
    "AmbiguousKeyError",
    "Cosigner",
    "InvalidSignatureError",
    "KeyFormatError",
    "MalformedNoteError",
    "Note",
    "NoteError",
    "NoteSignature",
    "Signer",
    "UnverifiedNoteError",
    "Verifier",
    "cosignature_message",
    "key_id",
    "open_note",
    "parse_vkey",
    "verify_note",
]

# signed-note "Signature types".
ALG_ED25519 = 0x01
ALG_ED25519_COSIGNATURE_V1 = 0x04
# signed-note: verifiers SHOULD limit the number of signatures and MUST accept
# at least 16; golang.org/x/mod/sumdb/note rejects more than 100.
MAX_SIGNATURES = 100
_SIG_PREFIX = "\u2014 "  # em dash, space
_COSIGNATURE_HEADER = b"cosignature/v1\n"
_MAX_TIMESTAMP = 2**63 - 1  # tlog-cosignature: timestamp MUST NOT exceed 2^63 - 1


class NoteError(Exception):
    """Base class for signed-note failures."""


class KeyFormatError(NoteError):
    """A verifier key (vkey) or private key string is malformed."""


class MalformedNoteError(NoteError):
    """The note is not a well-formed signed note."""


class UnverifiedNoteError(NoteError):
    """No signature by a known key (or by a required key) verified."""


class InvalidSignatureError(NoteError):
    """A signature line matches a known key by name and id, but does not verify."""


class AmbiguousKeyError(NoteError):
    """Two configured verifiers share a name and key id, so a signature is ambiguous."""


def key_id(name: str, alg: int, public_key: bytes) -> int:
    """Return SHA-256(name || 0x0A || alg || public key)[:4] as a big-endian uint32."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _valid_name(name: str) -> bool:
    """signed-note: key names are non-empty and contain no Unicode spaces and no '+'."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def cosignature_message(text: str, timestamp: int) -> bytes:
    """Return the message a tlog-cosignature/v1 Ed25519 cosigner signs."""
    return _COSIGNATURE_HEADER + f"time {timestamp}\n".encode() + text.encode()


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class Verifier:
    """A trusted public key: name, key id, algorithm and Ed25519 public key."""

    name: str
    key_id: int
    alg: int
    public_key: Ed25519PublicKey = field(repr=False)

    @property
    def vkey(self) -> str:
        """Return the vkey text ``name+hex(id)+base64(alg || key)``."""
        material = base64.b64encode(bytes([self.alg]) + _raw_public(self.public_key)).decode()
        return f"{self.name}+{self.key_id:08x}+{material}"

    def verify(self, text: str, signature: bytes) -> int | None:
        """Verify ``signature`` (without its key id) over ``text``.

        Returns the cosignature timestamp for type 0x04, None for type 0x01.

        Raises:
            InvalidSignatureError: the signature does not verify.
        """
        try:
            if self.alg == ALG_ED25519:
                self.public_key.verify(signature, text.encode())
                return None
            if len(signature) != 8 + 64:
                raise InvalidSignature
            (timestamp,) = struct.unpack(">Q", signature[:8])
            if timestamp > _MAX_TIMESTAMP:
                raise InvalidSignature
            self.public_key.verify(signature[8:], cosignature_message(text, timestamp))
        except InvalidSignature:
            raise InvalidSignatureError(
                f"invalid signature by {self.name}+{self.key_id:08x}"
            ) from None
        return timestamp


def parse_vkey(vkey: str) -> Verifier:
    """Parse a vkey ``<name>+<hex key id>+<base64(type || public key)>``.

    Only Ed25519 (0x01) and Ed25519 cosignature (0x04) keys are accepted, and
    the key id must match the one computed from the name and key.
    """
    # The base64 part may itself contain '+', so split at most twice.
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise KeyFormatError("vkey must have three '+'-separated parts: name, key id, key")
    name, id_hex, material_b64 = parts
    if not _valid_name(name):
        raise KeyFormatError("vkey name is empty or contains a space or '+'")
    if len(id_hex) != 8:
        raise KeyFormatError(f"vkey key id must be 8 hex digits, got {len(id_hex)}")
    try:
        kid = int(id_hex, 16)
        material = base64.b64decode(material_b64, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise KeyFormatError(f"vkey for {name!r} is not hex/base64: {exc}") from exc
    if len(material) != 33 or material[0] not in (ALG_ED25519, ALG_ED25519_COSIGNATURE_V1):
        raise KeyFormatError(
            f"vkey for {name!r}: want type 0x01 or 0x04 and a 32-byte Ed25519 key, "
            f"got {len(material)} bytes"
        )
    alg, raw = material[0], material[1:]
    if key_id(name, alg, raw) != kid:
        raise KeyFormatError(f"vkey for {name!r}: key id {id_hex} does not match the key")
    return Verifier(name, kid, alg, Ed25519PublicKey.from_public_bytes(raw))


class Signer:
    """An Ed25519 note signer (type 0x01). Its repr never shows the private key."""

    alg = ALG_ED25519

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        if not _valid_name(name):
            raise KeyFormatError("signer name is empty or contains a space or '+'")
        self.name = name
        self._key = private_key
        self._public = _raw_public(private_key.public_key())
        self.key_id = key_id(name, self.alg, self._public)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, key_id={self.key_id:08x})"

    @classmethod
    def generate(cls, name: str) -> Signer:
        """Return a signer with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_skey(cls, skey: str) -> Signer:
        """Parse ``PRIVATE+KEY+<name>+<hex id>+base64(type || 32-byte seed)`` (Go note format)."""
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise KeyFormatError("private key must look like PRIVATE+KEY+name+id+key")
        name, id_hex, material_b64 = parts[2:]
        try:
            material = base64.b64decode(material_b64, validate=True)
            kid = int(id_hex, 16)
        except (ValueError, binascii.Error) as exc:
            raise KeyFormatError(f"private key for {name!r} is not hex/base64") from exc
        if len(material) != 33 or material[0] != cls.alg:
            raise KeyFormatError(f"private key for {name!r} has the wrong type or length")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(material[1:]))
        if signer.key_id != kid:
            raise KeyFormatError(f"private key for {name!r}: key id does not match the key")
        return signer

    def skey(self) -> str:
        """Return the private key text; handle it like any other secret."""
        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        material = base64.b64encode(bytes([self.alg]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{material}"

    def verifier(self) -> Verifier:
        """Return the matching public verifier."""
        return Verifier(self.name, self.key_id, self.alg, self._key.public_key())

    def _signature(self, text: str) -> bytes:
        return self._key.sign(text.encode())

    def signature_line(self, text: str) -> str:
        """Return the ``— name base64(id || sig)`` line signing ``text``."""
        _check_text(text)
        blob = struct.pack(">I", self.key_id) + self._signature(text)
        return f"{_SIG_PREFIX}{self.name} {base64.b64encode(blob).decode()}\n"

    def sign_note(self, text: str) -> str:
        """Return ``text`` as a signed note with this signer's signature."""
        return text + "\n" + self.signature_line(text)


class Cosigner(Signer):
    """A tlog-cosignature/v1 Ed25519 cosigner (type 0x04); signatures carry a timestamp."""

    alg = ALG_ED25519_COSIGNATURE_V1

    def _signature(self, text: str) -> bytes:
        return self._signature_at_time(text, int(time.time()))

    def _signature_at_time(self, text: str, timestamp: int) -> bytes:
        # tlog-witness: the cosignature MUST NOT omit the timestamp (zero).
        if not 0 < timestamp <= _MAX_TIMESTAMP:
            raise ValueError(f"cosignature timestamp {timestamp} out of range")
        sig = self._key.sign(cosignature_message(text, timestamp))
        return struct.pack(">Q", timestamp) + sig

    def signature_line_at_time(self, text: str, timestamp: int) -> str:
        """Return a cosignature line with an explicit timestamp (tests and replays)."""
        _check_text(text)
        blob = struct.pack(">I", self.key_id) + self._signature_at_time(text, timestamp)
        return f"{_SIG_PREFIX}{self.name} {base64.b64encode(blob).decode()}\n"


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, key id and the base64 text as it appeared."""

    name: str
    key_id: int
    base64: str
    timestamp: int | None = None


@dataclass(frozen=True)
class Note:
    """A note whose text has been authenticated by at least one known key."""

    text: str
    sigs: tuple[NoteSignature, ...]
    unverified_sigs: tuple[NoteSignature, ...]

    def signed_by(self, verifier: Verifier) -> bool:
        """Return whether ``verifier`` is among the keys that verified this note."""
        return any(s.name == verifier.name and s.key_id == verifier.key_id for s in self.sigs)


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise MalformedNoteError("malformed note: note text must end with a newline")
    if any(c < " " and c != "\n" for c in text):
        raise MalformedNoteError("malformed note: note text contains a control character")


def _split(data: bytes) -> tuple[str, list[str]]:
    """Split a note into its text and signature lines, enforcing the format."""
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedNoteError(
            f"malformed note: note is not valid UTF-8 at byte {exc.start}"
        ) from None
    if any(c < " " and c != "\n" for c in decoded):
        raise MalformedNoteError(
            "malformed note: note contains an ASCII control character other than newline"
        )
    split = decoded.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("malformed note: note has no blank line before its signatures")
    text, block = decoded[: split + 1], decoded[split + 2 :]
    if not block:
        raise MalformedNoteError("malformed note: note has no signature lines")
    if not block.endswith("\n"):
        raise MalformedNoteError("malformed note: last signature line does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(
            f"malformed note: note has {len(lines)} signatures, limit {MAX_SIGNATURES}"
        )
    return text, lines


def _parse_signature_line(line: str, number: int) -> tuple[str, int, bytes, str]:
    if not line.startswith(_SIG_PREFIX):
        raise MalformedNoteError(
            f"malformed note: signature line {number} does not start with an em dash"
        )
    name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
    if not sep or not _valid_name(name) or not b64 or " " in b64:
        raise MalformedNoteError(
            f"malformed note: signature line {number} is not '— <name> <base64>'"
        )
    try:
        blob = base64.b64decode(b64, validate=True)
    except binascii.Error:
        raise MalformedNoteError(
            f"malformed note: signature line {number} is not valid base64"
        ) from None
    if len(blob) < 5:
        raise MalformedNoteError(f"malformed note: signature line {number} is too short")
    return name, int.from_bytes(blob[:4], "big"), blob[4:], b64


def open_note(data: bytes, verifiers: Sequence[Verifier]) -> Note:
    """Parse a signed note and verify every signature from a known key.

    Signatures from unknown keys are kept in ``unverified_sigs`` and ignored.
    A known key's bad signature rejects the whole note (signed-note "SHOULD").

    Raises:
        MalformedNoteError, InvalidSignatureError, AmbiguousKeyError,
        UnverifiedNoteError (no known key signed the note).
    """
    text, lines = _split(data)
    by_key: dict[tuple[str, int], list[Verifier]] = {}
    for v in verifiers:
        by_key.setdefault((v.name, v.key_id), []).append(v)
    sigs: list[NoteSignature] = []
    unverified: list[NoteSignature] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        name, kid, signature, b64 = _parse_signature_line(line, number)
        if line in seen:  # a repeated identical line adds nothing
            continue
        seen.add(line)
        matches = by_key.get((name, kid), [])
        if not matches:
            unverified.append(NoteSignature(name, kid, b64))
            continue
        if len(matches) > 1:
            raise AmbiguousKeyError(f"ambiguous key {name}+{kid:08x}: configured twice")
        timestamp = matches[0].verify(text, signature)
        sigs.append(NoteSignature(name, kid, b64, timestamp))
    if not sigs:
        raise UnverifiedNoteError("no verifiable signatures: note not signed by a known key")
    return Note(text, tuple(sigs), tuple(unverified))


def verify_note(
    data: bytes, required: Sequence[Verifier], optional: Sequence[Verifier] = ()
) -> Note:
    """Open a note and require a valid signature from every key in ``required``.

    Raises:
        UnverifiedNoteError: ``required`` is empty, or one of its keys did not sign.
        (and everything :func:`open_note` raises)
    """
    if not required:
        raise UnverifiedNoteError("no required verifier given; refusing to accept any note")
    note = open_note(data, [*required, *optional])
    for v in required:
        if not note.signed_by(v):
            raise UnverifiedNoteError(f"note lacks a valid signature by {v.name}+{v.key_id:08x}")
    return note
