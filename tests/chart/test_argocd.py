"""The chart under ArgoCD, which renders it with `helm template` and applies the result itself:
the same output on every render, no cluster lookups, and sync waves where order matters."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from .helpers import PROFILES, PROMPT, SCENARIOS, TEMPLATES, Obj, annotations_of, one

WAVE = "argocd.argoproj.io/sync-wave"

# Template functions whose output changes from one render to the next, or that ask the cluster:
# `helm template` answers `lookup` with nothing, and a random or time-based value differs on every
# render, so ArgoCD would see drift (and roll pods) on every refresh.
UNSTABLE = frozenset(
    {
        "lookup",
        "now",
        "date",
        "dateInZone",
        "dateModify",
        "unixEpoch",
        "randAlphaNum",
        "randAlpha",
        "randNumeric",
        "randAscii",
        "randBytes",
        "randInt",
        "uuidv4",
        "shuffle",
        "genCA",
        "genCAWithKey",
        "genPrivateKey",
        "genSelfSignedCert",
        "genSelfSignedCertWithKey",
        "genSignedCert",
        "genSignedCertWithKey",
        "htpasswd",
        "bcrypt",
        "encryptAES",
    }
)
_ACTION = re.compile(r"\{\{(.*?)\}\}", re.S)
_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`')
_WORD = re.compile(r"(?<![.$\w])[A-Za-z_]\w*")


def functions_called(template: str) -> set[str]:
    """Identifiers in the template actions: function names, keywords and literals; never text
    outside `{{ }}`, comments or strings."""
    found: set[str] = set()
    for action in _ACTION.findall(template):
        code = _STRING.sub('""', _COMMENT.sub("", action))
        found |= set(_WORD.findall(code))
    return found


def test_the_scanner_sees_calls_and_skips_text_comments_and_strings() -> None:
    sample = (
        '{{- $x := lookup "v1" "Secret" "ns" "n" }}now and then {{/* randAlphaNum */}}'
        '{{ printf "uuidv4" }}{{ .Values.now }}{{ $now := 1 }}{{ randAlphaNum 8 | b64enc }}'
    )
    assert functions_called(sample) & UNSTABLE == {"lookup", "randAlphaNum"}


def test_no_template_asks_the_cluster_or_draws_at_random() -> None:
    files = sorted(p for p in TEMPLATES.rglob("*") if p.is_file())
    assert len(files) > 10
    for path in files:
        used = functions_called(path.read_text(encoding="utf-8")) & UNSTABLE
        assert not used, f"{path.relative_to(TEMPLATES)} calls {sorted(used)}"


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_every_scenario_renders_byte_identical_twice(
    scenario: Path, render_text: Callable[..., str]
) -> None:
    first = render_text(scenario)
    assert first.strip(), "nothing rendered"
    assert render_text(scenario) == first


# --- sync waves ----------------------------------------------------------------------------


def _wave(obj: Obj) -> int:
    value = annotations_of(obj).get(WAVE)
    assert value is not None, f"{obj['kind']} {obj['metadata']['name']} has no sync wave"
    return int(value)


def _gpu_servers(objects: list[Obj]) -> list[Obj]:
    return [
        o
        for o in objects
        if o["kind"] == "Deployment"
        and o["spec"]["template"]["spec"]["containers"][0]["name"] == "vllm"
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "values",
    [*SCENARIOS, *PROFILES, {"ingress": {"enabled": True}}],
    ids=lambda v: v.name if isinstance(v, Path) else "ingress-to-server",
)
def test_sync_waves_put_what_pods_use_first_and_the_gateway_last(
    values: Path | Obj, render: Callable[..., list[Obj]]
) -> None:
    objects = render(values)
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    # hooks (the tests after the sync, the API key before it) run outside the waves
    hooks = {"Pod", "Job"}
    for obj in objects:
        if obj["kind"] not in hooks and "helm.sh/hook" not in annotations_of(obj):
            _wave(obj)
    servers = _gpu_servers(objects)
    assert servers
    for server in servers:
        assert _wave(server) == 0
        spec = server["spec"]["template"]["spec"]
        account = by_name.get(("ServiceAccount", spec["serviceAccountName"]))
        if account is not None:
            assert _wave(account) < _wave(server)
        for volume in spec["volumes"]:
            if "configMap" in volume:
                assert _wave(by_name[("ConfigMap", volume["configMap"]["name"])]) < _wave(server)
            claim = by_name.get(
                ("PersistentVolumeClaim", volume.get("persistentVolumeClaim", {}).get("claimName"))
            )
            if claim is not None:
                # Not earlier: a WaitForFirstConsumer claim stays Pending until this pod exists.
                assert _wave(claim) == _wave(server)
    for obj in objects:
        if obj["kind"] == "Service":
            assert _wave(obj) in (0, 1)
    # the gateway's NetworkPolicy comes before it, with the other policies (wave -1)
    gateway = [
        o
        for o in objects
        if o["metadata"]["name"].endswith("-gateway") and o["kind"] in ("Deployment", "Service")
    ]
    for obj in gateway:
        assert _wave(obj) > max(_wave(s) for s in servers), obj["kind"]
    for ingress in [o for o in objects if o["kind"] == "Ingress"]:
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = by_name[("Deployment", path["backend"]["service"]["name"])]
                assert _wave(ingress) >= _wave(backend)


@pytest.mark.slow
def test_the_gateway_waits_for_the_server(render: Callable[..., list[Obj]]) -> None:
    objects = render({"archetypes": [PROMPT], "ingress": {"enabled": True}})
    waves = {
        (o["kind"], o["metadata"]["name"]): _wave(o)
        for o in objects
        if o["kind"] != "Pod" and "helm.sh/hook" not in annotations_of(o)
    }
    assert waves == {
        ("NetworkPolicy", "archon-server"): -1,
        ("NetworkPolicy", "archon-gateway"): -1,
        ("NetworkPolicy", "archon-test"): -1,
        ("ServiceAccount", "archon"): -1,
        ("ConfigMap", "archon-server-config"): -1,
        ("ConfigMap", "archon-gateway-config"): -1,
        ("PersistentVolumeClaim", "archon-model-cache"): 0,
        ("Deployment", "archon-server"): 0,
        ("Service", "archon-server"): 0,
        ("Deployment", "archon-gateway"): 1,
        ("Service", "archon-gateway"): 1,
        ("Ingress", "archon-server"): 1,
    }
    assert one(objects, "Deployment", "-server")
