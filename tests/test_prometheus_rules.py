"""The Prometheus alerting rules shipped in contrib/: well formed, built only on metrics the
keeper exports, with the thresholds the keeper itself uses; and, where promtool is installed,
checked by it and run against series that must (and must not) fire each alert. The Grafana
dashboard beside them queries only exported metrics too."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from wxtoken.keeper import metrics
from wxtoken.keeper.config import parse_config
from wxtoken.status import DAY, DEFAULT_WARN_DAYS

RULES = ROOT / "contrib" / "prometheus" / "wxtoken.rules.yml"
DASHBOARD = ROOT / "contrib" / "grafana" / "wxtoken-dashboard.json"
DURATION = re.compile(r"\d+[smhdwy]")
ALERTS = {
    "WxtokenKeeperDown",
    "WxtokenKeeperStalled",
    "WxtokenLoginRequired",
    "WxtokenGrantExpiresWithin14Days",
    "WxtokenGrantExpiresWithin3Days",
    "WxtokenRecorderCopyStale",
    "WxtokenRefreshFailing",
    "WxtokenNoRecentRefresh",
    "WxtokenGrantDegraded",
}


def rules() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text())
    assert set(data) == {"groups"}
    found: dict[str, dict[str, Any]] = {}
    for group in data["groups"]:
        assert set(group) == {"name", "rules"} and group["name"]
        for rule in group["rules"]:
            assert rule["alert"] not in found, f"{rule['alert']} twice"
            found[rule["alert"]] = rule
    return found


def exported() -> set[str]:
    """Every sample name the keeper's /metrics can carry, from its own exposition."""
    text = metrics.render(0.0, {}, {}, 0).decode()
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        counter = kind == "counter" and not name.endswith("_total")
        names.add(name + "_total" if counter else name)
    return names


def test_every_rule_is_complete() -> None:
    found = rules()
    assert set(found) == ALERTS
    for name, rule in found.items():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, name
        assert isinstance(rule["expr"], str) and rule["expr"].strip(), name
        assert DURATION.fullmatch(str(rule.get("for", "0s"))), name
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        notes = rule["annotations"]
        assert set(notes) == {"summary", "description"}, name
        assert all(isinstance(v, str) and len(v) > 20 for v in notes.values()), name


def test_every_metric_named_is_one_the_keeper_exports() -> None:
    known = exported()
    assert "wxtoken_recorder_copy_state" in known and "wxtoken_refresh_failures_total" in known
    for name, rule in rules().items():
        used = set(re.findall(r"\bwxtoken_\w+", rule["expr"]))
        assert used or name == "WxtokenKeeperDown", f"{name} watches no wxtoken metric"
        assert used <= known, f"{name} uses {used - known}, which the keeper does not export"
    # Anything else an expression names is Prometheus' own `up`.
    others = {
        m
        for rule in rules().values()
        for m in re.findall(r"\b([a-z_]+)\{", rule["expr"])
        if not m.startswith("wxtoken_")
    }
    assert others <= {"up"}


def test_the_dashboard_queries_only_exported_metrics() -> None:
    board = json.loads(DASHBOARD.read_text())
    known = exported() | {"up"}
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) and board["uid"] and board["title"]
    queried = set()
    for panel in board["panels"]:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used = set(re.findall(r"\b(wxtoken_\w+|up)\b", target["expr"]))
            assert used and used <= known, (panel["title"], used - known)
            queried |= used
    # Each metric an alert watches can be seen on the dashboard.
    watched = {m for r in rules().values() for m in re.findall(r"\bwxtoken_\w+", r["expr"])}
    assert watched - {"wxtoken_keeper_passes"} <= queried


def test_thresholds_are_the_keepers_own() -> None:
    found = rules()
    warn = found["WxtokenGrantExpiresWithin14Days"]["expr"]
    assert f"< {DEFAULT_WARN_DAYS:g} * 86400" in warn and DAY == 86400
    defaults = parse_config({})
    assert 3 * DAY in defaults.thresholds
    assert "< 3 * 86400" in found["WxtokenGrantExpiresWithin3Days"]["expr"]
    assert f">= {defaults.failures}" in found["WxtokenRefreshFailing"]["expr"]
    assert defaults.schedule.max_age == 7 * DAY
    assert "> 8 * 86400" in found["WxtokenNoRecentRefresh"]["expr"]


PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")
KEEPER = 'job="wxtoken-keeper", instance="k:9477"'


def series(name: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f"{name}{{{KEEPER}{', ' if labels else ''}{labels}}}", "values": values}


def alert(profile: str | None = None, severity: str = "warning", **labels: str) -> dict[str, Any]:
    """An expected alert by its labels (the rules run here carry no annotations)."""
    base = {"job": "wxtoken-keeper", "instance": "k:9477", "severity": severity}
    if profile is not None:
        base["profile"] = profile
    return {"exp_labels": dict(base, **labels)}


