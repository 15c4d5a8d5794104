"""One HTTP exchange through the rule engine, phase by phase.

The transaction holds the variables (collections are lists of ``(key,
value)`` in the order received), runs each phase's rules in file order with
ModSecurity v3's semantics, and caches per transaction what repeats:
the transformed value for each ``(value, transformation chain)`` and the
prefilter's verdict for each distinct transformed value.

Semantics worth knowing (they follow ModSecurity v3, which CRS targets):
``setvar`` and ``capture`` of a rule (or chain link) run for *each* matched
value, as the link matches, so a chained rule can read what its parent set;
``ctl``, ``skip``/``skipAfter`` and the disruptive action run once, when the
whole chain has matched. ``block`` means the phase's ``SecDefaultAction``.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from ramparts.waf._bodies import (
    BodyResult,
    parse_json,
    parse_multipart,
    parse_urlencoded,
    parse_xml,
)
from ramparts.waf._rules import Ctl, Rule
from ramparts.waf._transforms import Transform, to_wire, url_decode
from ramparts.waf._variables import COLLECTIONS, Target
from ramparts.waf._verdict import RuleMatch, Verdict, safe_var_name

if TYPE_CHECKING:
    from ramparts.waf._engine import WafEngine

__all__ = ["SHARED_MAX", "STATIC_VARIABLES", "Transaction"]

Pairs = list[tuple[str, str]]
# Values up to this length share the engine-wide transformation/scan memo.
SHARED_MAX = 512
_NAMES_OF = {
    "ARGS_NAMES": "ARGS",
    "ARGS_GET_NAMES": "ARGS_GET",
    "ARGS_POST_NAMES": "ARGS_POST",
    "REQUEST_HEADERS_NAMES": "REQUEST_HEADERS",
    "REQUEST_COOKIES_NAMES": "REQUEST_COOKIES",
    "RESPONSE_HEADERS_NAMES": "RESPONSE_HEADERS",
    "MATCHED_VARS_NAMES": "MATCHED_VARS",
}
_PERSISTENT = ("IP", "GLOBAL", "SESSION", "USER", "RESOURCE")
# Request/response data (as opposed to TX, MATCHED_*, counters): the values a
# rule's fast path may be judged on. Keys of the collections are included.
_STATIC_COLLECTIONS = (
    "ARGS_GET",
    "ARGS_POST",
    "REQUEST_HEADERS",
    "REQUEST_COOKIES",
    "RESPONSE_HEADERS",
    "FILES",
    "MULTIPART_PART_HEADERS",
)
_STATIC_SCALARS = (
    "REQUEST_URI",
    "REQUEST_URI_RAW",
    "REQUEST_FILENAME",
    "REQUEST_BASENAME",
    "REQUEST_LINE",
    "REQUEST_METHOD",
    "REQUEST_PROTOCOL",
    "QUERY_STRING",
    "REQUEST_BODY",
    "RESPONSE_BODY",
    "RESPONSE_STATUS",
    "RESPONSE_PROTOCOL",
    "STATUS_LINE",
    "RESPONSE_CONTENT_TYPE",
)
# What request-body processing can change (everything else is fixed by phase 1).
_BODY_VARIABLES = frozenset(
    {
        "ARGS",
        "ARGS_POST",
        "ARGS_NAMES",
        "ARGS_POST_NAMES",
        "REQUEST_BODY",
        "FILES",
        "FILES_NAMES",
        "MULTIPART_PART_HEADERS",
        "XML",
    }
)
_RESPONSE_VARIABLES = frozenset(
    {
        "RESPONSE_HEADERS",
        "RESPONSE_HEADERS_NAMES",
        "RESPONSE_BODY",
        "RESPONSE_STATUS",
        "RESPONSE_PROTOCOL",
        "STATUS_LINE",
        "RESPONSE_CONTENT_TYPE",
    }
)
STATIC_VARIABLES = frozenset(
    {
        *_STATIC_COLLECTIONS,
        *_STATIC_SCALARS,
        "ARGS",
        "ARGS_NAMES",
        "ARGS_GET_NAMES",
        "ARGS_POST_NAMES",
        "REQUEST_HEADERS_NAMES",
        "REQUEST_COOKIES_NAMES",
        "RESPONSE_HEADERS_NAMES",
        "FILES_NAMES",
        "XML",
    }
)


def _int(s: str) -> int:
    s = s.strip()
    sign = 1
    if s[:1] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    digits = ""
    for ch in s:
        if not ch.isdigit():
            break
        digits += ch
    return sign * int(digits) if digits else 0


class Transaction:
    """Create with :meth:`WafEngine.new_transaction`; call the ``process_*`` methods in order."""

    def __init__(  # noqa: PLR0917 - mirrors WafEngine.new_transaction
        self,
        engine: WafEngine,
        client_ip: str,
        method: str,
        uri: str | bytes,
        http_version: str,
        headers: list[tuple[str | bytes, str | bytes]],
        *,
        enforce: bool,
        client_port: int = 0,
    ) -> None:
        self.engine = engine
        self.enforce = enforce
        self.client_ip = client_ip
        cfg = engine.ruleset.config
        self.rule_engine = cfg.rule_engine
        self.request_body_access = cfg.request_body_access
        self.response_body_access = cfg.response_body_access
        self.force_body_var = False
        self.body_processor: str | None = None
        self.tx: dict[str, str] = {}
        self.persist: dict[str, dict[str, str]] = {c: {} for c in _PERSISTENT}
        self.env: dict[str, str] = {}
        self.colls: dict[str, Pairs] = {}
        self.scalars: dict[str, str] = {}
        self.xml: dict[str, list[str]] = {}
        self.matched_vars: Pairs = []
        self.matched_var = ""
        self.matched_var_name = ""
        self.rule_id = 0
        self.matches: list[RuleMatch] = []
        self.verdict: Verdict | None = None
        self.interrupted = False
        self.allow_until = 0  # phases <= this are allowed (skipped)
        self.removed_ranges: list[tuple[int, int]] = []
        self.removed_tags: set[str] = set()
        self.removed_targets: list[tuple[tuple[tuple[int, int], ...], str | None, Target]] = []
        # Transformations and prefilter scans are pure functions of the value:
        # short values (headers, most parameters) share the engine's memo
        # across transactions, longer ones (bodies) stay in this transaction.
        self.tcache = engine.shared_tcache
        self.pcache = engine.shared_pcache
        self._own_tcache: dict[tuple[str, tuple[str, ...]], str] = {}
        self._own_pcache: dict[str, frozenset[int]] = {}
        self.phase = 0
        self._link_vars: list[str] = []
        self._static_hits: dict[object, frozenset[int]] = {}
        # Per phase: what a target selects (before exclusions) -> its values.
        self._collected: dict[tuple[str, str | None, str | None], list[tuple[str, str]]] = {}
        self._request_headers(
            client_ip=client_ip,
            client_port=client_port,
            method=method,
            uri=uri,
            http_version=http_version,
            headers=headers,
        )

    # -- request line and headers -------------------------------------------
    def _request_headers(
        self,
        *,
        client_ip: str,
        client_port: int,
        method: str,
        uri: str | bytes,
        http_version: str,
        headers: list[tuple[str | bytes, str | bytes]],
    ) -> None:
        raw_uri = to_wire(uri)
        method = to_wire(method)
        proto = http_version if http_version.upper().startswith("HTTP/") else f"HTTP/{http_version}"
        s = self.scalars
        s["REQUEST_METHOD"] = method
        s["REQUEST_PROTOCOL"] = proto
        s["REQUEST_URI_RAW"] = raw_uri
        s["REQUEST_LINE"] = f"{method} {raw_uri} {proto}"
        s["REMOTE_ADDR"] = client_ip
        s["REMOTE_HOST"] = client_ip
        s["REMOTE_PORT"] = str(client_port)
        s["UNIQUE_ID"] = secrets.token_hex(12)
        s["REQBODY_ERROR"] = "0"
        s["REQBODY_PROCESSOR_ERROR"] = "0"
        s["MULTIPART_STRICT_ERROR"] = "0"
        s["MULTIPART_UNMATCHED_BOUNDARY"] = "0"
        uri_path = raw_uri
        scheme_sep = uri_path.find("://")
        if scheme_sep > 0 and "/" not in uri_path[:scheme_sep]:
            rest = uri_path[scheme_sep + 3 :]
            slash = rest.find("/")
            uri_path = rest[slash:] if slash >= 0 else "/"
        path, qmark, query = uri_path.partition("?")
        path = path.split("#", 1)[0]
        s["REQUEST_URI"] = uri_path
        s["QUERY_STRING"] = query if qmark else ""
        decoded_path = url_decode(path.replace("+", "%2B"))
        s["REQUEST_FILENAME"] = decoded_path
        s["PATH_INFO"] = decoded_path
        s["REQUEST_BASENAME"] = decoded_path.rsplit("/", 1)[-1]
        self.colls["ARGS_GET"] = parse_urlencoded(query) if qmark else []
        self.colls["ARGS_POST"] = []
        hdrs = [(to_wire(k), to_wire(v)) for k, v in headers]
        self.colls["REQUEST_HEADERS"] = hdrs
        cookies: Pairs = []
        content_type = ""
        for k, v in hdrs:
            lk = k.lower()
            if lk == "cookie":
                for raw_piece in v.split(";"):
                    piece = raw_piece.strip()
                    if not piece:
                        continue
                    name, _, value = piece.partition("=")
                    cookies.append((name, value))
            elif lk == "content-type":
                content_type = v
            elif lk == "host":
                s["SERVER_NAME"] = v.split(":", 1)[0]
        self.colls["REQUEST_COOKIES"] = cookies
        self.colls["RESPONSE_HEADERS"] = []
        self.content_type = content_type
        self._default_processor(content_type)
        self._args_changed()

    def _default_processor(self, content_type: str) -> None:
        """ModSecurity's defaults: forms and multipart by content type (XML/JSON need a rule)."""
        ct = content_type.lower()
        if ct.startswith("application/x-www-form-urlencoded"):
            self.body_processor = "URLENCODED"
        elif ct.startswith("multipart/form-data"):
            self.body_processor = "MULTIPART"
        if self.body_processor:
            self.scalars["REQBODY_PROCESSOR"] = self.body_processor

    def _args_changed(self) -> None:
        args = self.colls["ARGS_GET"] + self.colls["ARGS_POST"]
        self.colls["ARGS"] = args
        self.scalars["ARGS_COMBINED_SIZE"] = str(sum(len(k) + len(v) for k, v in args))

    # -- public processing API ----------------------------------------------
    def process_request_headers(self) -> Verdict | None:
        """Phase 1."""
        return self._run(1)

    def process_request_body(
        self, body: bytes | str = b"", content_type: str | None = None
    ) -> Verdict | None:
        """Parse the body with the selected processor, then phase 2 (runs even with no body)."""
        if self.interrupted:
            return self._returned()
        raw = to_wire(body)
        cfg = self.engine.ruleset.config
        if content_type is not None:
            self.content_type = to_wire(content_type)
            if self.body_processor is None:
                self._default_processor(self.content_type)
        s = self.scalars
        self._data_changed(_BODY_VARIABLES)
        s["REQUEST_BODY_LENGTH"] = str(len(raw))
        if raw and self.request_body_access:
            limit = cfg.request_body_no_files_limit
            if self.body_processor == "MULTIPART":
                limit = cfg.request_body_limit
            if len(raw) > limit:
                if cfg.request_body_limit_action == "reject":
                    return self._limit_exceeded()
                raw = raw[:limit]
            # As in ModSecurity v3 (what CRS's tests expect), the raw body is a
            # variable for every processor except XML, whose content is
            # inspected through XML:/* and XML://@* instead.
            if self.body_processor != "XML" or self.force_body_var:
                s["REQUEST_BODY"] = raw
            s["FULL_REQUEST_LENGTH"] = str(len(raw))
            self._parse_body(raw)
        return self._run(2)

    def process_response_headers(
        self, status: int, headers: list[tuple[str | bytes, str | bytes]], protocol: str = "1.1"
    ) -> Verdict | None:
        """Phase 3."""
        if self.interrupted:
            return self._returned()
        hdrs = [(to_wire(k), to_wire(v)) for k, v in headers]
        self._data_changed(_RESPONSE_VARIABLES)
        self.colls["RESPONSE_HEADERS"] = hdrs
        s = self.scalars
        s["RESPONSE_STATUS"] = str(status)
        proto = protocol if protocol.upper().startswith("HTTP/") else f"HTTP/{protocol}"
        s["RESPONSE_PROTOCOL"] = proto
        s["STATUS_LINE"] = f"{proto} {status}"
        for k, v in hdrs:
            lk = k.lower()
            if lk == "content-type":
                s["RESPONSE_CONTENT_TYPE"] = v
            elif lk == "content-length":
                s["RESPONSE_CONTENT_LENGTH"] = v
        return self._run(3)

    def process_response_body(self, body: bytes | str) -> Verdict | None:
        """Phase 4 (the body is inspected only for SecResponseBodyMimeType types)."""
        if self.interrupted:
            return self._returned()
        cfg = self.engine.ruleset.config
        ctype = self.scalars.get("RESPONSE_CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
        self._data_changed(_RESPONSE_VARIABLES)
        if self.response_body_access and ctype in cfg.response_body_mime_types:
            self.scalars["RESPONSE_BODY"] = to_wire(body)[: cfg.response_body_limit]
        return self._run(4)

    def process_logging(self) -> None:
        """Phase 5 (CRS's correlation rules); never interrupts."""
        if not self.interrupted:
            self._run(5)

    def _returned(self) -> Verdict | None:
        return self.verdict if self.enforce else None

    def _limit_exceeded(self) -> Verdict | None:
        self.verdict = Verdict(
            status=413,
            rule_ids=(),
            anomaly_score=self.anomaly_score(),
            variables=("REQUEST_BODY",),
            phase=2,
            action="deny",
            enforced=self.enforce and self.rule_engine == "on",
        )
        self.engine.report(self.verdict, peer=self.client_ip)
        if self.verdict.enforced:
            self.interrupted = True
            return self.verdict
        return None

    # -- bodies --------------------------------------------------------------
    def _parse_body(self, raw: str) -> None:
        proc = self.body_processor
        res: BodyResult | None = None
        if proc == "URLENCODED":
            res = BodyResult(args=parse_urlencoded(raw))
        elif proc == "MULTIPART":
            res = parse_multipart(raw, self.content_type)
        elif proc == "JSON":
            res = parse_json(raw)
        elif proc == "XML":
            res = parse_xml(raw)
        if res is None:
            return
        s = self.scalars
        self.colls["ARGS_POST"] = res.args
        self._args_changed()
        if res.error:
            s["REQBODY_ERROR"] = "1"
            s["REQBODY_ERROR_MSG"] = res.error
            s["REQBODY_PROCESSOR_ERROR"] = "1"
            s["REQBODY_PROCESSOR_ERROR_MSG"] = res.error
        if proc == "MULTIPART":
            self.colls["FILES"] = res.files
            self.colls["FILES_NAMES"] = [(n, n) for n, _ in res.files]
            self.colls["FILES_SIZES"] = res.file_sizes
            self.colls["MULTIPART_PART_HEADERS"] = res.part_headers
            s["FILES_COMBINED_SIZE"] = str(sum(int(v) for _, v in res.file_sizes))
            for flag, value in res.flags.items():
                s[flag] = str(value)
            if res.files:
                s["MULTIPART_FILENAME"] = res.files[-1][1]
                s["MULTIPART_NAME"] = res.files[-1][0]
        if proc == "XML":
            self.xml = res.xml
        if len(self.colls["ARGS"]) > self.engine.ruleset.config.arguments_limit:
            s["REQBODY_ERROR"] = "1"
            s["REQBODY_ERROR_MSG"] = "too many arguments"

    # -- variables -----------------------------------------------------------
    def _pairs(self, name: str) -> Pairs:
        """Key/value pairs of a collection (names collections give (key, key))."""
        base = _NAMES_OF.get(name)
        if base is not None:
            return [(k, k) for k, _ in self._pairs(base)]
        if name == "TX":
            return list(self.tx.items())
        if name == "MATCHED_VARS":
            return self.matched_vars
        if name in _PERSISTENT:
            return list(self.persist[name].items())
        if name == "ENV":
            return list(self.env.items())
        if name == "RULE":
            return [("id", str(self.rule_id))]
        return self.colls.get(name, [])

    def collect(self, t: Target, rule: Rule) -> list[tuple[str, str]]:
        """The ``(variable name, value)`` pairs a target yields, exclusions applied."""
        out = self._raw(t)
        if out:
            exclusions = rule.exclusions
            if self.removed_targets:
                exclusions = exclusions + self._runtime_exclusions(rule)
            if exclusions:
                out = [(n, v) for n, v in out if not _excluded(n, exclusions)]
        return out

    def _raw(self, t: Target) -> list[tuple[str, str]]:
        """What a target selects before exclusions; request/response data cached per phase."""
        name = t.name
        cacheable = name in STATIC_VARIABLES
        if cacheable:
            hit = self._collected.get(t.ckey)
            if hit is not None:
                return hit
        out: list[tuple[str, str]]
        if name == "TX" and t.key is not None:
            v = self.tx.get(t.key)
            out = [] if v is None else [(f"TX:{t.key}", v)]
        elif name == "XML":
            values = self.xml.get(t.key or "/*", [])
            out = [(f"XML:{t.key}", v) for v in values]
        elif name in ("MATCHED_VAR", "MATCHED_VAR_NAME"):
            if not self.matched_var_name:
                out = []
            else:
                val = self.matched_var if name == "MATCHED_VAR" else self.matched_var_name
                out = [(name, val)]
        elif name == "MATCHED_VARS_NAMES":
            out = [(f"{name}:{n}", n) for n, _ in self.matched_vars]
        elif name in self.scalars or name not in _SELECTABLE:
            v = self.scalars.get(name)
            out = [] if v is None else [(name, v)]
        else:
            pairs = self._pairs(name)
            if t.regex is not None:
                rx = t.regex
                out = [(f"{name}:{k}", v) for k, v in pairs if rx.search(k)]
            elif t.key is not None:
                key = t.key
                out = [(f"{name}:{k}", v) for k, v in pairs if k.lower() == key]
            else:
                out = [(f"{name}:{k}", v) for k, v in pairs]
        if cacheable:
            self._collected[t.ckey] = out
        return out

    def _runtime_exclusions(self, rule: Rule) -> list[Target]:
        out: list[Target] = []
        for ranges, tag, target in self.removed_targets:
            if (ranges and any(a <= rule.id <= b for a, b in ranges)) or (
                tag is not None and tag in rule.tags
            ):
                out.append(target)
        return out

    def macro_value(self, coll: str, key: str | None) -> str:
        if coll == "TX" and key is not None:
            return self.tx.get(key.lower(), "")
        if coll == "MATCHED_VAR":
            return self.matched_var
        if coll == "MATCHED_VAR_NAME":
            return self.matched_var_name
        if coll == "RULE":
            return str(self.rule_id) if (key or "").lower() == "id" else ""
        if coll in _PERSISTENT and key is not None:
            return self.persist[coll].get(key.lower(), "")
        if coll == "ENV" and key is not None:
            return self.env.get(key, "")
        if key is None:
            return self.scalars.get(coll, "")
        lk = key.lower()
        for k, v in self._pairs(coll):
            if k.lower() == lk:
                return v
        return ""

    def flag_limit(self, name: str) -> None:
        """Record that an operator could not finish (``TX:MSC_*``, as ModSecurity names it)."""
        self.tx[name.lower()] = "1"

    def set_captures(self, groups: list[str]) -> None:
        tx = self.tx
        for i, g in enumerate(groups[:10]):
            tx[str(i)] = g

    def prefilter_may_match(self, value: str, pid: int) -> bool:
        pcache = self.pcache if len(value) <= SHARED_MAX else self._own_pcache
        ids = pcache.get(value)
        if ids is None:
            ids = pcache[value] = self.engine.prefilter.scan(value)
        return pid in ids

    def transform(self, value: str, rule: Rule) -> str:
        return self._transform(value, rule.transforms, rule.transform_fns)

    def _transform(self, value: str, names: tuple[str, ...], fns: tuple[Transform, ...]) -> str:
        if not names:
            return value
        cache = self.tcache if len(value) <= SHARED_MAX else self._own_tcache
        hit = cache.get((value, names))
        if hit is not None:
            return hit
        cur = value
        for i, fn in enumerate(fns):
            k = (value, names[: i + 1])
            nxt = cache.get(k)
            if nxt is None:
                nxt = cache[k] = fn(cur)
            cur = nxt
        return cur

    def _may_match(self, rule: Rule, pid: int) -> bool:
        """Whether any value ``rule`` selects, so transformed, may match operator ``pid``.

        Answered per (target, transformations) once per phase and shared by every
        rule with that pair (most of CRS's rules share both); exclusions are
        ignored here, which can only widen the answer.
        """
        names, fns = rule.transforms, rule.transform_fns
        cache = self._static_hits
        for t in rule.targets:
            key = (t.ckey, names)
            hits = cache.get(key)
            if hits is None:
                acc: set[int] = set()
                scan = self.engine.prefilter.scan
                shared, own = self.pcache, self._own_pcache
                memo = self.engine.shared_hcache
                for _name, v in self._raw(t):
                    found = memo.get((v, names))
                    if found is None:
                        tv = self._transform(v, names, fns)
                        pcache = shared if len(tv) <= SHARED_MAX else own
                        found = pcache.get(tv)
                        if found is None:
                            found = pcache[tv] = scan(tv)
                        if len(v) <= SHARED_MAX:
                            memo[(v, names)] = found
                    if found:
                        acc |= found
                hits = cache[key] = frozenset(acc)
            if pid in hits:
                return True
        return False

    def _data_changed(self, names: frozenset[str]) -> None:
        """Forget cached selections and prefilter answers for variables that just changed."""
        for key in [k for k in self._collected if k[0] in names]:
            del self._collected[key]
        for hkey in [k for k in self._static_hits if k[0][0] in names]:
            del self._static_hits[hkey]

    def _multi_values(self, value: str, rule: Rule) -> list[str]:
        vals = [value]
        cur = value
        for fn in rule.transform_fns:
            nxt = fn(cur)
            if nxt != cur:
                vals.append(nxt)
            cur = nxt
        return vals

    # -- actions -------------------------------------------------------------
    def _setvars(self, rule: Rule) -> None:
        for sv in rule.setvars:
            store = self.tx if sv.collection == "TX" else self.persist[sv.collection]
            name = sv.name.expand(self).lower()
            if sv.op == "!":
                store.pop(name, None)
                continue
            assert sv.value is not None
            value = sv.value.expand(self)
            if sv.op == "=":
                store[name] = value
            elif sv.op == "+":
                store[name] = str(_int(store.get(name, "0")) + _int(value))
            else:
                store[name] = str(_int(store.get(name, "0")) - _int(value))
        for name, macro in rule.setenvs:
            self.env[name] = macro.expand(self)

    def _ctl(self, c: Ctl) -> None:
        n = c.name
        if n == "ruleremovebyid":
            self.removed_ranges.extend(c.ids)
        elif n == "ruleremovebytag":
            self.removed_tags.add(c.value)
        elif n == "ruleremovetargetbyid":
            for t in c.targets:
                self.removed_targets.append((c.ids, None, t))
        elif n == "ruleremovetargetbytag":
            for t in c.targets:
                self.removed_targets.append(((), c.value, t))
        elif n == "ruleengine":
            self.rule_engine = c.value
        elif n == "requestbodyprocessor":
            self.body_processor = c.value
            self.scalars["REQBODY_PROCESSOR"] = c.value
        elif n == "requestbodyaccess":
            self.request_body_access = c.value == "on"
        elif n == "forcerequestbodyvariable":
            self.force_body_var = c.value == "on"
        elif n == "responsebodyaccess":
            self.response_body_access = c.value == "on"

    # -- rule evaluation -----------------------------------------------------
    def _eval_link(self, rule: Rule) -> bool:
        """Evaluate one link; runs its per-match actions; recurses into the chain."""
        op = rule.operator
        self.rule_id = rule.id
        matched = False
        if op is None:
            matched = True
            self._setvars(rule)
        else:
            negated = op.negated
            capture = rule.capture
            names, fns = rule.transforms, rule.transform_fns
            tcache = self.tcache
            per_match = bool(rule.setvars or rule.setenvs)
            for t in rule.targets:
                pairs = self.collect(t, rule)
                if t.count:
                    pairs = [(t.name, str(len(pairs)))]
                for vname, raw in pairs:
                    if rule.multi_match:
                        candidates = self._multi_values(raw, rule)
                    elif names:
                        v = tcache.get((raw, names))
                        candidates = [v if v is not None else self._transform(raw, names, fns)]
                    else:
                        candidates = [raw]
                    for v in candidates:
                        if op.evaluate(self, v, capture) != negated:
                            matched = True
                            self.matched_var = v
                            self.matched_var_name = vname
                            self.matched_vars.append((vname, v))
                            self._link_vars.append(vname)
                            if per_match:
                                self._setvars(rule)
                            break
        if not matched:
            return False
        if rule.chain is not None:
            return self._eval_link(rule.chain)
        return True

    def _removed(self, rule: Rule) -> bool:
        if self.removed_ranges and any(a <= rule.id <= b for a, b in self.removed_ranges):
            return True
        return bool(self.removed_tags) and any(t in self.removed_tags for t in rule.tags)

    def _run(self, phase: int) -> Verdict | None:
        if self.interrupted:
            return self._returned()
        self.phase = phase
        if self.rule_engine == "off" or phase <= self.allow_until:
            return None
        plan = self.engine.phase_plan(phase)
        rules, markers = plan
        i, n = 0, len(rules)
        while i < n:
            rule = rules[i]
            i += 1
            if rule.marker is not None:
                continue
            fast = rule.fast
            if fast is not None and not self._may_match(rule, fast[1]):
                continue
            if (self.removed_ranges or self.removed_tags) and self._removed(rule):
                continue
            if self.matched_vars:
                self.matched_vars = []
            if self._link_vars:
                self._link_vars = []
            if not self._eval_link(rule):
                continue
            for c in rule.all_ctls:
                self._ctl(c)
            if rule.log or rule.disruptive in ("deny", "drop", "redirect"):
                self._record(rule)
            action = rule.disruptive
            if action == "block":
                action = rule.block_action
            if action in ("deny", "drop", "redirect"):
                status = rule.status or (rule.block_status if rule.disruptive == "block" else None)
                if self._interrupt(rule, action, status or 403):
                    return self.verdict
            elif action == "allow":
                scope = rule.allow_scope
                if scope == "phase":
                    return None
                self.allow_until = 2 if scope == "request" else 5
                return None
            if rule.skip_after is not None:
                i = markers.get(rule.skip_after, n)
            elif rule.skip:
                skipped = 0
                while i < n and skipped < rule.skip:
                    if rules[i].marker is None:
                        skipped += 1
                    i += 1
        return None

    def _record(self, rule: Rule) -> None:
        names = tuple(dict.fromkeys(safe_var_name(v) for v in self._link_vars))
        self.matches.append(
            RuleMatch(
                rule_id=rule.id,
                phase=self.phase,
                msg=rule.msg.text if rule.msg is not None else "",
                severity=rule.severity,
                tags=rule.tags,
                variables=names,
            )
        )

    def _interrupt(self, rule: Rule, action: str, status: int) -> bool:
        ids = tuple(dict.fromkeys(m.rule_id for m in self.matches))
        names = tuple(dict.fromkeys(v for m in self.matches for v in m.variables))
        enforced = self.enforce and self.rule_engine == "on"
        verdict = Verdict(
            status=status,
            rule_ids=ids if rule.id in ids else (*ids, rule.id),
            anomaly_score=self.anomaly_score(),
            variables=names,
            phase=self.phase,
            action=action,
            matches=tuple(self.matches),
            enforced=enforced,
        )
        if self.verdict is None:
            self.verdict = verdict
            self.engine.report(verdict, peer=self.client_ip)
        if enforced:
            self.interrupted = True
            return True
        return False

    # -- results -------------------------------------------------------------
    def anomaly_score(self) -> int:
        """The inbound (or, after phase 2, the larger outbound) score CRS and our rules kept."""
        tx = self.tx
        inbound = _int(tx.get("blocking_inbound_anomaly_score", "0")) + _int(
            tx.get("ramparts_inbound_score", "0")
        )
        if self.phase <= 2:
            return inbound
        outbound = _int(tx.get("blocking_outbound_anomaly_score", "0"))
        return max(inbound, outbound)

    @property
    def matched_rule_ids(self) -> list[int]:
        """Every rule that matched and logs (or disrupts), in order, with repeats removed."""
        return list(dict.fromkeys(m.rule_id for m in self.matches))


# Collections read as key/value pairs below; XML (XPath) and MATCHED_VARS_NAMES
# have branches of their own above.
_SELECTABLE = COLLECTIONS - {"XML", "MATCHED_VARS_NAMES"}


def _excluded(var_name: str, exclusions: list[Target]) -> bool:
    coll, sep, key = var_name.partition(":")
    for t in exclusions:
        if t.name != coll:
            continue
        if t.key is None and t.regex is None:
            return True
        if sep and t.selects(key):
            return True
    return False
