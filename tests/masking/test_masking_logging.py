"""The structlog processor and the stdlib logging filter, in real logging pipelines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from ramparts.masking import Masker, MaskingFilter, MaskingProcessor, masking_processor


class TestStructlogProcessor:
    def test_in_a_real_chain(self) -> None:
        """Every value, nested ones included, is masked before the JSON renderer sees it."""
        out = io.StringIO()
        logger = structlog.wrap_logger(
            structlog.PrintLogger(out),
            processors=[
                structlog.processors.format_exc_info,
                masking_processor,
                structlog.processors.JSONRenderer(),
            ],
        )
        logger.info(
            "transfer from 08031234567",
            bvn="22212345678",
            customer={"email": "ada@example.com", "cards": ["4242424242424242"]},
            amount=5000,
        )
        line = json.loads(out.getvalue())
        assert line == {
            "event": "transfer from [PHONE]",
            "bvn": "[BVN]",
            "customer": {"email": "[EMAIL]", "cards": ["[PAN:424242******4242]"]},
            "amount": 5000,
        }

    def test_exception_text_is_masked(self) -> None:
        """A formatted traceback carrying PII is masked like any other value."""
        out = io.StringIO()
        logger = structlog.wrap_logger(
            structlog.PrintLogger(out),
            processors=[
                structlog.processors.format_exc_info,
                MaskingProcessor(Masker()),
                structlog.processors.JSONRenderer(),
            ],
        )
        try:
            raise ValueError("bad card 4242424242424242")
        except ValueError:
            logger.exception("failed")
        line = json.loads(out.getvalue())
        assert "4242424242424242" not in line["exception"]
        assert "[PAN:424242******4242]" in line["exception"]

    def test_custom_masker(self) -> None:
        """A processor built with its own masker uses that masker's configuration."""
        processor = MaskingProcessor(Masker(hmac_key=b"k" * 32))
        event = processor(None, "info", {"event": "x", "bvn": "22212345678"})
        assert event["bvn"].startswith("[BVN:hmac:")


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose only handler formats to a buffer through MaskingFilter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s %(customer)s"))
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger(f"test.masking.{id(stream)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)


class TestLoggingFilter:
    def test_message_args_and_extras(self, captured: tuple[logging.Logger, io.StringIO]) -> None:
        """%-args are formatted then masked; extra= fields are masked by field name."""
        logger, stream = captured
        logger.info(
            "paid %s from %s",
            "08031234567",
            "bvn 22212345678",
            extra={"customer": {"nin": "98765432102"}},
        )
        assert stream.getvalue() == "INFO paid [PHONE] from bvn [BVN] {'nin': '[NIN]'}\n"

    def test_traceback_is_masked_and_exc_info_dropped(
        self, captured: tuple[logging.Logger, io.StringIO]
    ) -> None:
        """The traceback is rendered and masked by the filter, so no formatter sees the raw one."""
        logger, stream = captured
        try:
            raise RuntimeError("token=abcdef for ada@example.com")
        except RuntimeError:
            logger.exception("boom", extra={"customer": "-"})
        text = stream.getvalue()
        assert "abcdef" not in text and "ada@example.com" not in text
        assert "RuntimeError: token=[SECRET] for [EMAIL]" in text

    def test_unformattable_args_are_kept_masked(
        self, captured: tuple[logging.Logger, io.StringIO]
    ) -> None:
        """A format/argument mismatch does not raise and does not leak the arguments."""
        logger, stream = captured
        logger.info("two %s %s", "22212345678", extra={"customer": "-"})
        assert "22212345678" not in stream.getvalue()
        assert "[BVN_OR_NIN]" in stream.getvalue()

    def test_never_drops_a_record(self) -> None:
        """filter() always returns True: masking must not lose log lines."""
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
        assert MaskingFilter().filter(record) is True
        assert record.getMessage() == "hello"


def test_extra_named_like_pii_keeps_its_attribute() -> None:
    """An extra= attribute whose name itself looks like PII is still masked in place."""
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    record.__dict__["ada@example.com"] = "bvn 22212345678"
    MaskingFilter().filter(record)
    assert record.__dict__["ada@example.com"] == "bvn [BVN]"