def cases() -> list[dict[str, Any]]:
    """Series over 40 minutes, one minute apart, and what must be firing at given times (b, c
    and d are the profiles for which nothing may fire)."""
    days = 86400
    return [
        {
            "interval": "1m",
            "input_series": [
                series("up", "", "1x10 0x30"),
                # Passes counted until minute 10, then no more.
                series("wxtoken_keeper_passes", "", "0+1x10 10x30"),
                series("wxtoken_profile_state", 'profile="a", state="login_required"', "0x5 1x35"),
                series("wxtoken_profile_state", 'profile="b", state="login_required"', "0x40"),
                series("wxtoken_refresh_token_expiry_seconds", 'profile="a"', f"{10 * days}x40"),
                series("wxtoken_refresh_token_expiry_seconds", 'profile="b"', f"{2 * days}x40"),
                series("wxtoken_refresh_token_expiry_seconds", 'profile="c"', f"{60 * days}x40"),
                series("wxtoken_refresh_token_expiry_seconds", 'profile="d"', "-100x40"),
                series("wxtoken_recorder_copy_state", 'profile="a", state="stale"', "1x40"),
                series("wxtoken_recorder_copy_state", 'profile="b", state="stale"', "0x40"),
                series(
                    "wxtoken_refresh_failures_total",
                    'profile="a", reason="unavailable"',
                    "0 0 1 2 3 4 4x35",
                ),
                series(
                    "wxtoken_refresh_failures_total", 'profile="b", reason="unavailable"', "0 1x39"
                ),
                # Last refreshed a little over 8 days before promtool's clock starts at 0; b
                # keeps being refreshed.
                series(
                    "wxtoken_last_refresh_success_timestamp_seconds", 'profile="a"', "-700000x40"
                ),
                series("wxtoken_last_refresh_success_timestamp_seconds", 'profile="b"', "0+60x40"),
                series("wxtoken_probe_verdict", 'profile="a", verdict="degraded"', "1x40"),
                series("wxtoken_probe_verdict", 'profile="b", verdict="degraded"', "0x40"),
            ],
            "alert_rule_test": [
                {"eval_time": "4m", "alertname": "WxtokenKeeperDown", "exp_alerts": []},
                {
                    "eval_time": "20m",
                    "alertname": "WxtokenKeeperDown",
                    "exp_alerts": [alert(severity="critical")],
                },
                {"eval_time": "12m", "alertname": "WxtokenKeeperStalled", "exp_alerts": []},
                {
                    "eval_time": "30m",
                    "alertname": "WxtokenKeeperStalled",
                    "exp_alerts": [alert(severity="critical")],
                },
                {
                    "eval_time": "10m",
                    "alertname": "WxtokenLoginRequired",
                    "exp_alerts": [alert("a", "critical", state="login_required")],
                },
                {
                    "eval_time": "15m",
                    "alertname": "WxtokenGrantExpiresWithin14Days",
                    "exp_alerts": [alert("a")],
                },
                {
                    "eval_time": "15m",
                    "alertname": "WxtokenGrantExpiresWithin3Days",
                    "exp_alerts": [alert("b", "critical")],
                },
                {
                    "eval_time": "10m",
                    "alertname": "WxtokenRecorderCopyStale",
                    "exp_alerts": [alert("a", state="stale")],
                },
                {
                    "eval_time": "10m",
                    "alertname": "WxtokenRefreshFailing",
                    "exp_alerts": [alert("a")],
                },
                {"eval_time": "20m", "alertname": "WxtokenNoRecentRefresh", "exp_alerts": []},
                {
                    "eval_time": "40m",
                    "alertname": "WxtokenNoRecentRefresh",
                    "exp_alerts": [alert("a")],
                },
                {
                    "eval_time": "15m",
                    "alertname": "WxtokenGrantDegraded",
                    "exp_alerts": [alert("a", verdict="degraded")],
                },
            ],
        },
    ]


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    assert PROMTOOL is not None
    proc = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in proc.stdout


@needs_promtool
def test_each_alert_fires_when_it_should_and_only_then(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    # The rules as shipped less their annotations, which promtool would otherwise compare
    # word for word (`check rules` above parses their templates).
    data = yaml.safe_load(RULES.read_text())
    for group in data["groups"]:
        for rule in group["rules"]:
            del rule["annotations"]
    bare = tmp_path / "wxtoken.rules.yml"
    bare.write_text(yaml.safe_dump(data))
    spec = tmp_path / "wxtoken.rules.test.yml"
    spec.write_text(
        yaml.safe_dump(
            {"rule_files": [str(bare)], "evaluation_interval": "1m", "tests": cases()},
            sort_keys=False,
        )
    )
    proc = subprocess.run(
        [PROMTOOL, "test", "rules", str(spec)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Every alert is exercised firing at least once.
    fired = {t["alertname"] for case in cases() for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert fired == ALERTS
