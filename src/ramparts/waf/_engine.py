"""The WAF engine: a loaded, immutable rule set that makes transactions.

Load once at start-up (``WafEngine.load``); every request then gets a cheap
:class:`~ramparts.waf._transaction.Transaction`. The rule set, compiled
regexes, Aho-Corasick automata, per-phase plans and the Hyperscan prefilter
are built once here and shared read-only by all transactions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

from ramparts.events import EventEmitter
from ramparts.waf._errors import WafLoadError
from ramparts.waf._operators import Pm, Rx
from ramparts.waf._prefilter import Prefilter, required_literals
from ramparts.waf._rules import Rule, RuleSet, load_rules
from ramparts.waf._transaction import STATIC_VARIABLES, Transaction
from ramparts.waf._verdict import Verdict

__all__ = ["WafEngine", "builtin_rules_dir", "crs_files"]

MODES = ("block", "detect")
_MEMO_LIMIT = 20_000  # entries per memo; values <= SHARED_MAX chars: tens of MB at worst


def builtin_rules_dir() -> Path:
    """The folder of our own SecLang rules shipped in the package."""
    return Path(str(resources.files("ramparts.waf") / "rules"))


def crs_files(crs_path: str | Path) -> list[Path]:
    """A CRS checkout's setup file then its rules, in load order."""
    root = Path(crs_path)
    setup = next(
        (root / n for n in ("crs-setup.conf", "crs-setup.conf.example") if (root / n).is_file()),
        None,
    )
    rules_dir = root / "rules" if (root / "rules").is_dir() else root
    rules = sorted(rules_dir.glob("*.conf"))
    if setup is None or not rules:
        raise WafLoadError(str(root), 0, "not a CRS checkout (need crs-setup.conf and rules/)")
    return [setup, *rules]


def _fast_path(rule: Rule) -> tuple[tuple[str, ...], int] | None:
    """``(transformations, prefilter id)`` when the rule can be skipped by one lookup.

    That holds when its first link is a prefiltered, non-negated ``@rx``/``@pm``
    over request/response data only (no TX, no MATCHED_*, no counts, no
    multiMatch): if no value of the transaction, so transformed, contains one
    of the operator's literals, no value the rule selects can match.
    """
    op = rule.operator
    if op is None or op.prefilter_id is None or op.negated or rule.multi_match:
        return None
    if any(t.count or t.name not in STATIC_VARIABLES for t in rule.targets):
        return None
    return rule.transforms, op.prefilter_id


def _preamble(paranoia_level: int, inbound: int | None, outbound: int | None) -> str:
    sets = [
        f"setvar:tx.blocking_paranoia_level={paranoia_level}",
        f"setvar:tx.detection_paranoia_level={paranoia_level}",
    ]
    if inbound is not None:
        sets.append(f"setvar:tx.inbound_anomaly_score_threshold={inbound}")
    if outbound is not None:
        sets.append(f"setvar:tx.outbound_anomaly_score_threshold={outbound}")
    return f'SecAction "id:1000000,phase:1,pass,nolog,t:none,{",".join(sets)}"\n'


