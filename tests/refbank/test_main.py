"""``python -m refbank``: refuses passwords on the command line and readable key files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from refbank.__main__ import main, read_key_file


def test_database_password_on_command_line_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(
            [
                "ledger",
                "--topology",
                "x.yaml",
                "--state",
                str(tmp_path),
                "--database",
                "postgresql://app:hunter2@db/ledger",
            ]
        )
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "must not carry a password" in err
    assert "hunter2" not in err


def test_database_url_with_a_port_is_not_mistaken_for_a_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """host:port is not user:password: such a URL passes the check and fails later, on
    the (missing) topology, not on credentials."""
    url = "postgresql://db:5432/ledger"
    with pytest.raises(SystemExit) as info:
        main(
            [
                "ledger",
                "--topology",
                str(tmp_path / "x.yaml"),
                "--state",
                str(tmp_path),
                "--database",
                url,
            ]
        )
    assert "must not carry a password" not in capsys.readouterr().err
    assert "cannot read" in str(info.value.code)


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "pii.key"
    first = read_key_file(path)
    assert len(first) == 32
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert read_key_file(path) == first


def test_readable_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pii.key"
    path.write_bytes(os.urandom(32))
    path.chmod(0o644)
    with pytest.raises(SystemExit, match="chmod 600"):
        read_key_file(path)


def test_short_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pii.key"
    path.write_bytes(b"short")
    path.chmod(0o600)
    with pytest.raises(SystemExit, match="holds 5 bytes, want 32"):
        read_key_file(path)
