"""templates/NOTES.txt: warnings first, then the summary, then copy-paste commands."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .helpers import (
    CHART,
    Obj,
)

pytestmark = pytest.mark.slow


def _notes(
    run_helm: Callable[..., subprocess.CompletedProcess[str]], values: Obj | Path | None
) -> str:
    done = run_helm(
        ["install", "archon", str(CHART), "--dry-run=client", "--namespace", "ai"], values
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split("NOTES:", 1)[1]


def test_notes_warn_first_then_summary_then_commands(
    run_helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    notes = _notes(run_helm, None).strip().splitlines()
    assert notes[0].startswith("WARNING: persistence.storageClassName")
    summary = next(i for i, line in enumerate(notes) if line.startswith("archon: "))
    assert all(not line.startswith("WARNING") for line in notes[summary:])
    assert "Qwen/Qwen2.5-Coder-14B-Instruct-GPTQ-Int4" in notes[summary]
    assert "NVIDIA" in notes[summary] and "8192 tokens" in notes[summary]
    text = "\n".join(notes)
    assert "kubectl --namespace ai port-forward svc/archon-server 8000:8000" in text
    # closed by default: the key the hook Job created, read back for the copy-paste commands
    assert "get secret archon-api-key -o jsonpath='{.data.api-key}'" in text
    assert "Authorization: Bearer $ARCHON_API_KEY" in text
    assert "image vllm/vllm-openai:v0.19.1" in text
    opened = _notes(run_helm, {"apiKey": {"enabled": False}})
    assert "Authorization" not in opened


def test_notes_with_api_key_and_ingress(
    run_helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    keyed = _notes(run_helm, CHART / "ci" / "api-key-values.yaml")
    assert "Authorization: Bearer $ARCHON_API_KEY" in keyed
    assert "get secret archon-api-key" in keyed
    assert "WARNING: persistence" not in keyed, "a named StorageClass needs no warning"
    lan = {"enabled": False, "allowUnauthenticatedExposure": True}
    open_ingress = _notes(run_helm, {"ingress": {"enabled": True}, "apiKey": lan})
    assert "WARNING: ingress.enabled=true with apiKey.enabled=false" in open_ingress


def test_notes_use_the_gateway_key_and_warn_about_an_open_gateway(
    run_helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    maat = [{"name": "maat", "mode": "prompt"}]
    tls = {
        "enabled": True,
        "tls": [{"secretName": "archon-tls", "hosts": ["archon.home.local"]}],
    }
    # The gateway reuses the API key's Secret when it has none of its own.
    reused = _notes(
        run_helm,
        {"apiKey": {"enabled": True, "existingSecret": "api"}, "ingress": tls, "archetypes": maat},
    )
    export = "export ARCHON_GATEWAY_KEY=$(kubectl --namespace ai get secret api"
    assert f"{export} -o jsonpath='{{.data.api-key}}'" in reused
    ingress_curl = (
        'https://archon.home.local/v1/models -H "Authorization: Bearer $ARCHON_GATEWAY_KEY"'
    )
    assert ingress_curl in reused, "the Ingress points at the gateway: send the gateway key"
    assert "--api-key-env ARCHON_GATEWAY_KEY" in reused and "WARNING: ingress" not in reused
    # Its own key, the API open: the Ingress (the gateway) is keyed, so no warning.
    own = _notes(
        run_helm,
        {"gateway": {"masterKey": {"existingSecret": "gw"}}, "ingress": tls, "archetypes": maat},
    )
    assert "get secret gw -o jsonpath='{.data.master-key}'" in own
    assert ingress_curl in own and "WARNING: ingress" not in own
    # No key anywhere: the gateway is open to whoever reaches the Ingress.
    lan = {"enabled": False, "allowUnauthenticatedExposure": True}
    open_gateway = _notes(
        run_helm, {"gateway": {"enabled": True}, "ingress": {"enabled": True}, "apiKey": lan}
    )
    warning = "WARNING: ingress.enabled=true and the gateway (the Ingress backend) has no key"
    assert warning in open_gateway
    assert "ARCHON_GATEWAY_KEY" not in open_gateway
    assert "curl -s http://archon.home.local/v1/models\n" in open_gateway


def test_notes_give_one_url_per_ingress_host_and_name_the_post_sync_jobs(
    run_helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    notes = _notes(run_helm, CHART / "ci" / "ingress-tls-values.yaml")
    bearer = '-H "Authorization: Bearer $ARCHON_API_KEY"'
    assert f"curl -s https://archon.home.local/v1/models {bearer}" in notes, "tls names this host"
    assert f"curl -s http://llm.home.local/v1/models {bearer}" in notes, "no tls for this one"
    assert "PostSync" not in notes
    hosts = [
        {"host": h, "paths": [{"path": "/v1", "pathType": "Prefix"}]} for h in ("a.lan", "b.lan")
    ]
    open_ingress = _notes(
        run_helm,
        {
            "ingress": {"enabled": True, "hosts": hosts},
            "apiKey": {"enabled": False, "allowUnauthenticatedExposure": True},
            "test": {"argocdPostSync": {"enabled": True}},
        },
    )
    assert "anyone who reaches a.lan, b.lan can use the GPU" in open_ingress
    assert "the same checks run as PostSync Jobs" in open_ingress


def test_notes_show_the_digest_in_use(
    run_helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    digest = "sha256:" + "ab" * 32
    notes = _notes(run_helm, {"image": {"digest": digest}})
    assert f"image vllm/vllm-openai:v0.19.1@{digest}" in notes