class WafEngine:
    """A loaded rule set. Build with :meth:`load`; thread-compatible (read-only after load)."""

    def __init__(
        self,
        ruleset: RuleSet,
        *,
        mode: str = "block",
        paranoia_level: int = 1,
        emitter: EventEmitter | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.ruleset = ruleset
        self.mode = mode
        self.paranoia_level = paranoia_level
        self.emitter = emitter
        self._plans: dict[int, tuple[list[Rule], dict[str, int]]] = {}
        for phase in (1, 2, 3, 4, 5):
            rules = ruleset.by_phase(phase)
            markers: dict[str, int] = {}
            for i, r in enumerate(rules):
                if r.marker is not None:
                    markers.setdefault(r.marker, i + 1)
                elif r.id:
                    markers.setdefault(str(r.id), i + 1)
            self._plans[phase] = (rules, markers)
        self.prefilter = self._build_prefilter()
        # Memo of pure functions of short values, shared by transactions
        # (see Transaction); bounded by clearing, checked per transaction.
        self.shared_tcache: dict[tuple[str, tuple[str, ...]], str] = {}
        self.shared_pcache: dict[str, frozenset[int]] = {}
        # (raw value, transformations) -> prefilter hits of the transformed value.
        self.shared_hcache: dict[tuple[str, tuple[str, ...]], frozenset[int]] = {}

    def _build_prefilter(self) -> Prefilter:
        ops: list[Rx | Pm] = []
        literal_sets: list[frozenset[str] | None] = []
        for rule in self.ruleset.rules:
            for link in rule.links():
                op = link.operator
                if isinstance(op, Rx) and op.pattern is not None:
                    ops.append(op)
                    literal_sets.append(required_literals(op.source))
                elif isinstance(op, Pm):
                    ops.append(op)
                    literal_sets.append(op.phrases)
        pf = Prefilter(literal_sets)
        for pid, op in enumerate(ops):
            op.prefilter_id = pid if pid in pf.covered else None
        for rule in self.ruleset.rules:
            rule.fast = _fast_path(rule)
            rule.all_ctls = tuple(c for link in rule.links() for c in link.ctls)
        return pf

    @classmethod
    def load(
        cls,
        paths: Iterable[str | Path] = (),
        *,
        paranoia_level: int = 1,
        mode: str = "block",
        crs_path: str | Path | None = None,
        builtin_rules: bool = True,
        inbound_threshold: int | None = None,
        outbound_threshold: int | None = None,
        emitter: EventEmitter | None = None,
    ) -> WafEngine:
        """Load the engine settings, our own rules, CRS (``crs_path``) and ``paths``.

        Order: engine settings (``rules/engine.conf``), paranoia level,
        built-in detection rules, CRS setup + rules, ``paths``, the built-in
        evaluation, then ``rules/engine-final.conf`` (refuse what could not be
        fully inspected). Raises :class:`WafLoadError` on anything unsupported.
        """
        if paranoia_level not in (1, 2, 3, 4):
            raise ValueError("paranoia_level must be 1..4")
        base = builtin_rules_dir()
        files: list[Path] = [base / "engine.conf"]
        if builtin_rules:
            files.extend(
                sorted(p for p in base.glob("ramparts-*.conf") if "-evaluate" not in p.name)
            )
        if crs_path is not None:
            files.extend(crs_files(crs_path))
        files.extend(Path(p) for p in paths)
        if builtin_rules:
            files.append(base / "ramparts-evaluate.conf")
        files.append(base / "engine-final.conf")
        ruleset = load_rules(
            files, preamble=_preamble(paranoia_level, inbound_threshold, outbound_threshold)
        )
        return cls(ruleset, mode=mode, paranoia_level=paranoia_level, emitter=emitter)

    def phase_plan(self, phase: int) -> tuple[list[Rule], dict[str, int]]:
        return self._plans[phase]

    def new_transaction(
        self,
        client_ip: str,
        method: str,
        uri: str | bytes,
        http_version: str,
        headers: Sequence[tuple[str | bytes, str | bytes]],
        *,
        mode: str | None = None,
        client_port: int = 0,
    ) -> Transaction:
        """Start a transaction; ``mode`` overrides the engine's (a route's ``waf`` setting)."""
        if max(len(self.shared_tcache), len(self.shared_hcache)) > _MEMO_LIMIT:
            self.shared_tcache.clear()
            self.shared_pcache.clear()
            self.shared_hcache.clear()
        m = mode or self.mode
        if m not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {m!r}")
        return Transaction(
            self,
            client_ip,
            method,
            uri,
            http_version,
            list(headers),
            enforce=m == "block",
            client_port=client_port,
        )

    def report(self, verdict: Verdict, *, peer: str | None = None) -> None:
        """Emit the one event for a decision: ``waf.blocked`` (deny) or ``waf.detected``."""
        if self.emitter is None:
            return
        reason = f"rule {verdict.disruptive_rule} (anomaly score {verdict.anomaly_score})"
        if verdict.enforced:
            self.emitter.deny("waf.blocked", reason=reason, peer=peer, detail=verdict.detail())
        else:
            self.emitter.allow("waf.detected", reason=reason, peer=peer, detail=verdict.detail())
