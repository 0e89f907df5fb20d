#!/usr/bin/env python3
"""Checks the operator files in docs/ against the metrics lps really exports.

  tools/check_observability.py (--exposition FILE | --render BINARY) [--docs DIR] [--promtool PATH]

- docs/prometheus/alerts.yml passes `promtool check rules`, and its unit tests
  (docs/prometheus/alerts_test.yml) pass `promtool test rules`;
- docs/grafana/lps-dashboard.json is valid JSON with panels, each with at least one query;
- every llm_provider_* metric named in a rule or a panel query is one lps exports: a family
  in FILE (the Prometheus text that lps renders, with every HELP line; histograms may be
  named with _bucket, _sum or _count). With --render, the text comes from the project's
  metrics_registry_test binary ("[.render]" writes the exposition of every metric).

Prints what is wrong and exits 1, or exits 0. Used by the test suite (tests/CMakeLists.txt).
"""

import argparse
import json
import re
import os
import subprocess
import sys
import tempfile
from pathlib import Path

METRIC = re.compile(r"\bllm_provider_[a-z0-9_]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def exported_families(exposition: str) -> dict:
    """Metric family name -> type, from the HELP and TYPE lines."""
    families = {}
    for line in exposition.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "#" and parts[1] == "TYPE":
            families[parts[2]] = parts[3]
    return families


def family_of(name: str, families: dict) -> str | None:
    if name in families:
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        base = name[: -len(suffix)]
        if name.endswith(suffix) and families.get(base) == "histogram":
            return base
    return None


def rule_expressions(alerts_text: str) -> list:
    """The expr of every rule (block scalars included), read without a YAML library."""
    exprs, current, indent = [], None, 0
    for line in alerts_text.splitlines():
        stripped = line.lstrip()
        if current is not None:
            if stripped and len(line) - len(stripped) > indent:
                current.append(stripped)
                continue
            exprs.append(" ".join(current))
            current = None
        if stripped.startswith("expr:"):
            value = stripped[len("expr:"):].strip()
            if value in ("|", ">", "|-", ">-"):
                current, indent = [], len(line) - len(stripped)
            else:
                exprs.append(value)
    if current is not None:
        exprs.append(" ".join(current))
    return exprs


def dashboard_expressions(dashboard: dict, problems: list) -> list:
    exprs = []
    panels = dashboard.get("panels") or []
    if not panels:
        problems.append("dashboard: no panels")
    for panel in panels:
        targets = [t for t in panel.get("targets", []) if t.get("expr")]
        if not targets:
            problems.append(f"dashboard: panel '{panel.get('title')}' has no query")
        exprs += [t["expr"] for t in targets]
    for variable in dashboard.get("templating", {}).get("list", []):
        if isinstance(variable.get("query"), str):
            exprs.append(variable["query"])
    return exprs


def run(command: list, problems: list, what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        problems.append(f"{what} failed:\n{done.stdout}{done.stderr}")


def exposition_text(args) -> str:
    if args.exposition:
        return args.exposition.read_text()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "metrics.prom"
        subprocess.run([str(args.render), "[.render]"], check=True, capture_output=True,
                       env={**os.environ, "LPS_METRICS_OUT": str(out)})
        return out.read_text()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--exposition", type=Path)
    source.add_argument("--render", type=Path)
    parser.add_argument("--docs", type=Path, default=Path(__file__).resolve().parent.parent / "docs")
    parser.add_argument("--promtool", default="promtool")
    args = parser.parse_args()

    problems = []
    families = exported_families(exposition_text(args))
    if not families:
        problems.append("the exposition has no metric families")
    alerts = args.docs / "prometheus" / "alerts.yml"
    run([args.promtool, "check", "rules", str(alerts)], problems, "promtool check rules")
    run([args.promtool, "test", "rules", str(args.docs / "prometheus" / "alerts_test.yml")],
        problems, "promtool test rules")
    try:
        dashboard = json.loads((args.docs / "grafana" / "lps-dashboard.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        problems.append(f"dashboard: {error}")
        dashboard = {}
    sources = [("alerts.yml", e) for e in rule_expressions(alerts.read_text())]
    sources += [("lps-dashboard.json", e) for e in dashboard_expressions(dashboard, problems)]
    named = 0
    for where, expr in sources:
        for name in METRIC.findall(expr):
            named += 1
            if family_of(name, families) is None:
                problems.append(f"{where}: {name} is not a metric lps exports (in: {expr})")
    if named == 0:
        problems.append("no llm_provider_* metric named in the rules or the dashboard")
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"check_observability: {len(sources)} expressions, {named} metric references, "
          f"{len(families)} exported families, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
