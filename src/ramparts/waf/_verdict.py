"""What the WAF decided about one transaction, safe to log.

A :class:`Verdict` carries rule ids, the names of the variables that matched
and the anomaly score, never a matched value: the values are what an
attacker sent and may be a victim's data, so they stay inside the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RuleMatch", "Verdict", "safe_var_name"]

_NAME_LIMIT = 64


def safe_var_name(name: str) -> str:
    """``ARGS:user`` stays; a ``*_NAMES`` match names only its collection (the key IS the data)."""
    coll, sep, key = name.partition(":")
    if not sep:
        return coll
    if coll.endswith("_NAMES"):
        return coll
    if len(key) > _NAME_LIMIT:
        key = key[:_NAME_LIMIT] + "..."
    return f"{coll}:{key}"


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """One rule that matched: id, its message template, tags, and masked variable names."""

    rule_id: int
    phase: int
    msg: str
    severity: int | None
    tags: tuple[str, ...]
    variables: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Verdict:
    """A decision to interrupt (``status``), or in detect mode what would have been one."""

    status: int
    rule_ids: tuple[int, ...]
    anomaly_score: int
    variables: tuple[str, ...]
    phase: int
    action: str = "deny"
    matches: tuple[RuleMatch, ...] = field(default=(), repr=False)
    enforced: bool = True

    @property
    def disruptive_rule(self) -> int:
        return self.rule_ids[-1] if self.rule_ids else 0

    def detail(self) -> dict[str, object]:
        """The event ``detail`` for this verdict: ids, names, score; no values."""
        return {
            "rule_ids": list(self.rule_ids),
            # Message templates as written in the rules (macros unexpanded: no values).
            "messages": list(dict.fromkeys(m.msg for m in self.matches if m.msg)),
            "variables": list(self.variables),
            "anomaly_score": self.anomaly_score,
            "phase": self.phase,
            "status": self.status,
            "enforced": self.enforced,
        }
