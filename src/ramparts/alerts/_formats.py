"""Wire formats for the sinks: pure functions from alerts to JSON-ready payloads.

* Alertmanager webhook, version "4" (prometheus.io/docs/alerting/latest/configuration/
  #webhook_config): one payload per group of alerts sharing the ``group_by`` labels.
* Generic webhook: ``{"version": "1", "source": "ramparts", "alerts": [...]}``.
* Slack incoming webhook: ``{"text": ..., "blocks": [...]}`` (Block Kit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from ramparts.alerts._alert import Alert, rfc3339

# Alertmanager sends the zero time.Time as endsAt while an alert is firing with no end set.
ZERO_TIME: Final = "0001-01-01T00:00:00Z"
WEBHOOK_VERSION: Final = "1"
_SEVERITY_MARK: Final = {
    "critical": ":red_circle:",
    "high": ":large_orange_circle:",
    "medium": ":large_yellow_circle:",
    "low": ":large_blue_circle:",
    "informational": ":white_circle:",
}
# Slack caps a section's text at 3000 characters and a message at 50 blocks.
_SLACK_TEXT_MAX: Final = 3000
_SLACK_BLOCKS_MAX: Final = 50


def _common(dicts: list[dict[str, str]]) -> dict[str, str]:
    if not dicts:
        return {}
    first = dicts[0]
    return {k: v for k, v in first.items() if all(d.get(k) == v for d in dicts[1:])}


def _group_key(group_labels: dict[str, str]) -> str:
    # Alertmanager's form is "<route matchers>:<group labels>"; ramparts has one
    # route, so the matcher part is the empty "{}".
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels.items()))
    return "{}:{" + inner + "}"


def alertmanager_payloads(
    alerts: Sequence[Alert],
    *,
    receiver: str,
    external_url: str = "",
    generator_url: str = "",
    group_by: Sequence[str] = ("alertname",),
    max_alerts: int = 0,
) -> list[dict[str, Any]]:
    """Alertmanager webhook v4 payloads, one per group of ``alerts`` by ``group_by`` labels.

    ``max_alerts`` (0 = no limit) truncates each group, as Alertmanager's
    ``max_alerts`` does, and reports the rest in ``truncatedAlerts``.
    """
    groups: dict[tuple[tuple[str, str], ...], list[Alert]] = {}
    for a in alerts:
        labels = a.labels()
        key = tuple((k, labels.get(k, "")) for k in group_by)
        groups.setdefault(key, []).append(a)
    out = []
    for key, members in groups.items():
        kept = members[:max_alerts] if max_alerts else members
        entries = [
            {
                "status": "firing",
                "labels": a.labels(),
                "annotations": a.annotations(),
                "startsAt": rfc3339(a.first_at),
                "endsAt": ZERO_TIME,
                "generatorURL": f"{generator_url}{a.rule}" if generator_url else "",
                "fingerprint": a.fingerprint(),
            }
            for a in kept
        ]
        group_labels = {k: v for k, v in key if v}
        out.append(
            {
                "version": "4",
                "groupKey": _group_key(group_labels),
                "truncatedAlerts": len(members) - len(kept),
                "status": "firing",
                "receiver": receiver,
                "groupLabels": group_labels,
                "commonLabels": _common([e["labels"] for e in entries]),
                "commonAnnotations": _common([e["annotations"] for e in entries]),
                "externalURL": external_url,
                "alerts": entries,
            }
        )
    return out


def webhook_payload(alerts: Sequence[Alert]) -> dict[str, Any]:
    """The generic JSON webhook body."""
    return {
        "version": WEBHOOK_VERSION,
        "source": "ramparts",
        "alerts": [a.to_dict() for a in alerts],
    }


def slack_escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control: & < >."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alerts: Sequence[Alert]) -> dict[str, Any]:
    """A Slack incoming-webhook message: plain ``text`` fallback and one section per alert."""
    if len(alerts) == 1:
        text = f"[{alerts[0].level}] {alerts[0].summary()}"
    else:
        text = f"{len(alerts)} Ramparts alerts"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": text[:150]}}
    ]
    for a in alerts[: _SLACK_BLOCKS_MAX - 1]:
        mark = _SEVERITY_MARK.get(a.level, "")
        again = " (update)" if a.update else ""
        body = (
            f"{mark} *{slack_escape(a.title)}*{again}\n"
            f"severity: `{a.level}` · rule: `{slack_escape(a.rule)}` · count: {a.count}\n"
            f"{slack_escape(a.summary())}"
        )
        if a.description:
            body += f"\n{slack_escape(a.description)}"
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": body[:_SLACK_TEXT_MAX]}}
        )
    return {"text": slack_escape(text), "blocks": blocks}
