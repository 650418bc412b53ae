"""Alert rules: promtool checks and unit tests of files/alerts.yaml, and the chart's PrometheusRule
built from that same file with the configured thresholds. No cluster."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.tools import CHART, MONITORING_API, REPO, Helm, load_yaml, one

RULES = CHART / "files" / "alerts.yaml"
RULES_TEST = Path(__file__).with_name("rules_test.yaml")
RUNBOOKS = REPO / "docs" / "runbooks.md"
ALERTS = {
    "ModelDriftDetected", "ModelDistributionDrift", "ModelStale", "DriftCheckFailing", "DriftCheckMissing",
    "RetrainFailed", "RolloutFailed", "ModelRolledBack", "ModelStepStuck", "ServingCaptureFailing",
}  # fmt: skip
SEVERITIES = {"critical", "warning", "info"}


def promtool_run(promtool: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(promtool), *args], text=True, capture_output=True, timeout=120)
    assert proc.returncode == 0, f"promtool {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def alert_rules(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def rendered_groups(helm: Helm, prometheus_rule: dict[str, Any]) -> list[dict[str, Any]]:
    docs = helm.template({"prometheusRule": {"enabled": True, **prometheus_rule}})
    return list(one(docs, "PrometheusRule")["spec"]["groups"])


def test_promtool_check_rules(promtool: Path) -> None:
    proc = promtool_run(promtool, "check", "rules", str(RULES))
    assert f"SUCCESS: {len(ALERTS)} rules found" in proc.stdout


def test_promtool_unit_tests(promtool: Path) -> None:
    promtool_run(promtool, "test", "rules", str(RULES_TEST))


def test_unit_tests_use_the_chart_rules_file() -> None:
    spec = load_yaml(RULES_TEST)
    assert [(RULES_TEST.parent / f).resolve() for f in spec["rule_files"]] == [RULES.resolve()]


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for group in load_yaml(RULES_TEST)["tests"]:
        for case in group.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert firing == ALERTS, f"alerts without a firing case: {ALERTS - firing}"
    assert quiet == ALERTS, f"alerts without a non-firing case: {ALERTS - quiet}"


def test_every_runbook_names_dashboard_panels_that_exist() -> None:
    """Each alert's "**Dashboard.**" paragraph names panels as **<title>** [<id>] of files/dashboard.json."""
    panels = {str(p["id"]): p["title"] for p in json.loads((CHART / "files" / "dashboard.json").read_text())["panels"]}
    text = RUNBOOKS.read_text()
    for name in alert_rules(load_yaml(RULES)["groups"]):
        section = text.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        paragraph = re.search(r"^\*\*Dashboard\.\*\* (.+?)\n\n", section, re.MULTILINE | re.DOTALL)
        assert paragraph, f"docs/runbooks.md: {name} names no dashboard panels"
        named = re.findall(r"\*\*([^*]+)\*\* \[(\d+)\]", " ".join(paragraph[1].split()))
        assert named, f"{name}: no **<panel title>** [<id>] in {paragraph[1]!r}"
        for title, panel_id in named:
            found = panels.get(panel_id)
            assert found == title, f"{name}: panel [{panel_id}] is {found!r}, not {title!r}"


def test_every_alert_is_complete_and_has_a_runbook() -> None:
    rules = alert_rules(load_yaml(RULES)["groups"])
    assert set(rules) == ALERTS
    headings = {m.group(1).strip().lower() for m in re.finditer(r"^## (.+)$", RUNBOOKS.read_text(), re.MULTILINE)}
    for name, rule in rules.items():
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), f"{name}: needs a `for`"
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        url = annotations["runbook_url"]
        assert url.endswith(f"docs/runbooks.md#{name.lower()}"), url
        assert name.lower() in headings, f"docs/runbooks.md has no '## {name}' section"


def test_schema_knows_exactly_the_alerts() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    overridable = schema["properties"]["prometheusRule"]["properties"]["alerts"]["properties"]
    assert set(overridable) == ALERTS


def test_rendered_defaults_are_the_tested_file(helm: Helm) -> None:
    """With default values the PrometheusRule carries exactly the rules promtool tested."""
    assert rendered_groups(helm, {}) == load_yaml(RULES)["groups"]


