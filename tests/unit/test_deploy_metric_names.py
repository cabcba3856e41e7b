"""The shipped alert rules and Grafana dashboard name only metrics the package exports, and each rule is documented.

The rule and dashboard expressions are parsed for ``livekit_fallback_*``
names; each must be a series name of a metric in the package's registry
(``_total`` for counters, ``_bucket``/``_sum``/``_count`` for histograms).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics_core import Metric

from livekit_fallback.metrics import REGISTRY

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "livekit-fallback.rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "livekit-fallback.rules.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "livekit-fallback.json"
OPERATIONS = ROOT / "docs" / "operations.md"
NAME = re.compile(r"\blivekit_fallback_[a-z0-9_]+\b")

PENDING: set[str] = {"livekit_fallback_model_switches_total"}
"""Names the rules use that the LiveKit edge's model-failure work adds to the registry; remove each once it exists."""


def series_names(metric: Metric) -> set[str]:
    """Every series name a registry metric exposes."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {metric.name + suffix for suffix in suffixes.get(metric.type, ("",))}


def registry_names() -> set[str]:
    """Every series name of the package's registry."""
    return {name for metric in REGISTRY.collect() for name in series_names(metric)}


def rules() -> list[dict[str, Any]]:
    """The alerting rules of the shipped rules file."""
    data = yaml.safe_load(RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    """Every PromQL expression of the dashboard's panels."""
    data = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in data["panels"] for target in panel.get("targets", [])]


def test_rule_metric_names_exist_in_the_registry() -> None:
    """Every metric name in an alert rule is one the package exports (or is listed as pending)."""
    used = {name for rule in rules() for name in NAME.findall(rule["expr"])}
    assert len(used) >= 7
    assert used - registry_names() - PENDING == set()


def test_dashboard_metric_names_exist_in_the_registry() -> None:
    """Every metric name in a dashboard query is one the package exports (or is listed as pending)."""
    exprs = dashboard_exprs()
    used = {name for expr in exprs for name in NAME.findall(expr)}
    assert len(exprs) >= 9 and all(NAME.search(expr) for expr in exprs)
    assert used - registry_names() - PENDING == set()


def test_the_pending_list_is_not_stale() -> None:
    """A pending name that the registry now exports must leave the list, so the check above stays strict."""
    assert PENDING & registry_names() == set()


def test_age_gauges_are_in_the_registry() -> None:
    """The snapshot and last-known-good ages are exported as gauges."""
    types = {metric.name: metric.type for metric in REGISTRY.collect()}
    assert types["livekit_fallback_snapshot_age_seconds"] == "gauge"
    assert types["livekit_fallback_last_known_good_age_seconds"] == "gauge"


def test_the_names_parser_sees_counters_histograms_and_gauges() -> None:
    """The registry's series names include a counter's _total, a histogram's _bucket and a plain gauge."""
    names = registry_names()
    assert {"livekit_fallback_fallbacks_total", "livekit_fallback_resolution_seconds_bucket"} <= names
    assert "livekit_fallback_degraded" in names and "livekit_fallback_fallbacks" not in names


def test_every_rule_has_a_summary_a_documented_runbook_and_a_firing_test() -> None:
    """Each rule has a summary, a runbook link to a heading of the operations guide and a promtool case firing it."""
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in OPERATIONS.read_text().splitlines()
        if line.startswith("#")
    }
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {case["alertname"] for test in cases for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    quiet = {
        case["alertname"] for test in cases for case in test.get("alert_rule_test", []) if not case.get("exp_alerts")
    }
    names = [rule["alert"] for rule in rules()]
    assert len(names) == 8 and set(names) <= fired
    assert len(quiet) >= 5  # besides the non-firing series inside the firing cases
    for rule in rules():
        assert rule["annotations"]["summary"]
        page, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert page == "docs/operations.md" and anchor == rule["alert"].lower() and anchor in headings
