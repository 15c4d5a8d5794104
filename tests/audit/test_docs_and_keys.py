"""Module examples run as tests; private key files are handled like secrets."""

from __future__ import annotations

import doctest
import importlib
import logging
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ramparts.audit.cli import app
from ramparts.audit.keys import load_cosigner, load_signer, write_private_key
from ramparts.audit.note import Cosigner, KeyFormatError, Signer, parse_vkey

MODULES = [
    "ramparts.audit.merkle",
    "ramparts.audit.merkle.hashing",
    "ramparts.audit.merkle.tree",
    "ramparts.audit.merkle.verify",
    "ramparts.audit.merkle.subtree",
    "ramparts.audit.note",
    "ramparts.audit.checkpoint",
    "ramparts.audit.store",
    "ramparts.audit.log",
    "ramparts.audit.witness",
    "ramparts.audit.verify",
]


@pytest.mark.parametrize("name", MODULES)
def test_module_examples_run(name: str) -> None:
    """Each public module's docstring example runs and gives the shown output."""
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0


def test_merkle_exports_match_all() -> None:
    """The merkle package's public surface is exactly its __all__."""
    from ramparts.audit import merkle

    public = {n for n in vars(merkle) if not n.startswith("_")}
    modules = {"errors", "hashing", "subtree", "tree", "verify", "annotations"}
    assert public - modules == set(merkle.__all__)


class TestKeyFiles:
    def test_written_0600_and_loaded(self, tmp_path: Path) -> None:
        """A key file is created 0600 and loads back to the same key."""
        signer = Signer.generate("example.com/log")
        path = tmp_path / "log.key"
        write_private_key(path, signer)
        assert path.stat().st_mode & 0o777 == 0o600
        assert load_signer(path).verifier().vkey == signer.verifier().vkey

    def test_group_readable_key_is_refused(self, tmp_path: Path) -> None:
        """A private key readable by others is refused, naming the file, not the key."""
        path = tmp_path / "w.key"
        write_private_key(path, Cosigner.generate("w"))
        path.chmod(0o640)
        with pytest.raises(KeyFormatError, match="chmod 600") as exc:
            load_cosigner(path)
        assert "PRIVATE+KEY" not in str(exc.value)

    def test_never_overwrites(self, tmp_path: Path) -> None:
        """An existing key file is never replaced."""
        path = tmp_path / "k"
        write_private_key(path, Signer.generate("a"))
        with pytest.raises(FileExistsError):
            write_private_key(path, Signer.generate("b"))

    def test_keygen_command(self, tmp_path: Path) -> None:
        """`keygen` writes the private key file and prints only the public vkey."""
        path = tmp_path / "w.key"
        result = CliRunner().invoke(
            app, ["keygen", "--name", "w.example/w1", "--out", str(path), "--witness"]
        )
        assert result.exit_code == 0, result.stderr
        vkey = parse_vkey(result.stdout.strip())
        assert (vkey.name, vkey.alg) == ("w.example/w1", 0x04)
        assert "PRIVATE" not in result.stdout
        assert load_cosigner(path).verifier().vkey == vkey.vkey


def test_missing_masker_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without ramparts.masking the server says so in one clear log line and does not re-mask."""
    from ramparts.audit.server import load_masker

    monkeypatch.setitem(sys.modules, "ramparts.masking", None)
    with caplog.at_level(logging.WARNING, logger="ramparts.audit.server"):
        assert load_masker() is None
    assert "Masker unavailable" in caplog.text
