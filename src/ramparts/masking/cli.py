"""``ramparts mask``: mask log lines from stdin to stdout, one line at a time.

    $ printf 'bvn=22212345678\\n' | ramparts mask
    bvn=[BVN]

Lines are read and written as they arrive (nothing waits for the end of
input), so the command can sit in a pipe behind ``tail -f``. With ``--json``
each line is parsed as JSON and masked by field name; a line that is not JSON
is masked as text, and a warning naming its line number goes to stderr, so no
line is ever dropped. ``--hmac-key-file`` turns on keyed tokenisation; the key
is read from a file that only its owner can read, never from the command line.
"""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, TextIO

import typer

from ramparts.masking._masker import Masker
from ramparts.masking._tokens import MIN_KEY_BYTES

app = typer.Typer(add_completion=False, help="Mask PII and secrets in log lines (stdin to stdout).")


class KeyFileError(Exception):
    """The HMAC key file is missing, unsafe or unusable; the message names the path only."""


def read_hmac_key(path: Path) -> bytes:
    """Read a tokenisation key from a regular file readable by its owner only.

    The key is the file's bytes with one trailing newline removed. The file is
    opened without following symlinks and checked through the open descriptor,
    so what is checked is what is read.

    Raises:
        KeyFileError: the file cannot be opened, is not a regular file, is
            readable or writable by group or others, or holds too short a key.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise KeyFileError(f"--hmac-key-file {path}: cannot open ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"--hmac-key-file {path}: not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise KeyFileError(
                f"--hmac-key-file {path}: permissions {mode:04o} are too open; want 0600"
            )
        key = fh.read()
    if key.endswith(b"\n"):
        key = key[:-1]
    if len(key) < MIN_KEY_BYTES:
        raise KeyFileError(
            f"--hmac-key-file {path}: key is {len(key)} bytes; want at least {MIN_KEY_BYTES}"
        )
    return key


def _mask_json_lines(masker: Masker, lines: TextIO, err: TextIO) -> Iterator[str]:
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            yield line
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            # The reason names a position, never the content of the line.
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "invalid"
            err.write(f"Warning: line {number}: not valid JSON ({reason}); masked as text\n")
            err.flush()
            yield masker.mask_text(line)
            continue
        yield json.dumps(masker.mask_record(record), ensure_ascii=False, separators=(",", ":"))


def _mask_text_lines(masker: Masker, lines: TextIO) -> Iterator[str]:
    for masked in masker.mask_lines(lines):
        yield masked.rstrip("\r\n")


@app.callback(invoke_without_command=True)
def mask(
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Parse each line as JSON and mask it by field name."),
    ] = False,
    hmac_key_file: Annotated[
        Path | None,
        typer.Option(
            "--hmac-key-file",
            help="Tokenise identifiers with HMAC-SHA256 under the key in this 0600 file.",
        ),
    ] = None,
    keep_unlabelled_ids: Annotated[
        bool,
        typer.Option(
            "--keep-unlabelled-ids",
            help="Do not mask 11-digit numbers that have no BVN/NIN context.",
        ),
    ] = False,
) -> None:
    """Read lines on stdin, write them masked on stdout."""
    key = None
    if hmac_key_file is not None:
        try:
            key = read_hmac_key(hmac_key_file)
        except KeyFileError as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(1) from None
    masker = Masker(hmac_key=key, mask_unlabelled_ids=not keep_unlabelled_ids)
    # Looked up at call time: CliRunner (and any caller) may have replaced them.
    stdin, stdout = sys.stdin, sys.stdout
    for stream in (stdin, stdout):
        # Bytes that are not UTF-8 pass through unchanged instead of stopping
        # the stream: a log line is never lost to a decoding error.
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="surrogateescape")
    lines = (
        _mask_json_lines(masker, stdin, sys.stderr) if as_json else _mask_text_lines(masker, stdin)
    )
    for line in lines:
        stdout.write(line + "\n")
        stdout.flush()
