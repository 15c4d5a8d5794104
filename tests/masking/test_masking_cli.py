"""``ramparts mask``: in-process through CliRunner, and streaming through a real pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ramparts.masking.cli import app

runner = CliRunner()


def write_key(path: Path, key: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(key)
    path.chmod(mode)
    return path


class TestTextMode:
    def test_lines_in_masked_lines_out(self) -> None:
        """Each input line gives one masked output line, in order."""
        result = runner.invoke(app, [], input="bvn=22212345678\nplain\nada@example.com\n")
        assert result.exit_code == 0
        assert result.stdout == "bvn=[BVN]\nplain\n[EMAIL]\n"

    def test_private_key_across_lines(self) -> None:
        """A PEM block spread over lines is masked line by line, keeping the line count."""
        pem = "-----BEGIN PRIVATE KEY-----\nMIIE\nAAAA\n-----END PRIVATE KEY-----\nafter\n"
        result = runner.invoke(app, [], input=pem)
        assert result.stdout == "[PRIVATE_KEY]\n" * 4 + "after\n"

    def test_keep_unlabelled_ids(self) -> None:
        """--keep-unlabelled-ids leaves context-free 11-digit numbers alone."""
        result = runner.invoke(app, ["--keep-unlabelled-ids"], input="n 22212345678\n")
        assert result.stdout == "n 22212345678\n"


class TestJSONMode:
    def test_records_masked_by_field_name(self) -> None:
        """--json masks each object structurally (a field name is enough)."""
        line = json.dumps({"account_number": "0123456789", "msg": "hi", "n": 1})
        result = runner.invoke(app, ["--json"], input=line + "\n")
        assert result.exit_code == 0
        assert json.loads(result.stdout) == {"account_number": "[NUBAN]", "msg": "hi", "n": 1}

    def test_invalid_json_is_masked_as_text_with_a_warning(self) -> None:
        """A non-JSON line is not lost: masked as text, with a warning naming its line."""
        data = '{"bvn": "22212345678"}\nnot json 4242424242424242\n\n{"ok": true}\n'
        result = runner.invoke(app, ["--json"], input=data)
        assert result.exit_code == 0
        out = result.stdout.splitlines()
        assert out == ['{"bvn":"[BVN]"}', "not json [PAN:424242******4242]", "", '{"ok":true}']
        assert result.stderr.startswith("Warning: line 2: not valid JSON")
        assert "4242" not in result.stderr


class TestHMACKeyFile:
    def test_tokenises_with_key_from_0600_file(self, tmp_path: Path) -> None:
        """Identifiers gain HMAC tokens; equal values give equal tokens."""
        key = write_key(tmp_path / "k", os.urandom(32))
        result = runner.invoke(
            app, ["--hmac-key-file", str(key)], input="bvn 22212345678\nbvn 22212345678\n"
        )
        assert result.exit_code == 0
        first, second = result.stdout.splitlines()
        assert first == second
        assert first.startswith("bvn [BVN:hmac:")

    def test_group_readable_key_refused(self, tmp_path: Path) -> None:
        """A key file others can read is an error (exit 1), naming the file and its mode."""
        key = write_key(tmp_path / "k", b"x" * 32, 0o640)
        result = runner.invoke(app, ["--hmac-key-file", str(key)], input="x\n")
        assert result.exit_code == 1
        assert "Error: --hmac-key-file" in result.stderr
        assert "0640" in result.stderr
        assert result.stdout == ""

    def test_short_key_refused(self, tmp_path: Path) -> None:
        """A key under 16 bytes is refused; the message gives its size, not its bytes."""
        key = write_key(tmp_path / "k", b"tiny\n")
        result = runner.invoke(app, ["--hmac-key-file", str(key)], input="x\n")
        assert result.exit_code == 1
        assert "4 bytes" in result.stderr
        assert "tiny" not in result.stderr

    def test_missing_and_symlinked_key_refused(self, tmp_path: Path) -> None:
        """A missing file or a symlink is refused (the link could point anywhere)."""
        target = write_key(tmp_path / "k", b"x" * 32)
        link = tmp_path / "link"
        link.symlink_to(target)
        for path in (tmp_path / "absent", link):
            result = runner.invoke(app, ["--hmac-key-file", str(path)], input="x\n")
            assert result.exit_code == 1
            assert "cannot open" in result.stderr

    def test_unknown_option_is_usage_error(self) -> None:
        """Bad usage exits 2."""
        assert runner.invoke(app, ["--nope"]).exit_code == 2


def test_streams_line_by_line_through_a_pipe() -> None:
    """Each masked line is written before the next input line exists (no read-all)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from ramparts.masking.cli import app; app()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write("first bvn 22212345678\n")
        proc.stdin.flush()
        # stdin stays open: the answer can only come from streaming. readline
        # blocks, so bound the wait by the pytest timeout and a deadline check.
        deadline = time.monotonic() + 30
        line = proc.stdout.readline()
        assert time.monotonic() < deadline
        assert line == "first bvn [BVN]\n"
        proc.stdin.write("second ada@example.com\n")
        proc.stdin.close()
        assert proc.stdout.read() == "second [EMAIL]\n"
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("flag", ["--help"])
def test_help_names_the_options(flag: str) -> None:
    """The help text lists the options a user needs."""
    result = runner.invoke(app, [flag])
    assert result.exit_code == 0
    for option in ("--json", "--hmac-key-file", "--keep-unlabelled-ids"):
        assert option in result.stdout


def test_invalid_utf8_passes_through() -> None:
    """Bytes that are not UTF-8 neither stop the stream nor get lost."""
    proc = subprocess.run(
        [sys.executable, "-c", "from ramparts.masking.cli import app; app()"],
        input=b"caf\xe9 bvn 22212345678\nnext ada@example.com\n",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"caf\xe9 bvn [BVN]\nnext [EMAIL]\n"
