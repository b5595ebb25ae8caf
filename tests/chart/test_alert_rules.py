"""The PrometheusRule's alerts run by the pinned promtool (built from the Go module proxy like
helm): `promtool check rules` parses every expression, `promtool test rules` feeds series and
checks which alerts fire, with which labels and text."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from .helpers import Obj, one

pytestmark = pytest.mark.slow

POD = "archon-server-0"


def _rules(render: Callable[..., list[Obj]], tmp_path: Path) -> Path:
    rule = one(render({"metrics": {"prometheusRule": {"enabled": True}}}), "PrometheusRule")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}), encoding="utf-8")
    return path


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    from archon.toolchain import ensure

    return subprocess.run(
        [str(ensure("promtool")), *args], capture_output=True, text=True, timeout=120, check=False
    )


def _alert(name: str, summary: str, description: str, **labels: str) -> Obj:
    return {
        "eval_time": "20m",
        "alertname": name,
        "exp_alerts": [
            {
                "exp_labels": {"severity": "warning", "namespace": "ai", **labels},
                "exp_annotations": {"summary": summary, "description": description},
            }
        ],
    }


def test_the_rules_parse(render: Callable[..., list[Obj]], tmp_path: Path) -> None:
    done = _promtool("check", "rules", str(_rules(render, tmp_path)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 rules found" in done.stdout


def test_the_alerts_fire_on_a_saturated_server(
    render: Callable[..., list[Obj]], tmp_path: Path
) -> None:
    rules = _rules(render, tmp_path)
    text = {
        r["alert"]: r["annotations"]
        for r in yaml.safe_load(rules.read_text())["groups"][0]["rules"]
    }
    series = f'namespace="ai",pod="{POD}"'
    tests = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f"vllm:kv_cache_usage_perc{{{series}}}", "values": "0.95x30"},
                    {"series": f"vllm:num_requests_waiting{{{series}}}", "values": "8x30"},
                    {"series": f"vllm:num_preemptions_total{{{series}}}", "values": "0+1x30"},
                ],
                "alert_rule_test": [
                    _alert(
                        "ArchonKvCacheHigh",
                        f"KV cache of {POD} is over 90% full",
                        text["ArchonKvCacheHigh"]["description"],
                        pod=POD,
                    ),
                    _alert(
                        "ArchonRequestsWaiting",
                        f"8 requests are waiting on {POD}",
                        text["ArchonRequestsWaiting"]["description"],
                        pod=POD,
                    ),
                    _alert(
                        "ArchonPreemptions",
                        f"vLLM on {POD} preempts requests",
                        text["ArchonPreemptions"]["description"],
                        pod=POD,
                    ),
                    # healthy figures: nothing else fires
                    {
                        "eval_time": "20m",
                        "alertname": "ArchonTimeToFirstTokenHigh",
                        "exp_alerts": [],
                    },
                    {"eval_time": "20m", "alertname": "ArchonServerRestarts", "exp_alerts": []},
                    # `for:` holds the KV cache alert back at first
                    {"eval_time": "5m", "alertname": "ArchonKvCacheHigh", "exp_alerts": []},
                ],
            }
        ],
    }
    path = tmp_path / "tests.yaml"
    path.write_text(yaml.safe_dump(tests), encoding="utf-8")
    done = _promtool("test", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_wrong_expectation_fails(render: Callable[..., list[Obj]], tmp_path: Path) -> None:
    rules = _rules(render, tmp_path)
    tests = {
        "rule_files": [str(rules)],
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": 'vllm:kv_cache_usage_perc{namespace="ai",pod="p"}',
                        "values": "0.5x30",
                    }
                ],
                "alert_rule_test": [_alert("ArchonKvCacheHigh", "x", "y", pod="p")],
            }
        ],
    }
    path = tmp_path / "tests.yaml"
    path.write_text(yaml.safe_dump(tests), encoding="utf-8")
    assert _promtool("test", "rules", str(path)).returncode != 0, "half full fires nothing"
