"""JSON, SARIF 2.1.0 and human output."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console
from tests.review.conftest import deployment

from ramparts.review import print_human, scan, to_json, to_sarif
from ramparts.review.findings import RISKS, catalogue, checks

KEYS = {"rule", "risk", "severity", "file", "line", "resource", "message", "fix"}


def test_json_findings_have_the_documented_keys(fixtures):
    data = json.loads(to_json(scan([fixtures / "leaky-bank"])))
    assert data["findings"]
    for f in data["findings"]:
        assert set(f) >= KEYS
        assert f["risk"] in RISKS and f["rule"].startswith(f["risk"] + ".")
        assert f["severity"] in {"info", "low", "medium", "high", "critical"}
        assert isinstance(f["line"], int) and f["line"] >= 1 and f["fix"]
    assert data["errors"] == []


def test_catalogue_has_one_file_per_risk_and_fixes():
    cat = catalogue()
    assert list(cat) == list(RISKS)
    for c in checks().values():
        assert c.fix and c.title and cat[c.risk].doc.startswith("https://")


def test_sarif_structure(fixtures):
    result = scan([fixtures / "leaky-bank"])
    log = to_sarif(result, base=fixtures)
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] and driver["version"]
    ids = [r["id"] for r in driver["rules"]]
    assert len(ids) == len(set(ids)) == len(checks())
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert rule["help"]["text"] and rule["help"]["markdown"]
        assert rule["defaultConfiguration"]["level"] in {"error", "warning", "note"}
        sev = float(rule["properties"]["security-severity"])
        assert 0.0 <= sev <= 10.0
    assert len(run["results"]) == len(result.findings)
    for res in run["results"]:
        assert ids[res["ruleIndex"]] == res["ruleId"]
        assert res["message"]["text"]
        assert res["level"] in {"error", "warning", "note"}
        (loc,) = res["locations"]
        art = loc["physicalLocation"]["artifactLocation"]
        assert art["uriBaseId"] == "SRCROOT" and not art["uri"].startswith("/")
        assert art["uri"] in {"leaky-bank/rendered.yaml", "leaky-bank/docker-compose.yml"}
        assert loc["physicalLocation"]["region"]["startLine"] >= 1
        fp = res["partialFingerprints"]["rampartsFinding/v1"]
        assert len(fp) == 64
        for rel in res.get("relatedLocations", []):
            assert rel["physicalLocation"]["region"]["startLine"] >= 1
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"].endswith("/")
    fps = [r["partialFingerprints"]["rampartsFinding/v1"] for r in run["results"]]
    assert len(set(fps)) == len(fps)
    json.dumps(log)  # serialisable


def test_sarif_fingerprint_is_stable_when_lines_move(tmp_path: Path):
    (tmp_path / "a.yaml").write_text(deployment("ledger"))
    one = to_sarif(scan([tmp_path]))["runs"][0]["results"]
    (tmp_path / "a.yaml").write_text("# a comment\n\n" + deployment("ledger"))
    two = to_sarif(scan([tmp_path]))["runs"][0]["results"]
    assert [r["partialFingerprints"] for r in one] == [r["partialFingerprints"] for r in two]
    assert one[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 1
    assert two[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 3


def test_sarif_reports_unreadable_files(tmp_path: Path):
    (tmp_path / "bad.yaml").write_text("a: [\n")
    log = to_sarif(scan([tmp_path]))
    inv = log["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is False
    assert "malformed YAML" in inv["toolExecutionNotifications"][0]["message"]["text"]


def test_human_output_escapes_markup_from_manifests(tmp_path: Path):
    text = deployment("ledger").replace("name: ledger\n", 'name: "[red]evil[/red]"\n', 1)
    (tmp_path / "a.yaml").write_text(text)
    buf = io.StringIO()
    print_human(scan([tmp_path]), Console(file=buf, width=200, color_system=None))
    out = buf.getvalue()
    assert "Deployment bank/[red]evil[/red]" in out
    assert "R1 No mutual TLS between services" in out and "fix:" in out


def test_public_surface_matches_all():
    from ramparts import review

    public = {n for n in dir(review) if not n.startswith("_")}
    modules = {
        "checks",
        "context",
        "databases",
        "findings",
        "netpol",
        "report",
        "rules",
        "scanner",
        "cli",
    }
    assert set(review.__all__) == public - modules


# Property names SARIF 2.1.0 allows on the objects we emit (its schema sets
# additionalProperties: false on each); a key outside these fails validation.
SARIF_KEYS = {
    "log": {"$schema", "version", "runs", "inlineExternalProperties", "properties"},
    "run": {
        "tool",
        "invocations",
        "conversion",
        "language",
        "versionControlProvenance",
        "originalUriBaseIds",
        "artifacts",
        "logicalLocations",
        "graphs",
        "results",
        "automationDetails",
        "runAggregates",
        "baselineGuid",
        "redactionTokens",
        "defaultEncoding",
        "defaultSourceLanguage",
        "newlineSequences",
        "columnKind",
        "externalPropertyFileReferences",
        "threadFlowLocations",
        "taxonomies",
        "addresses",
        "translations",
        "policies",
        "webRequests",
        "webResponses",
        "specialLocations",
        "properties",
    },
    "driver": {
        "guid",
        "name",
        "organization",
        "product",
        "productSuite",
        "shortDescription",
        "fullDescription",
        "fullName",
        "version",
        "semanticVersion",
        "dottedQuadFileVersion",
        "releaseDateUtc",
        "downloadUri",
        "informationUri",
        "globalMessageStrings",
        "notifications",
        "rules",
        "taxa",
        "locations",
        "language",
        "contents",
        "isComprehensive",
        "localizedDataSemanticVersion",
        "minimumRequiredLocalizedDataSemanticVersion",
        "associatedComponent",
        "translationMetadata",
        "supportedTaxonomies",
        "properties",
    },
    "rule": {
        "id",
        "deprecatedIds",
        "guid",
        "deprecatedGuids",
        "name",
        "deprecatedNames",
        "shortDescription",
        "fullDescription",
        "messageStrings",
        "defaultConfiguration",
        "helpUri",
        "help",
        "relationships",
        "properties",
    },
    "result": {
        "ruleId",
        "ruleIndex",
        "rule",
        "kind",
        "level",
        "message",
        "analysisTarget",
        "locations",
        "guid",
        "correlationGuid",
        "occurrenceCount",
        "partialFingerprints",
        "fingerprints",
        "stacks",
        "codeFlows",
        "graphs",
        "graphTraversals",
        "relatedLocations",
        "suppressions",
        "baselineState",
        "rank",
        "attachments",
        "hostedViewerUri",
        "workItemUris",
        "provenance",
        "fixes",
        "taxa",
        "webRequest",
        "webResponse",
        "properties",
    },
    "location": {
        "id",
        "physicalLocation",
        "logicalLocations",
        "message",
        "annotations",
        "relationships",
        "properties",
    },
    "invocation": {
        "commandLine",
        "arguments",
        "responseFiles",
        "startTimeUtc",
        "endTimeUtc",
        "exitCode",
        "ruleConfigurationOverrides",
        "notificationConfigurationOverrides",
        "toolExecutionNotifications",
        "toolConfigurationNotifications",
        "exitCodeDescription",
        "exitSignalName",
        "exitSignalNumber",
        "processStartFailureMessage",
        "executionSuccessful",
        "machine",
        "account",
        "processId",
        "executableLocation",
        "workingDirectory",
        "environmentVariables",
        "stdin",
        "stdout",
        "stderr",
        "stdoutStderr",
        "properties",
    },
}


def test_sarif_uses_only_keys_the_schema_allows(fixtures, tmp_path: Path):
    (tmp_path / "bad.yaml").write_text("a: [\n")
    log = to_sarif(scan([fixtures / "leaky-bank", tmp_path]), base=fixtures)
    assert set(log) <= SARIF_KEYS["log"]
    (run,) = log["runs"]
    assert set(run) <= SARIF_KEYS["run"]
    assert set(run["tool"]) == {"driver"}
    assert set(run["tool"]["driver"]) <= SARIF_KEYS["driver"]
    for rule in run["tool"]["driver"]["rules"]:
        assert set(rule) <= SARIF_KEYS["rule"]
        assert set(rule["defaultConfiguration"]) <= {
            "enabled",
            "level",
            "rank",
            "parameters",
            "properties",
        }
        assert set(rule["help"]) <= {"text", "markdown", "properties"}
        assert len(rule["properties"]["tags"]) == len(set(rule["properties"]["tags"]))
    locations = []
    for res in run["results"]:
        assert set(res) <= SARIF_KEYS["result"]
        assert all(isinstance(v, str) for v in res["partialFingerprints"].values())
        locations += res["locations"] + res.get("relatedLocations", [])
    (inv,) = run["invocations"]
    assert set(inv) <= SARIF_KEYS["invocation"] and "executionSuccessful" in inv
    for note in inv["toolExecutionNotifications"]:
        assert set(note) <= {
            "locations",
            "message",
            "exception",
            "descriptor",
            "associatedRule",
            "level",
            "threadId",
            "timeUtc",
            "properties",
        }
        locations += note["locations"]
    for loc in locations:
        assert set(loc) <= SARIF_KEYS["location"]
        phys = loc["physicalLocation"]
        assert set(phys) <= {"address", "artifactLocation", "region", "contextRegion", "properties"}
        assert set(phys["artifactLocation"]) <= {
            "uri",
            "uriBaseId",
            "index",
            "description",
            "properties",
        }
        assert set(phys["region"]) == {"startLine"}
        for logical in loc.get("logicalLocations", []):
            assert set(logical) <= {
                "name",
                "index",
                "fullyQualifiedName",
                "decoratedName",
                "parentIndex",
                "kind",
                "properties",
            }


def test_sarif_file_outside_the_base_gets_an_absolute_uri(tmp_path: Path, fixtures):
    (tmp_path / "a.yaml").write_text(deployment("ledger"))
    log = to_sarif(scan([tmp_path / "a.yaml"]), base=fixtures)
    art = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert art == {"uri": (tmp_path / "a.yaml").resolve().as_uri()}
