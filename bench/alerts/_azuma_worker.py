"""Runs inside bench/.venv-azuma: time azuma's Sigma matching over the same records.

python _azuma_worker.py RULES_DIR RECORDS.jsonl  ->  JSON on stdout
"""

import json
import sys
import time
from pathlib import Path

from azuma import Rule


def main() -> None:
    rules_dir, records_path = Path(sys.argv[1]), Path(sys.argv[2])
    rules = {
        p.stem: Rule.model_validate_yaml(p.read_text()) for p in sorted(rules_dir.glob("*.yml"))
    }
    records = [json.loads(line) for line in records_path.read_text().splitlines()]
    counts = dict.fromkeys(rules, 0)
    t0 = time.process_time()
    for rec in records:
        for name, rule in rules.items():
            if rule.match(rec):
                counts[name] += 1
    elapsed = time.process_time() - t0
    print(json.dumps({"seconds": elapsed, "counts": counts}))


main()
