"""ramparts review vs Checkov on the same manifests, side by side, in one run.

Run by hand:  .venv/bin/python bench/review/bench_review.py [--services 60] [--repeat 3]

Installs Checkov into bench/.venv-checkov on first use (a comparison tool, not a
dependency). Both tools are run as the user runs them, as a fresh process with
JSON output, on the same directory: the review test fixtures plus a generated
deployment of N services (Deployment, Service, ConfigMap, NetworkPolicy each,
one file per object, as `kustomize build`-less repos keep them). Wall time
includes interpreter start-up for both; Checkov's start-up is part of what a
CI job pays. Prints medians and the ratio.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKOV_VENV = ROOT / "bench" / ".venv-checkov"
FIXTURES = ROOT / "tests" / "review" / "fixtures"


def ensure_checkov() -> Path:
    exe = CHECKOV_VENV / "bin" / "checkov"
    if not exe.exists():
        print("installing checkov into", CHECKOV_VENV, flush=True)
        venv.create(CHECKOV_VENV, with_pip=True)
        subprocess.run([CHECKOV_VENV / "bin" / "pip", "install", "-q", "checkov"], check=True)
    return exe


def generate(root: Path, services: int) -> int:
    """A realistic deployment of ``services`` services; returns the number of documents."""
    shutil.copytree(FIXTURES / "secure-bank", root / "secure-bank")
    shutil.copy(FIXTURES / "leaky-bank" / "rendered.yaml", root / "leaky-rendered.yaml")
    docs = 0
    for i in range(services):
        name = f"svc{i:03d}"
        d = root / "generated" / name
        d.mkdir(parents=True)
        db = f"svc{(i // 2) * 2:03d}-db"  # every pair of services shares a database
        mode = "disable" if i % 7 == 0 else "verify-full"
        (d / "deployment.yaml").write_text(f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: bank
  labels: {{app: {name}}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}, version: v1}}
    spec:
      containers:
        - name: {name}
          image: ghcr.io/bank/{name}:1.0.{i}
          ports:
            - {{name: http, containerPort: 8080}}
          envFrom:
            - configMapRef: {{name: {name}-config}}
          env:
            - name: DB_PASSWORD
              valueFrom: {{secretKeyRef: {{name: {name}-db, key: password}}}}
          resources:
            limits: {{cpu: 500m, memory: 256Mi}}
          securityContext:
            runAsNonRoot: true
            readOnlyRootFilesystem: true
""")
        (d / "service.yaml").write_text(f"""apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: bank
spec:
  type: {"LoadBalancer" if i % 10 == 0 else "ClusterIP"}
  selector: {{app: {name}}}
  ports:
    - {{name: http, port: 80, targetPort: http}}
""")
        (d / "configmap.yaml").write_text(f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}-config
  namespace: bank
data:
  LOG_LEVEL: info
  DATABASE_URL: postgres://{db}.bank.svc.cluster.local:5432/{db}?sslmode={mode}
  UPSTREAM: http://svc{(i + 1) % services:03d}.bank
""")
        (d / "networkpolicy.yaml").write_text(f"""apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {name}
  namespace: bank
spec:
  podSelector:
    matchLabels: {{app: {name}}}
  policyTypes: [Ingress, Egress]
  ingress:
    - from:
        - podSelector:
            matchLabels: {{app: svc{(i - 1) % services:03d}}}
      ports:
        - port: http
  egress:
    - to:
        - podSelector:
            matchLabels: {{app: {db}}}
      ports:
        - port: 5432
""")
        docs += 4
    return docs


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system of the child and its children), output bytes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, check=False
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, len(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    checkov = ensure_checkov()
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "ERROR"}
    with tempfile.TemporaryDirectory(prefix="bench-review-") as tmp:
        corpus = Path(tmp)
        docs = generate(corpus, args.services)
        files = sum(1 for _ in corpus.rglob("*.yaml"))
        ours = [sys.executable, "-m", "ramparts.review", str(corpus), "--format", "json"]
        theirs = [
            str(checkov),
            "-d",
            str(corpus),
            "--framework",
            "kubernetes",
            "-o",
            "json",
            "--quiet",
            "--compact",
            "--skip-download",
            "--skip-results-upload",
        ]
        print(f"corpus: {files} files, {docs}+ generated documents plus the review fixtures")
        wall: dict[str, list[float]] = {"ramparts review": [], "checkov": []}
        cpu: dict[str, list[float]] = {"ramparts review": [], "checkov": []}
        sizes: dict[str, int] = {}
        for _ in range(args.repeat):
            for name, cmd in (("ramparts review", ours), ("checkov", theirs)):
                w, c, n = timed(cmd, env)
                wall[name].append(w)
                cpu[name].append(c)
                sizes[name] = n
        mw = {k: statistics.median(v) for k, v in wall.items()}
        mc = {k: statistics.median(v) for k, v in cpu.items()}
        for name, runs in wall.items():
            shown = ", ".join(f"{t:.2f}" for t in runs)
            print(
                f"{name:16} wall median {mw[name]:6.2f} s, CPU median {mc[name]:6.2f} s "
                f"(wall runs: {shown}; {sizes[name]} bytes of JSON)"
            )
        print(
            "ratio (checkov / ramparts review): "
            f"wall {mw['checkov'] / mw['ramparts review']:.1f}x, "
            f"CPU {mc['checkov'] / mc['ramparts review']:.1f}x"
        )


if __name__ == "__main__":
    main()
