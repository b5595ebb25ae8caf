"""Opt-in observability: the ServiceMonitor, the PrometheusRule with vLLM's real metric names,
and the Grafana dashboard ConfigMap, validated against the pinned prometheus-operator CRDs."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from .helpers import CHART, Obj, one

MONITORING = CHART / "ci" / "monitoring-values.yaml"
# vllm/v1/metrics/loggers.py (PrometheusStatLogger)
VLLM_METRICS = {
    "vllm:kv_cache_usage_perc",
    "vllm:num_requests_waiting",
    "vllm:time_to_first_token_seconds_bucket",
    "vllm:num_preemptions_total",
}


def test_nothing_is_watched_by_default(render: Callable[..., list[Obj]]) -> None:
    kinds = {o["kind"] for o in render()}
    assert not {"ServiceMonitor", "PrometheusRule"} & kinds
    assert not [o for o in render() if o["metadata"]["name"].endswith("-dashboard")]


def test_the_service_monitor_scrapes_every_vllm_service(render: Callable[..., list[Obj]]) -> None:
    instance = {
        "name": "roc",
        "mode": "instance",
        "instance": {
            "model": {
                "name": "Qwen/Qwen2.5-Coder-0.5B-Instruct",
                "maxModelLen": 4096,
                "gpuMemoryUtilization": 0.1,
            }
        },
    }
    objects = render(
        {
            "metrics": {"serviceMonitor": {"enabled": True}},
            "archetypes": [instance],
            "gpu": {"nodeCapacity": 2},
        }
    )
    monitor = one(objects, "ServiceMonitor", "-server")
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    selector = monitor["spec"]["selector"]
    scraped = []
    for service in [o for o in objects if o["kind"] == "Service"]:
        labels = service["metadata"]["labels"]
        if all(labels.get(k) == v for k, v in selector["matchLabels"].items()) and all(
            labels.get(e["key"]) in e["values"] for e in selector["matchExpressions"]
        ):
            scraped.append(service["metadata"]["name"])
    assert sorted(scraped) == ["archon-archetype-roc", "archon-server"], "not the gateway"


def test_the_gateway_is_scraped_with_its_key(render: Callable[..., list[Obj]]) -> None:
    """LiteLLM's prometheus callback serves the gateway's /metrics; with a master key it asks
    for one (the Ingress would publish it otherwise) and the ServiceMonitor sends it."""
    import yaml

    prompt = {"name": "maat", "mode": "prompt", "systemPrompt": "judge"}
    watched = {"metrics": {"serviceMonitor": {"enabled": True}}, "archetypes": [prompt]}
    objects = render({**watched, "apiKey": {"enabled": True}})
    monitor = one(objects, "ServiceMonitor", "-gateway")
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics/" and endpoint["port"] == "http"
    secret = endpoint["authorization"]["credentials"]
    assert endpoint["authorization"]["type"] == "Bearer" and secret["name"] and secret["key"]
    service = one(objects, "Service", "-gateway")
    labels = service["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
    config_map = one(objects, "ConfigMap", "-gateway-config")
    settings = yaml.safe_load(config_map["data"]["config.yaml"])["litellm_settings"]
    assert settings["success_callback"] == ["prometheus"]
    assert settings["require_auth_for_metrics_endpoint"] is True

    open_gateway = render({**watched, "apiKey": {"enabled": False}})
    assert (
        "authorization"
        not in one(open_gateway, "ServiceMonitor", "-gateway")["spec"]["endpoints"][0]
    )
    quiet = render({"archetypes": [prompt]})
    config = yaml.safe_load(one(quiet, "ConfigMap", "-gateway-config")["data"]["config.yaml"])
    assert "success_callback" not in config["litellm_settings"]


def test_the_alerts_use_vllm_metric_names(render: Callable[..., list[Obj]]) -> None:
    rule = one(render(MONITORING), "PrometheusRule")
    (group,) = rule["spec"]["groups"]
    alerts = {r["alert"]: r for r in group["rules"]}
    assert set(alerts) == {
        "ArchonKvCacheHigh",
        "ArchonRequestsWaiting",
        "ArchonTimeToFirstTokenHigh",
        "ArchonPreemptions",
        "ArchonServerRestarts",
    }
    exprs = " ".join(r["expr"] for r in alerts.values())
    for metric in VLLM_METRICS | {"kube_pod_container_status_restarts_total"}:
        assert metric + "{" in exprs, metric
    assert all('namespace="ai"' in r["expr"] for r in alerts.values())
    assert alerts["ArchonKvCacheHigh"]["expr"].endswith("> 0.9")
    assert "{{ $labels.pod }}" in alerts["ArchonKvCacheHigh"]["annotations"]["summary"]
    tuned = render({"metrics": {"prometheusRule": {"enabled": True, "ttftP95Seconds": 2.5}}})
    ttft = one(tuned, "PrometheusRule")["spec"]["groups"][0]["rules"][2]
    assert ttft["expr"].startswith("histogram_quantile(0.95,") and ttft["expr"].endswith("> 2.5")


def test_the_dashboard_is_a_sidecar_config_map(render: Callable[..., list[Obj]]) -> None:
    dashboard = one(render(MONITORING), "ConfigMap", "-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(dashboard["data"]["archon.json"])
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p["targets"])
    for metric in VLLM_METRICS:
        assert metric in exprs, metric


def test_prometheus_is_admitted_only_with_the_service_monitor(
    render: Callable[..., list[Obj]],
) -> None:
    def namespaces(objects: list[Obj]) -> list[Obj]:
        policy = one(objects, "NetworkPolicy", "-server")
        return [p for p in policy["spec"]["ingress"][0]["from"] if "namespaceSelector" in p]

    assert namespaces(render()) == []
    assert namespaces(render(MONITORING)) == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]


@pytest.mark.slow
def test_the_crds_judge_the_objects(render_text: Callable[..., str]) -> None:
    from archon.validate import validate_manifest

    good = validate_manifest(render_text(MONITORING))
    checked = {r.kind: r.ok for r in good if r.kind in ("ServiceMonitor", "PrometheusRule")}
    assert checked == {"ServiceMonitor": True, "PrometheusRule": True}
    bad = render_text(MONITORING).replace("interval: 30s", "interval: soon")
    results = validate_manifest(bad)
    assert [r.kind for r in results if not r.ok] == ["ServiceMonitor"], "the CRD pattern applies"
    gateway = "archetypes:\n  - {name: maat, mode: prompt, systemPrompt: judge}\n"
    with_gateway = render_text(MONITORING.read_text(encoding="utf-8") + gateway)
    monitors = [r for r in validate_manifest(with_gateway) if r.kind == "ServiceMonitor"]
    assert len(monitors) == 2 and all(r.ok for r in monitors), "the gateway's, with its key"
