"""Ramparts WAF: a SecLang rule engine that runs the OWASP Core Rule Set.

Load once, then one transaction per request::

    engine = WafEngine.load(crs_path="/etc/crs", paranoia_level=1, mode="block",
                            emitter=emitter)
    tx = engine.new_transaction(client_ip, "POST", b"/pay?x=1", "1.1", headers)
    verdict = tx.process_request_headers()              # phase 1
    if verdict is None:
        verdict = tx.process_request_body(body, content_type)   # phase 2
    ...                                                 # forward upstream
    verdict = tx.process_response_headers(status, resp_headers)  # phase 3
    verdict = verdict or tx.process_response_body(resp_body)     # phase 4

Each ``process_*`` returns a :class:`Verdict` to block (status, rule ids,
anomaly score, masked variable names; never a matched value) or None to go
on. ``process_request_body`` must be called even without a body: CRS's
anomaly evaluation (rule 949110) runs in phase 2. ``mode="detect"``
(engine-wide, or per transaction) records what would have been blocked and
returns None. Every decision emits one event through the engine's emitter:
``waf.blocked`` (deny) or ``waf.detected`` (allow, detect mode). The gateway
plugs in through :class:`ramparts.waf.hook.WafGatewayHook`.

What gets loaded, in order: ``rules/engine.conf`` (the equivalent of
ModSecurity's ``modsecurity.conf-recommended``: body access, XML/JSON body
processors, body-error rules 200000-200007), the paranoia level
(``tx.blocking_paranoia_level``/``detection_paranoia_level``), our built-in
rules (``rules/ramparts-*.conf``: SQLi, XSS, path traversal/LFI, RCE, SSRF in
parameters, protocol anomalies; they protect with no CRS present), then a CRS
checkout (``crs_path``: ``crs-setup.conf[.example]`` + ``rules/*.conf``), then
``paths``, then our own blocking evaluation (rule 1009100), then
``rules/engine-final.conf`` (rules 200005/200010: refuse a request or response
whose inspection hit the regex time limit).

Semantics follow ModSecurity v3, which CRS targets: values are inspected as
bytes (a latin-1 ``str`` view, regexes with ``re.ASCII``); ``setvar`` and
``capture`` run per matched value as each chain link matches; ``ctl``,
``skip``/``skipAfter`` and disruptive actions once the whole chain matched;
``block`` means the phase's ``SecDefaultAction``. Body processors:
URLENCODED, MULTIPART (our strict parser, ModSecurity's ``MULTIPART_*``
flags), JSON (``json.a.b``, arrays ``json.a.array_0``), XML (defusedxml;
``XML:/*`` and ``XML://@*`` only). ``@detectSQLi``/``@detectXSS`` use
libinjection through the ``libinjection-python`` binding.

Strictness: a directive, variable, operator, transformation, action or
``ctl`` the engine cannot evaluate is a :class:`WafLoadError` naming file and
line (``ramparts waf check PATH...`` lists them all). Accepted with no
effect, by design: audit-log and debug-log directives and actions (events
are our audit trail), PCRE limits, temp/data/upload directories, unicode map
file, ``SecComponentSignature``, ``SecCollectionTimeout``, ``ver``/``rev``/
``maturity``/``accuracy``. ``initcol`` is accepted and IP/GLOBAL/SESSION/USER
collections live for one transaction only (nothing persists across
requests), so ``expirevar`` has nothing to expire.

Speed: every ``@rx`` yields a set of literals one of which any match must
contain; those and all ``@pm`` phrases form one Aho-Corasick automaton. Each
distinct transformed value is scanned once per transaction, rules sharing
targets and transformations share that answer, and a rule whose operator
cannot match is skipped without running its regex. Transformed values and
scan results are memoised per (value, transformation chain): for the
transaction, and engine-wide for values up to 512 bytes (headers and most
parameters repeat across requests; the memo is bounded by clearing).

Regex cost is bounded: values up to 256 bytes run on ``re`` (fast; the
worst CRS pattern needs milliseconds there), longer ones on the ``regex``
engine with a 50 ms limit per search; hitting it flags
``TX:MSC_PCRE_LIMITS_EXCEEDED``, as ModSecurity's ``SecPcreMatchLimit`` does,
and the request is refused (fail closed). Only the XPath selectors CRS uses
are supported.
"""

from ramparts.waf._engine import WafEngine, builtin_rules_dir, crs_files
from ramparts.waf._errors import WafLoadError
from ramparts.waf._transaction import Transaction
from ramparts.waf._verdict import RuleMatch, Verdict

__all__ = [
    "RuleMatch",
    "Transaction",
    "Verdict",
    "WafEngine",
    "WafLoadError",
    "builtin_rules_dir",
    "crs_files",
]
