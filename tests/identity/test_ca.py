"""The CA on disk: key file permissions, passphrases, rotation schedule, expiry diagnostics."""

from __future__ import annotations

import datetime as dt
import os
import stat

import pytest

from ramparts.events import EventEmitter, MemorySink
from ramparts.identity import (
    CAStateError,
    CertificateAuthority,
    IdentityError,
    IdentityExpiredError,
    InsecureFileError,
    IssuanceRefused,
    Passphrase,
)
from ramparts.identity._svid import new_private_key, utcnow

TD = "refbank.local"
ID = "spiffe://refbank.local/ns/refbank/sa/ledger"


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


class TestKeyFiles:
    def test_init_writes_a_0600_key_in_a_0700_directory(self, tmp_path) -> None:
        d = tmp_path / "ca"
        CertificateAuthority.init(d, TD)
        assert _mode(d) == 0o700
        assert _mode(d / "authorities" / "1.key") == 0o600
        assert b"BEGIN PRIVATE KEY" in (d / "authorities" / "1.key").read_bytes()

    @pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
    def test_refuses_to_start_with_a_key_readable_by_others(self, tmp_path, mode) -> None:
        d = tmp_path / "ca"
        CertificateAuthority.init(d, TD)
        key = d / "authorities" / "1.key"
        os.chmod(key, mode)
        with pytest.raises(InsecureFileError) as info:
            CertificateAuthority.load(d)
        assert str(key) in str(info.value)
        assert f"chmod 600 {key}" in str(info.value)

    def test_load_round_trip_keeps_the_same_ca(self, tmp_path) -> None:
        d = tmp_path / "ca"
        a = CertificateAuthority.init(d, TD)
        b = CertificateAuthority.load(d)
        assert b.active.cert == a.active.cert
        assert b.bundle() == a.bundle()
        b.issue_svid(ID).leaf.verify_directly_issued_by(a.active.cert)

    def test_refuses_to_overwrite_an_existing_ca(self, tmp_path) -> None:
        CertificateAuthority.init(tmp_path, TD)
        with pytest.raises(CAStateError, match="already exists"):
            CertificateAuthority.init(tmp_path, TD)

    def test_missing_directory_says_how_to_create_one(self, tmp_path) -> None:
        with pytest.raises(CAStateError, match="ramparts ca init"):
            CertificateAuthority.load(tmp_path / "nope")


class TestPassphrase:
    def test_encrypted_key_needs_the_passphrase(self, tmp_path) -> None:
        d = tmp_path / "ca"
        pw = Passphrase(b"correct horse battery staple")
        CertificateAuthority.init(d, TD, passphrase=pw)
        assert b"BEGIN ENCRYPTED PRIVATE KEY" in (d / "authorities" / "1.key").read_bytes()
        CertificateAuthority.load(d, passphrase=pw)
        with pytest.raises(IdentityError, match=r"wrong passphrase\?"):
            CertificateAuthority.load(d, passphrase=Passphrase(b"wrong"))
        with pytest.raises(IdentityError, match=r"1\.key"):
            CertificateAuthority.load(d)

    def test_passphrase_from_a_private_file(self, tmp_path) -> None:
        f = tmp_path / "pw"
        f.write_bytes(b"s3cret\n")
        os.chmod(f, 0o600)
        assert Passphrase.from_file(f).reveal() == b"s3cret"
        os.chmod(f, 0o644)
        with pytest.raises(InsecureFileError, match="chmod 600"):
            Passphrase.from_file(f)

    def test_repr_never_shows_the_secret(self) -> None:
        assert "hunter2" not in repr(Passphrase(b"hunter2"))
        assert "hunter2" not in str(Passphrase(b"hunter2"))

    def test_ca_repr_shows_no_key(self, tmp_path) -> None:
        ca = CertificateAuthority.in_memory(TD)
        assert "PRIVATE" not in repr(ca.active)
        assert "key=" not in repr(ca.active)


