"""Signed notes, cosignatures, checkpoints (C2SP signed-note, tlog-cosignature, tlog-checkpoint)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from ramparts.audit.checkpoint import Checkpoint, CheckpointFormatError
from ramparts.audit.note import (
    ALG_ED25519_COSIGNATURE_V1,
    Cosigner,
    InvalidSignatureError,
    MalformedNoteError,
    Signer,
    UnverifiedNoteError,
    cosignature_message,
    open_note,
    parse_vkey,
    verify_note,
)

TEXT = "example.com/log\n5\n" + base64.b64encode(bytes(32)).decode() + "\n"


class TestSigner:
    def test_signature_verifies_and_failing_twin(self) -> None:
        """A note verifies under its key; the same signature over other text raises."""
        signer = Signer.generate("example.com/log")
        note = signer.sign_note(TEXT)
        assert open_note(note.encode(), [signer.verifier()]).text == TEXT
        forged = note.replace(TEXT, TEXT.replace("\n5\n", "\n6\n"))
        with pytest.raises(InvalidSignatureError, match=r"invalid signature by example\.com/log"):
            open_note(forged.encode(), [signer.verifier()])

    def test_vkey_round_trip_and_key_id(self) -> None:
        """The vkey parses back to the same key; its id is SHA-256(name||\\n||0x01||key)[:4]."""
        signer = Signer.generate("example.com/log")
        v = parse_vkey(signer.verifier().vkey)
        assert v.vkey == signer.verifier().vkey
        raw = base64.b64decode(v.vkey.split("+", 2)[2])
        assert raw[0] == 0x01
        want = hashlib.sha256(b"example.com/log\n\x01" + raw[1:]).digest()[:4]
        assert v.key_id == int.from_bytes(want, "big")

    def test_skey_round_trip(self) -> None:
        """A private key written as text loads back to the same signer."""
        signer = Signer.generate("example.com/log")
        assert Signer.from_skey(signer.skey()).verifier().vkey == signer.verifier().vkey

    def test_repr_hides_private_key(self) -> None:
        """The signer's repr names the key, never its secret material."""
        signer = Signer.generate("example.com/log")
        # PRIVATE+KEY+<name>+<key id>+<key>; the key's base64 may itself hold "+".
        secret = signer.skey().split("+", 4)[4]
        assert len(secret) > 40
        assert secret not in repr(signer)
        assert "example.com/log" in repr(signer)

    def test_text_must_end_with_newline(self) -> None:
        """A signer refuses text that would make a malformed note."""
        with pytest.raises(MalformedNoteError):
            Signer.generate("a").sign_note("no newline")


class TestCosigner:
    def test_cosignature_format(self) -> None:
        """A type 0x04 cosignature: id || u64 timestamp || Ed25519 over the cosignature/v1 text."""
        cosigner = Cosigner.generate("witness.example/w1")
        line = cosigner.signature_line_at_time(TEXT, 1679315147)
        blob = base64.b64decode(line.split(" ")[2])
        assert len(blob) == 4 + 8 + 64
        assert int.from_bytes(blob[4:12], "big") == 1679315147
        v = cosigner.verifier()
        assert v.alg == ALG_ED25519_COSIGNATURE_V1
        v.public_key.verify(blob[12:], cosignature_message(TEXT, 1679315147))
        note = open_note((TEXT + "\n" + line).encode(), [v])
        assert note.sigs[0].timestamp == 1679315147

    def test_cosigner_key_id_uses_type_4(self) -> None:
        """The same key as a cosigner gets a different key id (type byte 0x04, not 0x01)."""
        cosigner = Cosigner.generate("w")
        raw = base64.b64decode(cosigner.verifier().vkey.split("+", 2)[2])
        assert raw[0] == 0x04
        assert cosigner.key_id == int.from_bytes(
            hashlib.sha256(b"w\n\x04" + raw[1:]).digest()[:4], "big"
        )

    def test_tampered_timestamp_fails(self) -> None:
        """Changing the timestamp inside a cosignature breaks it."""
        cosigner = Cosigner.generate("w")
        line = cosigner.signature_line_at_time(TEXT, 1000)
        blob = bytearray(base64.b64decode(line.split(" ")[2]))
        blob[11] ^= 1
        bad = f"\u2014 w {base64.b64encode(bytes(blob)).decode()}\n"
        with pytest.raises(InvalidSignatureError):
            open_note((TEXT + "\n" + bad).encode(), [cosigner.verifier()])

    def test_zero_timestamp_refused(self) -> None:
        """tlog-witness: a cosignature must not omit the timestamp."""
        with pytest.raises(ValueError, match="timestamp 0"):
            Cosigner.generate("w").signature_line_at_time(TEXT, 0)


class TestVerifyNote:
    def test_requires_every_required_key(self) -> None:
        """A checkpoint signed by the log but not cosigned by the witness is rejected."""
        log, witness = Signer.generate("log"), Cosigner.generate("witness")
        note = log.sign_note(TEXT)
        with pytest.raises(UnverifiedNoteError, match="lacks a valid signature by witness"):
            verify_note(note.encode(), [log.verifier(), witness.verifier()])
        cosigned = note + witness.signature_line(TEXT)
        verified = verify_note(cosigned.encode(), [log.verifier(), witness.verifier()])
        assert len(verified.sigs) == 2

    def test_no_required_keys_fails_closed(self) -> None:
        """An empty list of required keys never accepts a note."""
        note = Signer.generate("log").sign_note(TEXT)
        with pytest.raises(UnverifiedNoteError):
            verify_note(note.encode(), [])


class TestCheckpoint:
    def test_round_trip(self) -> None:
        """A checkpoint's text parses back to the same checkpoint, extensions included."""
        cp = Checkpoint("example.com/log", 42, bytes(range(32)), ("ext line",))
        assert Checkpoint.parse(cp.text()) == cp

    @pytest.mark.parametrize(
        ("text", "why"),
        [
            ("origin\n05\n" + base64.b64encode(bytes(32)).decode() + "\n", "leading zeros"),
            ("origin\n5\n" + base64.b64encode(bytes(31)).decode() + "\n", "size 31"),
            ("origin\n5\n", "want at least 3"),
            ("origin\n-1\n" + base64.b64encode(bytes(32)).decode() + "\n", "leading zeros"),
            ("\n5\n" + base64.b64encode(bytes(32)).decode() + "\n", "origin"),
        ],
    )
    def test_malformed(self, text: str, why: str) -> None:
        """Malformed checkpoint bodies are refused with a message naming the problem."""
        with pytest.raises(CheckpointFormatError, match=why):
            Checkpoint.parse(text)
