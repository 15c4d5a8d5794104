"""Runs inside bench/.venv-presidio: mask the given lines with Microsoft Presidio.

Configuration: presidio-analyzer with its regex/checksum recognisers only and
the NoOpNlpEngine (no spaCy model is loaded or downloaded), plus ad-hoc
PatternRecognizers for what Presidio has no recogniser for (BVN, NUBAN, JWT,
key=value secrets), so both maskers are asked to find the same things.
presidio-anonymizer replaces every finding with <ENTITY_TYPE>.

Usage: python _presidio_worker.py LINES.json OUT.json  (commands on stdin: pass, done)
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings


def build():
    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        NgNinRecognizer,
        PhoneRecognizer,
    )
    from presidio_anonymizer import AnonymizerEngine

    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    nlp.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.add_recognizer(CreditCardRecognizer())
    registry.add_recognizer(EmailRecognizer())
    registry.add_recognizer(PhoneRecognizer(supported_regions=("NG",)))
    registry.add_recognizer(NgNinRecognizer())
    registry.add_recognizer(
        PatternRecognizer(
            supported_entity="NG_BVN",
            patterns=[Pattern("bvn", r"\b\d{11}\b", 0.5)],
            context=["bvn", "bank verification"],
        )
    )
    registry.add_recognizer(
        PatternRecognizer(
            supported_entity="NG_NUBAN",
            patterns=[Pattern("nuban", r"\b\d{10}\b", 0.4)],
            context=["account", "nuban", "acct"],
        )
    )
    registry.add_recognizer(
        PatternRecognizer(
            supported_entity="JWT",
            patterns=[Pattern("jwt", r"\beyJ[\w-]+\.[\w-]+\.[\w-]*", 0.9)],
        )
    )
    registry.add_recognizer(
        PatternRecognizer(
            supported_entity="SECRET",
            patterns=[
                Pattern(
                    "kv",
                    r"(?:password|passwd|secret|token|api_key|apikey)[=:][^\s&,;\"']+",
                    0.9,
                )
            ],
        )
    )
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])
    return analyzer, AnonymizerEngine()


def main() -> None:
    """Load the lines, then run one timed pass per "pass" line read from stdin.

    Each pass prints its CPU seconds on stdout, so the driver can interleave
    Presidio's passes with its own and compare passes taken under the same
    machine load. On "done" the last pass's masked lines go to OUT.json.
    """
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    with open(sys.argv[1]) as fh:
        lines = json.load(fh)
    analyzer, anonymizer = build()
    analyzer.analyze(text=lines[0], language="en")  # warm-up (compiles patterns)
    out: list[str] = []
    print("ready", flush=True)
    for command in sys.stdin:
        if command.strip() != "pass":
            break
        out = []
        t0 = time.process_time()
        for line in lines:
            results = analyzer.analyze(text=line, language="en")
            out.append(anonymizer.anonymize(text=line, analyzer_results=results).text)
        print(time.process_time() - t0, flush=True)
    with open(sys.argv[2], "w") as fh:
        json.dump(out, fh)


if __name__ == "__main__":
    main()
