"""Alerts: Sigma rules over the security event stream, sent to Alertmanager-style sinks.

>>> from ramparts.events import SecurityEvent
>>> engine = AlertEngine(default_rules(), silence_after=None)
>>> alerts = engine.replay([SecurityEvent(type="egress.blocked", service="payments",
...     outcome="deny", reason="not in egress list", detail={"destination": "evil.example:443"},
...     time=1_700_000_000.0)])
>>> [(a.rule, a.level, dict(a.group)) for a in alerts]
[('egress_blocked', 'high', {'service': 'payments', 'derived.destination_host': 'evil.example'})]

Rules are YAML in a Sigma-compatible subset (see :mod:`ramparts.alerts._rules`);
the built-in ones live in ``ramparts/alerts/rules``. Events come in through
:meth:`AlertEngine.write` (an ``EventSink``) or :meth:`AlertEngine.replay`.
"""

from ramparts.alerts._alert import Alert, fingerprint
from ramparts.alerts._engine import SILENCE_EVENT, AlertEngine, EngineStats
from ramparts.alerts._errors import AlertsError, RetryableSinkError, RuleError, SinkError
from ramparts.alerts._formats import alertmanager_payloads, slack_payload, webhook_payload
from ramparts.alerts._rules import (
    Rule,
    RuleSet,
    default_rules,
    default_rules_dir,
    load_rules,
    parse_rules,
)
from ramparts.alerts._sinks import (
    AlertmanagerWebhookSink,
    LogSink,
    Sink,
    SinkStats,
    SinkWorker,
    SlackSink,
    WebhookSink,
)

__all__ = [
    "SILENCE_EVENT",
    "Alert",
    "AlertEngine",
    "AlertmanagerWebhookSink",
    "AlertsError",
    "EngineStats",
    "LogSink",
    "RetryableSinkError",
    "Rule",
    "RuleError",
    "RuleSet",
    "Sink",
    "SinkError",
    "SinkStats",
    "SinkWorker",
    "SlackSink",
    "WebhookSink",
    "alertmanager_payloads",
    "default_rules",
    "default_rules_dir",
    "fingerprint",
    "load_rules",
    "parse_rules",
    "slack_payload",
    "webhook_payload",
]