class TestRotation:
    def test_next_ca_is_published_before_it_signs(self) -> None:
        ca = CertificateAuthority.in_memory(TD)
        old = ca.active
        seq = ca.bundle().sequence
        nxt = ca.prepare_rotation()
        assert ca.bundle().sequence == seq + 1
        assert nxt.cert in ca.bundle().authorities
        assert ca.issue_svid(ID).leaf.issuer == old.cert.subject  # still the old signer

    def test_after_activation_the_old_ca_stays_until_its_last_leaf_expires(self) -> None:
        ca = CertificateAuthority.in_memory(TD, svid_ttl=dt.timedelta(minutes=10))
        old = ca.active
        t0 = utcnow()
        last_old_leaf = ca.issue_svid(ID)
        ca.prepare_rotation(t0)
        new = ca.activate_next(t0)
        assert ca.issue_svid(ID).leaf.issuer == new.cert.subject
        assert old.cert in ca.bundle().authorities
        assert ca.prune(last_old_leaf.not_after - dt.timedelta(seconds=1)) == []
        assert ca.prune(last_old_leaf.not_after) == [old.generation]
        assert ca.bundle().authorities == (new.cert,)

    def test_activation_without_a_published_next_ca_is_refused(self) -> None:
        with pytest.raises(CAStateError, match="prepare_rotation"):
            CertificateAuthority.in_memory(TD).activate_next()

    def test_maintain_follows_the_schedule(self) -> None:
        t0 = utcnow()
        ca = CertificateAuthority.in_memory(
            TD, ca_ttl=dt.timedelta(days=6), refresh_hint=60, current_time=t0
        )
        first = ca.active
        ca.maintain(t0 + dt.timedelta(days=2))
        assert len(ca.bundle().authorities) == 1
        ca.maintain(t0 + dt.timedelta(days=3, minutes=1))  # half-life: publish
        assert len(ca.bundle().authorities) == 2 and ca.active is first
        ca.maintain(t0 + dt.timedelta(days=4, minutes=1))  # two thirds: activate
        assert ca.active is not first
        ca.maintain(t0 + dt.timedelta(days=4, hours=2))  # old leaves expired: prune
        assert ca.bundle().authorities == (ca.active.cert,)

    def test_rotation_state_survives_a_restart(self, tmp_path) -> None:
        a = CertificateAuthority.init(tmp_path, TD)
        a.prepare_rotation()
        b = CertificateAuthority.load(tmp_path)
        assert b.bundle() == a.bundle()
        b.activate_next()
        c = CertificateAuthority.load(tmp_path)
        assert c.active.generation == 2
        assert len(c.bundle().authorities) == 2

    def test_leaves_never_outlive_their_ca(self) -> None:
        ca = CertificateAuthority.in_memory(TD, ca_ttl=dt.timedelta(minutes=30))
        assert ca.issue_svid(ID).not_after <= ca.active.not_after


class TestExpiredCA:
    def test_loading_an_expired_ca_raises_with_diagnostics_and_an_event(self, tmp_path) -> None:
        CertificateAuthority.init(tmp_path, TD, ca_ttl=dt.timedelta(days=1))
        sink = MemorySink()
        later = utcnow() + dt.timedelta(days=2)
        with pytest.raises(IdentityExpiredError) as info:
            CertificateAuthority.load(tmp_path, emitter=EventEmitter([sink]), current_time=later)
        assert "expired at" in str(info.value)
        assert "ramparts ca rotate" in info.value.diagnostics()
        event = sink.of_type("ca.expired")[0]
        assert event.service == "ca"


class TestCSR:
    def test_bad_csr_signature_is_refused(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization

        ca = CertificateAuthority.in_memory(TD)
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([]))
            .sign(new_private_key(), hashes.SHA256())
        )
        der = bytearray(csr.public_bytes(serialization.Encoding.DER))
        der[-5] ^= 0x01  # flip a bit in the signature
        tampered = x509.load_der_x509_csr(bytes(der))
        with pytest.raises(IssuanceRefused, match="proof of key possession"):
            ca.sign_csr(tampered, ID)

    def test_bad_svid_ttl_is_refused_at_construction(self) -> None:
        with pytest.raises(CAStateError, match="svid_ttl"):
            CertificateAuthority.in_memory(TD, svid_ttl=dt.timedelta(days=3))


def test_last_leaf_record_survives_a_restart(tmp_path) -> None:
    """A CA restarted between issuing and rotating keeps the old CA until that leaf expires."""
    a = CertificateAuthority.init(tmp_path, TD, svid_ttl=dt.timedelta(minutes=10))
    leaf = a.issue_svid(ID)
    b = CertificateAuthority.load(tmp_path)
    t0 = utcnow()
    b.prepare_rotation(t0)
    b.activate_next(t0)
    assert b.prune(leaf.not_after - dt.timedelta(seconds=1)) == []
    assert b.prune(leaf.not_after + dt.timedelta(seconds=61)) == [1]