def test_rendered_thresholds_and_overrides(helm: Helm, promtool: Path, tmp_path: Path) -> None:
    groups = rendered_groups(
        helm,
        {
            "modelMaxAgeSeconds": 86400,
            "driftCheckMissingFactor": 3,
            "runbookBaseUrl": "https://runbooks.example.com/freshness.md",
            "alerts": {
                "ModelStale": {"for": "1h", "severity": "critical"},
                "ModelRolledBack": {"enabled": False},
                "RetrainFailed": {"severity": "info"},
            },
        },
    )
    rules = alert_rules(groups)
    assert set(rules) == ALERTS - {"ModelRolledBack"}
    assert "(modelfreshness_model_age_seconds) > 86400" in rules["ModelStale"]["expr"]
    assert (
        "> 3 * max by (namespace, name) (modelfreshness_drift_interval_seconds > 0)"
        in (rules["DriftCheckMissing"]["expr"])
    )
    assert rules["ModelStale"]["for"] == "1h"
    assert rules["ModelStale"]["labels"]["severity"] == "critical"
    assert rules["RetrainFailed"]["labels"]["severity"] == "info"
    assert rules["RetrainFailed"]["for"] == alert_rules(load_yaml(RULES)["groups"])["RetrainFailed"]["for"]
    for name, rule in rules.items():
        assert rule["annotations"]["runbook_url"] == f"https://runbooks.example.com/freshness.md#{name.lower()}"
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump({"groups": groups}))
    promtool_run(promtool, "check", "rules", str(rendered))


def test_rendered_thresholds_take_effect(helm: Helm, promtool: Path, tmp_path: Path) -> None:
    """Evaluate the rendered expressions: they trip at the configured values, not the defaults."""
    rules = alert_rules(rendered_groups(helm, {"modelMaxAgeSeconds": 86400, "driftCheckMissingFactor": 3}))
    ns = 'namespace="ml", name="cats-dogs"'
    spec = {
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # Age 20h at t=0, growing a minute per minute: over 1 day from t=4h.
                    {"series": f"modelfreshness_model_age_seconds{{{ns}}}", "values": "72000+60x400"},
                    # 1h interval, last success at t=600 s: over 3 intervals from t=3h10m.
                    {"series": f"modelfreshness_drift_interval_seconds{{{ns}}}", "values": "3600x400"},
                    {
                        "series": f"modelfreshness_drift_last_check_timestamp_seconds{{{ns}}}",
                        "values": "600x400",
                    },
                ],
                "promql_expr_test": [
                    {"expr": rules["ModelStale"]["expr"], "eval_time": "3h", "exp_samples": []},
                    {
                        "expr": rules["ModelStale"]["expr"],
                        "eval_time": "5h",
                        "exp_samples": [{"labels": f"{{{ns}}}", "value": 72000 + 300 * 60}],
                    },
                    # The default factor 2 would have tripped at 2h10m.
                    {"expr": rules["DriftCheckMissing"]["expr"], "eval_time": "3h", "exp_samples": []},
                    {
                        "expr": rules["DriftCheckMissing"]["expr"],
                        "eval_time": "3h20m",
                        "exp_samples": [{"labels": f"{{{ns}}}", "value": 200 * 60 - 600}],
                    },
                ],
            }
        ],
    }
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump({"groups": [{"name": "t", "rules": list(rules.values())}]}))
    test_file = tmp_path / "test.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": [str(rendered)], **spec}))
    promtool_run(promtool, "test", "rules", str(test_file))


def test_render_fails_when_the_rules_file_loses_a_threshold(helm: Helm, tmp_path: Path) -> None:
    """Editing files/alerts.yaml without the template must not silently drop a configured value."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    rules = chart / "files" / "alerts.yaml"
    rules.write_text(rules.read_text().replace("> 604800", "> 691200"))
    proc = helm.run("template", "mf", str(chart), "--set", "prometheusRule.enabled=true", *MONITORING_API, check=False)
    assert proc.returncode != 0
    assert "files/alerts.yaml no longer contains" in proc.stderr


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_runbook_section_is_substantial(name: str) -> None:
    """Each runbook says what the alert means, how to look, and what to do."""
    text = RUNBOOKS.read_text()
    section = text.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
    for part in ("Meaning", "Diagnosis", "Mitigation"):
        assert f"**{part}.**" in section, f"{name}: runbook lacks {part}"
