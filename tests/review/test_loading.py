"""Reading manifests: malformed YAML, units, Helm/Kustomize output, compose detection."""

from __future__ import annotations

from pathlib import Path

from tests.review.conftest import deployment

from ramparts.review import scan


def test_malformed_document_is_reported_and_the_rest_still_scanned(tmp_path: Path):
    good = deployment("ledger")
    broken = "apiVersion: v1\nkind: Service\nmetadata: {name: x\n  namespace: bank\n"
    (tmp_path / "a.yaml").write_text(good + "---\n" + broken + "---\n" + deployment("payments"))
    (tmp_path / "b.yaml").write_text("key: [unclosed\n")
    (tmp_path / "c.yaml").write_text(deployment("accounts"))
    r = scan([tmp_path])
    errs = sorted((Path(e.file).name, e.line) for e in r.errors)
    assert [name for name, _ in errs] == ["a.yaml", "b.yaml"]
    a_line = dict(errs)["a.yaml"]
    assert 17 <= a_line <= 20  # inside the broken second document (lines 17-20)
    assert all("malformed YAML" in e.message for e in r.errors)
    scanned = {f.resource for f in r.findings if f.rule == "R1.no-mesh"}
    # Documents before and after the broken one, and the other files, were all scanned.
    assert scanned == {
        "Deployment bank/ledger",
        "Deployment bank/payments",
        "Deployment bank/accounts",
    }


def test_line_numbers_survive_the_slow_path(tmp_path: Path):
    broken = "a: [\n"
    text = broken + "---\n" + deployment("ledger").replace("kind: Deployment", "kind: Deployment")
    (tmp_path / "x.yaml").write_text(text)
    r = scan([tmp_path / "x.yaml"])
    (f,) = [f for f in r.findings if f.rule == "R1.no-mesh"]
    assert f.line == 3  # the Deployment starts on line 3 of the file


def test_missing_path_is_an_error(tmp_path: Path):
    r = scan([tmp_path / "nope"])
    assert r.errors and "no such file" in r.errors[0].message


def test_overlays_are_separate_units(tmp_path: Path):
    for env in ("staging", "production"):
        d = tmp_path / "overlays" / env
        d.mkdir(parents=True)
        (d / "kustomization.yaml").write_text("resources: [app.yaml]\n")
        (d / "app.yaml").write_text(deployment("ledger", env=_url(f"{env}-db")))
    base = tmp_path / "base"
    base.mkdir()
    (base / "kustomization.yaml").write_text("resources: [app.yaml]\n")
    (base / "app.yaml").write_text(deployment("statements", env=_url("staging-db")))
    r = scan([tmp_path])
    assert sorted(Path(u.name).name for u in r.units) == ["base", "production", "staging"]
    # ledger (staging overlay) and statements (base) would share staging-db if merged.
    assert not [f for f in r.findings if f.risk == "R4"]


def test_plain_directory_tree_is_one_unit(tmp_path: Path):
    for svc in ("ledger", "statements"):
        (tmp_path / svc).mkdir()
        (tmp_path / svc / "deploy.yaml").write_text(deployment(svc, env=_url("ledger-db")))
    r = scan([tmp_path])
    assert len(r.units) == 1
    assert [f.rule for f in r.findings if f.risk == "R4"] == ["R4.shared-database"]


def test_two_compose_files_are_two_units(tmp_path: Path):
    for name in ("docker-compose.yml", "docker-compose.prod.yml"):
        (tmp_path / name).write_text(
            "services:\n  api:\n    image: bank/api\n    environment:\n"
            "      DATABASE_URL: postgres://db/bank\n  db:\n    image: postgres:16\n"
        )
    r = scan([tmp_path])
    assert sorted(u.kind for u in r.units) == ["compose", "compose"]
    assert not [f for f in r.findings if f.risk == "R4"]


def test_helm_templates_are_skipped_with_a_note(tmp_path: Path):
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: bank\nversion: 1.0.0\n")
    (chart / "templates" / "d.yaml").write_text("kind: Deployment\nname: {{ .Values.name }}\n")
    (tmp_path / "loose.yaml").write_text("image: {{ .Values.image }}\n")
    r = scan([tmp_path])
    assert not r.errors
    assert [Path(n.file).name for n in r.notes] == ["loose.yaml"]


def test_kind_list_is_expanded_and_other_yaml_ignored(tmp_path: Path):
    lst = "apiVersion: v1\nkind: List\nitems:\n" + "".join(
        "  - " + line + "\n" if i == 0 else "    " + line + "\n"
        for i, line in enumerate(deployment("ledger").splitlines())
    )
    (tmp_path / "list.yaml").write_text(lst)
    (tmp_path / "ci.yml").write_text("on: push\njobs: {build: {runs-on: ubuntu-latest}}\n")
    r = scan([tmp_path])
    assert [f.resource for f in r.findings if f.rule == "R1.no-mesh"] == ["Deployment bank/ledger"]
    assert not r.errors


def _url(host: str) -> str:
    return f"""            - name: DATABASE_URL
              value: postgres://{host}:5432/ledger
"""


def test_hostile_yaml_is_an_error_not_a_crash(tmp_path: Path):
    (tmp_path / "tag.yaml").write_text("a: !!python/object/apply:os.system [id]\n")
    (tmp_path / "deep.yaml").write_text("a: " + "[" * 3000 + "]" * 3000 + "\n")
    (tmp_path / "loop.yaml").write_text("a: &x [*x]\n")
    (tmp_path / "date.yaml").write_text(
        deployment("ledger").replace("replicas", "x") + "  at: 2020-13-45\n"
    )
    r = scan([tmp_path])
    assert sorted(Path(e.file).name for e in r.errors) == ["deep.yaml", "loop.yaml", "tag.yaml"]
    assert [f.resource for f in r.findings if f.rule == "R1.no-mesh"] == ["Deployment bank/ledger"]
